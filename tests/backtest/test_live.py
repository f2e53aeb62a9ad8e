"""`--strategy live`: the same decisions as the deployed code, no look-ahead, the kill switch holds."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from btc_trader.backtest.data import Bars, load_bars
from btc_trader.backtest.engine import metrics
from btc_trader.backtest.live import edge_params, prediction_at, risk_limits, run_live
from btc_trader.cli import main
from btc_trader.contracts import PredictionResult
from btc_trader.domain.prediction.ensemble import ModelRun, edge_probabilities, model_weights
from btc_trader.domain.prediction.model import PriceHistory
from btc_trader.domain.prediction.result import ensemble_result
from btc_trader.domain.prediction.scoring import PERSISTENCE, rolling_skill, score_prediction
from btc_trader.domain.prediction.technical import BARS_NEEDED, TechnicalModel
from btc_trader.domain.risk import RiskState, decide
from btc_trader.domain.wallet import PaperWallet, WalletError
from btc_trader.stack.settings import load_stack_with_overrides

LOOSE = {"riskThreshold": "0.3", "buyThresholdPct": "0.2", "sellThresholdPct": "-0.2", "maxTradesPerDay": "40",
         "maxTradeAmount": "4000", "maxPositionPct": "100", "cooldownMinutes": "30"}


def random_walk(n: int, seed: int = 3, bar_seconds: int = 60, drift: float = 0.0) -> Bars:
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.normal(drift, 0.0015, n)))
    open_ = np.concatenate(([close[0]], close[:-1])) * (1 + rng.normal(0, 0.0002, n))
    high, low = np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999
    stamps = 1_700_000_000 - 1_700_000_000 % 86_400 + np.arange(n) * bar_seconds
    return Bars(stamps, open_, high, low, close, np.ones(n), np.zeros(n, dtype=np.int64), bar_seconds)


def reference(bars: Bars, settings, run, fee_bps: float, slippage_bps: float):
    """The live services' loop, longhand: every decision bar through `decide`, fills at the next open."""
    limits = replace(risk_limits(settings), fee_bps=fee_bps)
    wallet, state = PaperWallet.start(settings.paper_starting_cash), RiskState()
    fills, reasons = [], Counter()
    for t in run.decisions:
        t = int(t)
        prediction = prediction_at(bars, t, int(run.status[t]), float(run.predicted_price[t]),
                                   float(np.nan_to_num(run.confidence[t])), int(run.direction[t]),
                                   float(run.weight[t]), settings.prediction_horizon_minutes)
        if prediction.current_price:
            wallet = wallet.mark(prediction.current_price)  # as RiskService.check
        now = int(bars.timestamps[t]) + bars.bar_seconds
        decision = decide(prediction, wallet, state, limits, now)
        state = decision.state
        if not decision.approved or t + 1 >= len(bars):
            reasons[decision.reasons[0].split(":", 1)[0] if decision.reasons else "end_of_data"] += 1
            continue
        try:
            wallet, fill = wallet.fill(decision.intent.action, decision.intent.quantity_btc, float(bars.open[t + 1]),
                                       fee_bps, slippage_bps)
        except WalletError:
            reasons["wallet"] += 1
            continue
        state = state.after_trade(now, fill.realised_pnl_usd)
        fills.append((t + 1, decision.intent.action, fill.quantity_btc, fill.price, fill.fee_usd))
    return fills, reasons, wallet


@pytest.mark.parametrize("ignore_skill", [True, False])
@pytest.mark.parametrize("seed", [3, 11])
def test_decisions_equal_the_live_loop_bar_by_bar(seed, ignore_skill):
    bars = random_walk(4_000, seed)
    settings = load_stack_with_overrides("dev", LOOSE | {"maxDrawdownPct": "4"})
    run = run_live(bars, settings, settings.paper_starting_cash, settings.fee_bps, settings.slippage_bps,
                   ignore_skill=ignore_skill)
    fills, reasons, wallet = reference(bars, settings, run, settings.fee_bps, settings.slippage_bps)
    assert run.fills == fills
    assert run.rejections == reasons
    assert run.result.equity[-1] == pytest.approx(wallet.equity(float(bars.close[-1])))
    if ignore_skill:
        assert len(fills) >= 4  # the comparison saw trades, not only refusals


