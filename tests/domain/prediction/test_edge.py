"""Decision quality: net returns of calls, Newey-West significance, the weight rule, the walk-forward."""

from dataclasses import replace

import numpy as np
import pytest

from btc_trader.domain.prediction.edge import (
    EdgeParams,
    edge_probability,
    edge_stats,
    evidence_factor,
    net_returns,
    newey_west_t,
    positions,
    rolling_edge,
)

PARAMS = EdgeParams(buy_threshold_pct=0.2, sell_threshold_pct=-0.2, cost_bps=15, overlap=3, window=40,
                    full_evidence_calls=20)


def test_positions_and_staggered_tranche_costs():
    pos = positions(np.array([0.3, 0.25, -0.5, 0.1, np.nan, 0.2]), PARAMS)
    assert pos.tolist() == [1, 1, -1, 0, 0, 1]
    x, cost = net_returns(pos, np.full(6, 0.001), replace(PARAMS, overlap=1))
    # entry, hold, flip (two legs), exit, flat, entry
    assert cost.tolist() == [15, 0, 30, 15, 0, 15]
    assert x.tolist() == pytest.approx([10 - 15, 10, -10 - 30, -15, 0, 10 - 15])
    _, staggered = net_returns(pos, np.full(6, 0.001), PARAMS)  # overlap 3: against the call 3 steps back
    assert staggered.tolist() == [15, 15, 15, 15, 15, 30]


def test_newey_west_equals_the_iid_t_without_lags_and_widens_for_overlap():
    rng = np.random.default_rng(0)
    x = rng.normal(1, 10, 5_000)
    assert newey_west_t(x, 0) == pytest.approx(x.mean() / x.std() * np.sqrt(len(x)))
    overlapping = np.convolve(rng.normal(0.3, 10, 5_003), np.ones(4), "valid")  # 4-step sums share 3 steps
    naive = overlapping.mean() / overlapping.std() * np.sqrt(len(overlapping))
    corrected = newey_west_t(overlapping, 3)
    assert abs(corrected) < abs(naive) / 1.5, "overlapping horizons are not independent calls"
    assert newey_west_t(np.array([1.0]), 3) == 0.0 and newey_west_t(np.zeros(10), 3) == 0.0


def test_the_weight_rule():
    assert evidence_factor(0, 0.0, 0.0, PARAMS) == 1.0, "no calls: the prior"
    assert evidence_factor(10, 0.5, 1.0, PARAMS) == 0.5, "half the evidence, not significant: halfway to 0"
    assert evidence_factor(10, 2.5, 1.0, PARAMS) == 1.0
    assert evidence_factor(25, 1.99, 1.0, PARAMS) == 0.0, "after full_evidence_calls: 0 unless significant"
    assert evidence_factor(25, 2.5, -1.0, PARAMS) == 0.0
    assert edge_probability(0, -5.0, PARAMS) == 1.0
    assert edge_probability(40, 0.0, PARAMS) == pytest.approx(0.5)
    assert edge_probability(40, 1.6449, PARAMS) == pytest.approx(0.95, abs=1e-4)


@pytest.mark.parametrize("overlap", [1, 4])
def test_the_walk_forward_equals_the_evaluator_on_every_prefix(overlap):
    rng = np.random.default_rng(overlap)
    n = 600
    moves = rng.normal(0.05, 0.3, n)
    moves[rng.random(n) < 0.1] = np.nan  # a few scores stored before moves were kept
    realised = np.sign(np.nan_to_num(moves)) * 0.001 + rng.normal(0, 0.004, n)
    params = replace(PARAMS, overlap=overlap)
    known = np.arange(0, n + 1, 7)
    walked = rolling_edge(moves, realised, known, params)
    for j, k in enumerate(known):
        expected = edge_stats(moves[:k], realised[:k], params)
        assert walked.steps[j] == expected.steps and walked.calls[j] == expected.calls, k
        assert walked.hits[j] == expected.hits
        assert walked.mean_net_bps[j] == pytest.approx(expected.mean_net_bps, abs=1e-9)
        assert walked.t_stat[j] == pytest.approx(expected.t_stat, rel=1e-7, abs=1e-9)
        factor = evidence_factor(expected.calls, expected.t_stat, expected.mean_net_bps, params)
        assert walked.factor[j] == pytest.approx(factor)
        assert walked.probability[j] == pytest.approx(edge_probability(expected.calls, expected.t_stat, params))
    assert walked.calls.max() == params.window, "the window holds the newest `window` calls"
