"""A planted, known edge earns weight in the walk-forward; pure noise of the same size does not."""

import numpy as np
import pytest

from btc_trader.backtest.data import Bars
from btc_trader.backtest.live import run_live
from btc_trader.stack.settings import load_stack_with_overrides

# Thresholds at which the custom model calls often enough on hourly bars to be judged.
CALLS_OFTEN = {"buyThresholdPct": "0.2", "sellThresholdPct": "-0.2"}


def planted(n: int = 20_000, seed: int = 1, drift: float = 0.0015) -> Bars:
    """Hourly log returns: +drift or -drift, switching sign every 150-450 h, plus N(0, 0.5 %) noise."""
    rng = np.random.default_rng(seed)
    trend = np.zeros(n)
    i, sign = 0, 1
    while i < n:
        length = int(rng.integers(150, 451))
        trend[i:i + length] = sign * drift
        sign, i = -sign, i + length
    close = 20_000 * np.exp(np.cumsum(trend + rng.normal(0, 0.005, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    stamps = 1_600_000_000 - 1_600_000_000 % 86_400 + np.arange(n) * 3600
    return Bars(stamps, open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(n),
                np.zeros(n, dtype=np.int64), 3600)


def walk(bars: Bars) -> tuple[dict, np.ndarray]:
    settings = load_stack_with_overrides("dev", CALLS_OFTEN)
    run = run_live(bars, settings, 10_000, settings.fee_bps, settings.slippage_bps)
    record = run.walk_forward["custom"]
    days = record["weight_per_day"]
    assert len(days["date"]) == len(days["weight"]) == len(days["calls"]) == len(days["t_stat"]) == 20_000 // 24 + 1
    return record, np.array(days["weight"])


def test_a_planted_edge_earns_weight():
    record, weight = walk(planted())
    # The raw measure: the sign of every predicted move x the next bar's return.
    assert record["direction_gross_bps"] == pytest.approx(10, abs=2) and record["direction_naive_t"] > 20
    assert record["calls"] > 5_000 and record["mean_net_bps"] > 3, "it pays after fees and slippage"
    assert record["hit_rate"] > record["break_even_hit_rate"] and record["t_stat_newey_west"] > 4
    second_half = weight[len(weight) // 2:]
    assert (second_half > 0).mean() > 0.8 and record["final_weight"] == 1.0


@pytest.mark.parametrize("seed", [1, 2])
def test_pure_noise_earns_none(seed):
    record, weight = walk(planted(seed=seed, drift=0.0))
    assert abs(record["direction_naive_t"]) < 3
    assert record["mean_net_bps"] < 0 and record["t_stat_newey_west"] < 0
    assert (weight[len(weight) // 4:] == 0).mean() > 0.95 and record["final_weight"] == 0.0


def test_the_vectorised_ensemble_is_combine_at_every_decision():
    from btc_trader.backtest.live import _combine
    from btc_trader.domain.prediction.ensemble import ModelRun, combine
    from btc_trader.domain.prediction.model import ModelForecast

    rng = np.random.default_rng(5)
    d = 400
    current = 100 * np.exp(rng.normal(0, 0.01, d))
    models = ("custom", "bedrock", "huggingface")
    predicted = {m: current * (1 + rng.choice([-0.01, -0.0003, 0.004, 0.01], d)) for m in models}
    predicted["bedrock"][rng.random(d) < 0.2] = np.nan  # throttled now and then
    strength = {m: rng.random(d) for m in models}
    weights = {m: rng.choice([0.0, 0.5, 1.0], d) for m in models}
    trust = {m: rng.random(d) for m in models}
    vector = _combine(current, predicted, strength, weights, trust)
    seen = set()
    for j in range(d):
        runs = [ModelRun(m, ModelForecast(m, float(predicted[m][j]), float(strength[m][j]), float(current[j])))
                if not np.isnan(predicted[m][j]) else ModelRun(m, error="ThrottlingException") for m in models]
        w = {m: float(weights[m][j]) for m in models}
        if not any(r.ok and w[r.model] > 0 for r in runs):
            assert vector.status[j] == (1 if all(not r.ok for r in runs) else 2)
            continue
        expected = combine(runs, w, float(current[j]), {m: float(trust[m][j]) for m in models})
        seen.add(expected.direction)
        assert vector.status[j] == 0
        assert vector.predicted_price[j] == pytest.approx(expected.predicted_price, rel=1e-12)
        assert vector.confidence[j] == pytest.approx(expected.confidence, rel=1e-12, abs=1e-15)
        assert {1: "up", -1: "down", 0: "stable"}[int(vector.direction[j])] == expected.direction
    assert seen == {"up", "down", "stable"}