def test_predictions_equal_the_predictor_and_evaluator():
    """Forecast, evidence weight and ensemble at sampled bars, rebuilt with the live domain functions."""
    bars = random_walk(1_500, 5)
    settings = load_stack_with_overrides("dev", {"priceCollectionInterval": "1", "tradingInterval": "1",
                                                 "maxPriceAgeSeconds": "600"})
    horizon = settings.prediction_horizon_minutes  # 1-minute bars
    # Evidence complete after 15 calls, so the walk sees the prior fade and the weight reach 0.
    params = replace(edge_params(settings, horizon, 1, 15), full_evidence_calls=15, window=60)
    run = run_live(bars, settings, 10_000, 10, 5, edge=params)
    model = TechnicalModel()
    scores = {}  # prediction bar -> (model score, persistence score), as the evaluator stores them
    checked, statuses = 0, set()
    for t in range(BARS_NEEDED - 1, len(bars)):  # bar 50 closes the 51st bar: the first forecast
        history = PriceHistory(bars.timestamps[: t + 1] + 60, bars.close[: t + 1], 60, "BTC-USD")
        forecast = model.predict(history.tail(BARS_NEEDED), horizon)
        scored = [scores[j] for j in sorted(scores, reverse=True) if j + horizon <= t - 1]
        skill = rolling_skill("custom", scored, params)
        skills = {"custom": skill} if skill else {}
        weights = model_weights(["custom"], {"custom": 1.0}, skills, params)
        result = ensemble_result([ModelRun("custom", forecast)], weights, history, int(history.last_time), horizon,
                                 probabilities=edge_probabilities(["custom"], skills, params))
        statuses.add(result.status)
        if t % 37 == 0:
            checked += 1
            expected_status = {"ok": 0, "no_model": 2}[result.status]
            assert run.status[t] == expected_status, t
            assert run.predicted_price[t] == pytest.approx(forecast.predicted_price, rel=1e-12)
            built = prediction_at(bars, t, int(run.status[t]), float(run.predicted_price[t]),
                                  float(run.confidence[t]), int(run.direction[t]), float(run.weight[t]), horizon)
            assert PredictionResult.model_validate(built.model_dump()) == built  # a valid contract
            assert (built.status, built.direction) == (result.status, result.direction if result.status == "ok"
                                                       else built.direction)
            if result.status == "ok":
                assert run.weight[t] == pytest.approx(weights["custom"], rel=1e-9)
                assert result.confidence == pytest.approx(min(1.0, run.confidence[t]), rel=1e-9)
        if t + horizon < len(bars):
            model_score, persistence = score_prediction({"custom": forecast.predicted_price}, float(bars.close[t]),
                                                        float(bars.close[t + horizon]))
            assert persistence.model == PERSISTENCE
            scores[t] = (model_score, persistence)
    assert checked > 30 and statuses == {"ok", "no_model"}, statuses


def test_no_look_ahead():
    bars = random_walk(3_000, 7)
    settings = load_stack_with_overrides("dev", LOOSE)
    base = run_live(bars, settings, 10_000, 10, 5, ignore_skill=True)
    cut = 2_000
    future = np.random.default_rng(99).normal(1, 0.05, len(bars) - cut)
    changed = Bars(bars.timestamps, np.concatenate((bars.open[:cut], bars.open[cut:] * future)), bars.high, bars.low,
                   np.concatenate((bars.close[:cut], bars.close[cut:] * future)), bars.volume, bars.gap_before, 60)
    other = run_live(changed, settings, 10_000, 10, 5, ignore_skill=True)
    before = [f for f in base.fills if f[0] < cut]  # decided at bar < cut - 1, filled by bar cut - 1
    assert before and [f for f in other.fills if f[0] < cut] == before
    np.testing.assert_allclose(base.result.equity[:cut], other.result.equity[:cut])


