"""Risk rules, table-tested: each protection passes and fails, and every reason is kept."""

from dataclasses import replace

import pytest

from btc_trader.contracts import PredictionResult
from btc_trader.domain.risk import Evidence, RiskLimits, RiskState, decide, reset_kill_switch
from btc_trader.domain.wallet import PaperWallet

NOW = 1_678_536_000
LIMITS = RiskLimits(max_trade_usd=100, risk_threshold=0.7, buy_threshold_pct=0.5, sell_threshold_pct=-0.5,
                    fee_bps=10, max_position_pct=50, daily_loss_limit_pct=3, max_drawdown_pct=10,
                    cooldown_minutes=60, max_trades_per_day=10, max_price_age_s=600, max_divergence_bps=150)


def prediction(move_pct=1.0, confidence=0.8, age=30, divergence=5.0, status="ok", price=20_000.0, direction=None):
    if status != "ok":
        return PredictionResult(status=status, reason="no prices", as_of="2023-03-11T12:00:00Z", horizon_minutes=60)
    direction = direction or ("up" if move_pct > 0.1 else "down" if move_pct < -0.1 else "stable")
    return PredictionResult(as_of="2023-03-11T12:00:00Z", current_price=price, price_age_s=age,
                            predicted_price=price * (1 + move_pct / 100), horizon_minutes=60, direction=direction,
                            confidence=confidence, models=[], source_divergence_bps=divergence)


def evidence(stored=20_000.0, age=30, symbol="BTC-USD", skew=None):
    return Evidence(symbol=symbol, symbols=("BTC-USD",), stored_price=stored,
                    stored_at=None if stored is None else NOW - age, clock_skew_s=skew)


def holding(btc=0.0, usd=10_000.0, peak=None):
    wallet = PaperWallet(usd=usd, btc=btc, avg_cost=20_000 if btc else 0)
    return replace(wallet, peak_equity_usd=peak if peak is not None else wallet.equity(20_000))


STATE = RiskState().roll_to(NOW, 10_000)


def test_buy_is_sized_by_max_trade_amount_and_approved():
    decision = decide(prediction(), holding(), STATE, LIMITS, NOW)
    result = decision.to_result()
    assert result.approved and result.action == "BUY"
    assert result.notional_usd == 100 and result.quantity_btc == pytest.approx(0.005)
    assert result.reasons == [] and 0 <= result.risk_score <= 1


def test_sell_never_exceeds_holdings():
    decision = decide(prediction(move_pct=-1), holding(btc=0.002), STATE, LIMITS, NOW)
    assert decision.intent.action == "SELL" and decision.intent.quantity_btc == pytest.approx(0.002)
    assert decision.approved


def test_hold_within_thresholds():
    result = decide(prediction(move_pct=0.2), holding(), STATE, LIMITS, NOW).to_result()
    assert not result.approved and result.action == "HOLD"
    assert result.reasons[0].startswith("hold: predicted move +0.20% within thresholds")


@pytest.mark.parametrize(
    ("kwargs", "wallet", "state", "manual", "reason"),
    [
        ({"confidence": 0.5}, None, None, False, "confidence: 0.50 below riskThreshold 0.70"),
        ({"age": 900}, None, None, False, "price is 900 s old"),
        ({"divergence": 400}, None, None, False, "sources diverge by 400 bps"),
        ({}, holding(btc=0.25, usd=5_000), None, False, "maxPositionPct"),
        ({}, holding(usd=1), None, False, "no cash to buy with"),
        ({"move_pct": -1}, holding(), None, False, "nothing to sell"),
        ({}, holding(usd=9_600), None, False, "dailyLossLimitPct"),
        ({}, holding(usd=8_900, peak=10_000), RiskState().roll_to(NOW, 8_900), False, "maxDrawdownPct 10%"),
        ({}, None, replace(STATE, kill_switch=True, kill_reason="drawdown 12%"), False, "kill switch engaged"),
        ({}, None, None, True, "manual kill switch is on"),
        ({}, None, replace(STATE, last_loss_at=NOW - 600), False, "cooling down after a losing trade, 50 of 60"),
        ({}, None, replace(STATE, trades_today=10), False, "10 trades today, maxTradesPerDay 10"),
        ({"status": "insufficient_history"}, None, None, False, "prediction unusable (insufficient_history)"),
    ],
)
def test_each_rule_rejects_with_its_reason(kwargs, wallet, state, manual, reason):
    decision = decide(prediction(**kwargs), wallet or holding(), state or STATE, LIMITS, NOW, manual)
    assert not decision.approved
    assert any(reason in r for r in decision.reasons), decision.reasons


