"""Risk rules, table-tested: each protection passes and fails, and every reason is kept."""

from dataclasses import replace

import pytest

from btc_trader.contracts import PredictionResult
from btc_trader.domain.risk import RiskLimits, RiskState, decide
from btc_trader.domain.wallet import PaperWallet

NOW = 1_678_536_000
LIMITS = RiskLimits(max_trade_usd=100, risk_threshold=0.7, buy_threshold_pct=0.5, sell_threshold_pct=-0.5,
                    fee_bps=10, max_position_pct=50, daily_loss_limit_pct=3, max_drawdown_pct=10,
                    cooldown_minutes=60, max_trades_per_day=10, max_price_age_s=600, max_divergence_bps=150)


def prediction(move_pct=1.0, confidence=0.8, age=30, divergence=5.0, status="ok"):
    if status != "ok":
        return PredictionResult(status=status, reason="no prices", as_of="2023-03-11T12:00:00Z", horizon_minutes=60)
    return PredictionResult(as_of="2023-03-11T12:00:00Z", current_price=20_000, price_age_s=age,
                            predicted_price=20_000 * (1 + move_pct / 100), horizon_minutes=60, direction="up",
                            confidence=confidence, models=[], source_divergence_bps=divergence)


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