@pytest.mark.realdata
def test_kill_switch_bounds_the_drawdown_on_every_real_file(shared_data):
    settings = load_stack_with_overrides("dev", LOOSE | {"maxDrawdownPct": "5"})
    files = sorted(shared_data.glob("*.csv.gz"))
    assert files
    for path in files:
        bars = load_bars(path)
        run = run_live(bars, settings, 10_000, settings.fee_bps, settings.slippage_bps, ignore_skill=True)
        if run.kill_switch_bar is None:
            assert -metrics(bars, run.result, 10_000)["max_drawdown_pct"] < 5 + 1, path.name
            continue
        t = run.kill_switch_bar
        # The drawdown as the kill switch measures it: equity against the peak it saw (marked at each
        # decision), at every bar up to and including the flattening fill. It may overshoot the
        # limit by one decision bar's move (it looks once per tradingInterval) and the sale's costs.
        equity = run.result.equity[: t + 2]
        marks = np.zeros(len(equity), dtype=bool)
        marks[run.decisions[run.decisions <= t]] = True
        seen_peak = np.maximum.accumulate(np.where(marks, equity, 0.0))
        dd = (1 - equity / np.maximum(seen_peak, 10_000)) * 100
        edges = run.decisions[run.decisions <= t]
        costs = (settings.fee_bps + settings.slippage_bps) / 100  # the flattening sale pays them too
        assert dd[: edges[0] + 1].max() <= 5 + 1e-9
        for a, b in zip(edges[:-1], edges[1:], strict=True):  # between two decisions: that bar's move
            one_bar = (bars.close[a:b + 1].max() / bars.close[a:b + 1].min() - 1) * 100
            assert dd[a + 1:b + 1].max() <= 5 + one_bar + 1e-9, (path.name, b, dd[a + 1:b + 1].max(), one_bar)
        prices = np.concatenate((bars.close[edges[-2]:t + 1], [bars.open[t + 1]]))  # to the flattening open
        one_bar = (prices.max() / prices.min() - 1) * 100
        assert dd[t + 1] <= 5 + one_bar + costs + 1e-9, (path.name, dd[t + 1], one_bar)
        after = [f for f in run.fills if f[0] > t]
        assert all(side == "SELL" for _, side, *_ in after) and len(after) <= 1, path.name  # only the flatten
        assert run.result.position[t + 2:].sum() == 0, path.name


def test_cli_live_json_and_reports(tmp_path, capsys):
    csv = tmp_path / "walk.csv"
    bars = random_walk(3_000, 3)
    rows = ["timestamp,open,high,low,close,volume"] + [
        f"{int(t)},{o},{h},{lo},{c},1" for t, o, h, lo, c in zip(bars.timestamps, bars.open, bars.high, bars.low,
                                                                     bars.close, strict=True)]
    csv.write_text("\n".join(rows) + "\n")
    args = ["backtest", "--data", str(csv), "--strategy", "live", "--ignore-skill", *sum((["--set", f"{k}={v}"]
                                                                                         for k, v in LOOSE.items()), [])]
    assert main([*args, "--json", "--report", str(tmp_path / "r.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("total_return_pct", "sharpe", "max_drawdown_pct", "closed_trades", "fills", "rejections_by_rule",
                "model_accuracy",
                "bars", "simulation_seconds", "buy_and_hold_pct", "profit_factor", "exposure_pct"):
        assert key in report
    assert report["bars"] == 3_000 and report["approved_intents"] >= 1
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([*args, "--report", str(tmp_path / "r.html")]) == 0
    assert "<svg" in (tmp_path / "r.html").read_text()
    assert main([*args, "--report", str(tmp_path / "r.pdf")]) == 2
    assert ".html or .png" in capsys.readouterr().err
    assert main(["backtest", "--data", str(csv), "--strategy", "live", "--set", "riskTreshold=0.3"]) == 2
    assert "riskTreshold" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["backtest", "--data", str(csv), "--grid", "riskThreshold=0.1,0.2"])
    assert exit_.value.code == 2 and "belongs to `btc-trader backtest sweep`" in capsys.readouterr().err

    assert main(["backtest", "sweep", "--data", str(csv), "--strategy", "live", "--ignore-skill", "--workers", "2",
                 "--grid", "riskThreshold=0.2,0.5", "--grid", "buyThresholdPct=0.1,0.3", "--json"]) == 0
    captured = capsys.readouterr()
    runs = json.loads(captured.out)["runs"]
    assert "--ignore-skill" in captured.err  # the sweep keeps the warning that this is not live behaviour
    assert len(runs) == 4 and {(r["riskThreshold"], r["buyThresholdPct"]) for r in runs} == {
        ("0.2", "0.1"), ("0.2", "0.3"), ("0.5", "0.1"), ("0.5", "0.3")}
    sharpes = [r["sharpe"] for r in runs if r["sharpe"] is not None]
    assert sharpes == sorted(sharpes, reverse=True)
    assert main(["backtest", "sweep", "--data", str(csv), "--strategy", "live", "--grid", "riskThreshold=2"]) == 2
    assert "riskThreshold" in capsys.readouterr().err