def test_every_failing_reason_is_returned():
    state = replace(STATE, trades_today=10, last_loss_at=NOW)
    decision = decide(prediction(confidence=0.1, age=9_999), holding(), state, LIMITS, NOW, True)
    failed = {o.rule for o in decision.outcomes if not o.passed}
    assert failed == {"confidence", "price_age", "manual_kill_switch", "cooldown", "max_trades"}
    assert len(decision.reasons) == 5


def test_loss_limits_do_not_block_a_reducing_sell():
    state = replace(STATE, last_loss_at=NOW)
    decision = decide(prediction(move_pct=-1), holding(btc=0.01, usd=9_500), state, LIMITS, NOW)
    assert decision.approved, decision.reasons


def test_drawdown_engages_a_sticky_kill_switch_until_reset():
    wallet = holding(usd=8_900, peak=10_000)
    decision = decide(prediction(), wallet, STATE, LIMITS, NOW)
    assert decision.state.kill_switch and not decision.approved
    recovered = holding(usd=10_000, peak=10_000)
    later = decide(prediction(), recovered, decision.state, LIMITS, NOW + 86_400 * 3)
    assert not later.approved and any("kill switch engaged" in r for r in later.reasons)
    after_reset = decide(prediction(), recovered, later.state.reset_kill_switch(), LIMITS, NOW + 86_400 * 3)
    assert after_reset.approved


def test_day_roll_resets_counters():
    state = replace(STATE, trades_today=10)
    decision = decide(prediction(), holding(), state, LIMITS, NOW + 86_400)
    assert decision.approved and decision.state.trades_today == 0


# --- the event is checked against what the stack knows (issue #15) ---------------------------


def test_a_price_far_from_the_stored_one_buys_nothing():
    decision = decide(prediction(price=1e-6), holding(), STATE, LIMITS, NOW, evidence=evidence())
    assert not decision.approved
    assert any(r.startswith("market_price: prediction price 0.00 is ") for r in decision.reasons), decision.reasons
    # Sized and marked at the stored price: no 100,000,000 BTC, and no drawdown from a bogus price.
    assert decision.intent.quantity_btc == pytest.approx(100 / 20_000)
    assert decision.drawdown_pct == 0 and not decision.state.kill_switch


def test_a_bogus_crash_price_never_engages_the_sticky_kill_switch():
    wallet = holding(btc=0.25, usd=5_000)
    decision = decide(prediction(price=100.0, move_pct=-1), wallet, STATE, LIMITS, NOW, evidence=evidence())
    assert not decision.state.kill_switch and not decision.approved


def test_direction_must_agree_with_the_predicted_move():
    decision = decide(prediction(move_pct=1.5, direction="down"), holding(), STATE, LIMITS, NOW, evidence=evidence())
    assert not decision.approved and decision.intent.action == "BUY"
    assert any(r.startswith("direction: a BUY needs an 'up' prediction, the prediction says 'down'")
               for r in decision.reasons)
    sell = decide(prediction(move_pct=-1.5, direction="stable"), holding(btc=0.01), STATE, LIMITS, NOW)
    assert not sell.approved and any(r.startswith("direction: a SELL needs") for r in sell.reasons)


def test_only_configured_symbols_trade():
    decision = decide(prediction(), holding(), STATE, LIMITS, NOW, evidence=evidence(symbol="DOGE-USD"))
    assert not decision.approved
    assert "symbol: DOGE-USD is not a configured symbol ['BTC-USD']" in decision.reasons


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_numbers_are_refused(bad):
    p = prediction().model_copy(update={"predicted_price": bad})
    decision = decide(p, holding(), STATE, LIMITS, NOW, evidence=evidence())
    assert not decision.approved and any(r.startswith("inputs: ") for r in decision.reasons)


def test_age_is_the_stored_prices_against_the_runs_clock():
    # The event claims 10 s; the stack's newest price is two hours older than the run.
    decision = decide(prediction(age=10), holding(), STATE, LIMITS, NOW, evidence=evidence(age=7_200))
    assert not decision.approved and any("price is 7200 s old" in r for r in decision.reasons)


def test_no_stored_price_is_a_refusal():
    decision = decide(prediction(), holding(), STATE, LIMITS, NOW, evidence=evidence(stored=None))
    assert not decision.approved
    assert "market_price: no stored price of BTC-USD to check the prediction against" in decision.reasons


def test_live_run_clock_must_be_near_the_wall_clock():
    decision = decide(prediction(), holding(), STATE, LIMITS, NOW, evidence=evidence(skew=3_600))
    assert not decision.approved
    assert any(r.startswith("clock: requested_at is 3600 s from the wall clock") for r in decision.reasons)
    assert decide(prediction(), holding(), STATE, LIMITS, NOW, evidence=evidence(skew=5)).approved


# --- risk state (issue #15) --------------------------------------------------------------------


def test_day_start_equity_counts_btc_at_the_last_known_price():
    yesterday = replace(RiskState().roll_to(NOW - 86_400, 10_000), last_price=20_000)
    wallet = holding(btc=0.25, usd=5_000)  # 10,000 USD at 20,000
    refusal = prediction(status="insufficient_history")
    without_evidence = decide(refusal, wallet, yesterday, LIMITS, NOW)
    assert without_evidence.state.day == NOW // 86_400
    assert without_evidence.state.day_start_equity_usd == pytest.approx(10_000)
    with_stored = decide(refusal, wallet, yesterday, LIMITS, NOW, evidence=evidence(stored=22_000))
    assert with_stored.state.day_start_equity_usd == pytest.approx(5_000 + 0.25 * 22_000)
    # ... so the daily loss limit can trigger that day.
    later = decide(prediction(price=18_000), replace(wallet, peak_equity_usd=10_000), without_evidence.state,
                   LIMITS, NOW + 600, evidence=evidence(stored=18_000))
    assert any(r.startswith("daily_loss: down 5.00% today") for r in later.reasons), later.reasons


ENGAGED = replace(STATE, kill_switch=True, kill_reason="drawdown 12%")


def test_flatten_needs_a_fresh_checked_price():
    wallet = holding(btc=0.1, usd=8_000, peak=12_000)
    stale = decide(prediction(move_pct=0), wallet, ENGAGED, LIMITS, NOW, evidence=evidence(age=7_200))
    assert not stale.approved and stale.intent.action == "HOLD"
    assert stale.reasons[0].startswith("flatten: not on this price")
    away = decide(prediction(move_pct=0, price=21_800), wallet, ENGAGED, LIMITS, NOW, evidence=evidence())
    assert not away.approved and any(r.startswith("market_price:") and "900 bps" in r for r in away.reasons)
    fresh = decide(prediction(move_pct=0), wallet, ENGAGED, LIMITS, NOW, evidence=evidence())
    assert fresh.approved and fresh.intent.action == "SELL" and fresh.intent.quantity_btc == pytest.approx(0.1)


def test_dust_is_not_flattened():
    dust = holding(btc=0.000004, usd=8_000, peak=12_000)  # below minQty 0.00001 and 5 USD
    decision = decide(prediction(move_pct=0), dust, ENGAGED, LIMITS, NOW, evidence=evidence())
    assert not decision.approved and decision.intent.action == "HOLD"
    assert decision.reasons[0].startswith("flatten: the position (0.00000400 BTC) is dust")


def test_reset_sets_the_peak_to_the_current_marked_equity():
    wallet = holding(btc=0.1, usd=6_800, peak=10_000)  # 8,800 at 20,000: 12% down
    engaged = decide(prediction(move_pct=0), wallet, STATE, LIMITS, NOW, evidence=evidence())
    assert engaged.state.kill_switch
    wallet, state = reset_kill_switch(wallet, engaged.state, 20_000)
    assert wallet.peak_equity_usd == pytest.approx(8_800) and not state.kill_switch
    after = decide(prediction(), wallet, state, LIMITS, NOW + 60, evidence=evidence(age=-60))
    assert not after.state.kill_switch and after.drawdown_pct == 0
    assert [r.split(":")[0] for r in after.reasons] == ["daily_loss"]  # today's loss still counts; nothing else
    with pytest.raises(ValueError, match="needs a positive price"):
        reset_kill_switch(wallet, state, 0.0)
