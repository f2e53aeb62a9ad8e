from dataclasses import replace

import numpy as np
import pytest

from btc_trader.contracts import PredictionResult
from btc_trader.domain.prediction.edge import EdgeParams
from btc_trader.domain.prediction.ensemble import (
    ModelRun,
    NoUsableModelError,
    Skill,
    combine,
    edge_probabilities,
    model_weights,
)
from btc_trader.domain.prediction.model import InsufficientHistoryError, ModelForecast, PriceHistory
from btc_trader.domain.prediction.result import ensemble_result, insufficient_history_result
from btc_trader.domain.prediction.scoring import (
    PERSISTENCE,
    rolling_skill,
    score,
    score_prediction,
    score_stored_prediction,
)

HISTORY = PriceHistory(np.array([1_678_535_940, 1_678_536_000]), np.array([99.0, 100.0]), 60,
                       newest_price_time=1_678_535_990)


def run(model, price, confidence, current=100.0):
    return ModelRun(model, ModelForecast(model, price, confidence, current))


def skill(model, mae, persistence=1.0, samples=50):
    return Skill(model, samples, 0.5, mae_pct=mae, persistence_mae_pct=persistence)


def test_weighted_consensus_and_confidence():
    runs = [run("a", 101.0, 0.8), run("b", 100.5, 0.6), run("c", 99.0, 0.9)]
    result = combine(runs, {"a": 1, "b": 1, "c": 1}, 100.0)
    assert result.direction == "up"
    assert result.agreement == pytest.approx(2 / 3)
    assert result.confidence == pytest.approx((0.8 + 0.6) / 3), "agreement x the agreeing models' conviction"
    assert result.predicted_price == pytest.approx((101 + 100.5) / 2), "price from the models that carried the vote"


def test_weights_shape_price_vote_and_confidence():
    runs = [run("a", 101.0, 0.8), run("b", 99.0, 0.9)]
    result = combine(runs, {"a": 3, "b": 1}, 100.0)
    assert result.direction == "up" and result.weights == {"a": 0.75, "b": 0.25}
    assert result.confidence == pytest.approx(0.75 * 0.8)


def test_failed_models_are_excluded_and_none_is_explicit():
    runs = [run("a", 101.0, 0.8), ModelRun("b", error="ThrottlingException")]
    result = combine(runs, {"a": 1, "b": 1}, 100.0)
    assert result.weights == {"a": 1.0}
    with pytest.raises(NoUsableModelError, match="b: ThrottlingException"):
        combine([ModelRun("b", error="ThrottlingException")], {"b": 1}, 100.0)


EDGE = EdgeParams(buy_threshold_pct=0.5, sell_threshold_pct=-0.5, cost_bps=15, full_evidence_calls=100)


def record(model, calls, t_stat, mean_net_bps):
    return Skill(model, calls * 3, 0.5, 1.0, 1.0, calls=calls, t_stat=t_stat, mean_net_bps=mean_net_bps)


def test_the_configured_weight_is_the_prior_and_evidence_moves_it():
    configured = {"a": 2.0, "b": 1.0, "new": 1.5}
    assert model_weights(["a", "b", "new"], configured, {}, EDGE) == configured, "no calls: the prior"
    halfway = {"a": record("a", 50, 3.0, 8.0), "b": record("b", 50, 0.5, 2.0)}
    assert model_weights(["a", "b", "new"], configured, halfway, EDGE) == pytest.approx(
        {"a": 2.0, "b": 0.5, "new": 1.5}), "half the evidence: halfway from the prior to what it supports"
    full = {"a": record("a", 400, 2.5, 6.0), "b": record("b", 400, 1.9, 3.0)}
    assert model_weights(["a", "b"], configured, full, EDGE) == {"a": 2.0, "b": 0.0}, "not significant: weight 0"
    assert model_weights(["a"], configured, {"a": record("a", 400, 2.5, -1.0)}, EDGE) == {"a": 0.0}


def test_a_model_without_net_edge_loses_its_vote_and_unproven_ones_lose_confidence():
    skills = {"good": record("good", 300, 4.0, 9.0), "bad": record("bad", 300, -3.0, -12.0)}
    weights = model_weights(["good", "bad"], {"good": 1, "bad": 1}, skills, EDGE)
    assert weights == {"good": 1.0, "bad": 0.0}
    probabilities = edge_probabilities(["good", "bad", "new"], skills | {"new": record("new", 50, 0.0, 0.0)}, EDGE)
    assert probabilities["good"] == pytest.approx(0.99997, abs=1e-5)
    assert probabilities["new"] == pytest.approx(0.5 * 1 + 0.5 * 0.5), "half the evidence, t = 0: Phi(0) = 0.5"
    result = combine([run("good", 101, 0.5), run("bad", 98, 0.99)], weights, 100.0, probabilities)
    assert result.weights == {"good": 1.0} and result.direction == "up"
    assert result.confidence == pytest.approx(0.5 * probabilities["good"])
    unproven = combine([run("new", 101, 0.9)], {"new": 1.0}, 100.0, probabilities)
    assert unproven.confidence == pytest.approx(0.9 * 0.75), "confidence = P(net edge > 0) x the call's strength"
    assert skill("flat", 0.0, persistence=0.0).vs_persistence == 1.0
    assert skill("flat", 0.1, persistence=0.0).vs_persistence == 0.0


def test_split_vote_is_stable_at_the_current_price():
    result = combine([run("a", 101.0, 0.9), run("b", 99.0, 0.9)], {"a": 1, "b": 1}, 100.0)
    assert (result.direction, result.predicted_price, result.confidence) == ("stable", 100.0, 0.0)


def test_result_maps_onto_the_contract():
    runs = [run("custom", 101.0, 0.8), ModelRun("bedrock", error="ThrottlingException: slow down")]
    result = ensemble_result(runs, {"custom": 1.0, "bedrock": 1.0}, HISTORY, at=1_678_536_030, horizon_minutes=60,
                             source_divergence_bps=4.0)
    assert isinstance(result, PredictionResult) and result.status == "ok"
    assert result.as_of == "2023-03-11T11:59:50Z" and result.price_age_s == 40
    assert (result.current_price, result.predicted_price, result.direction) == (100.0, 101.0, "up")
    models = {m.model: m for m in result.models}
    assert models["custom"].weight == 1.0 and models["custom"].ok
    assert models["bedrock"].model_dump(exclude_none=True) == {
        "model": "bedrock", "weight": 0.0, "ok": False, "error": "ThrottlingException: slow down"}
    PredictionResult.model_validate(result.model_dump(mode="json"))


def test_no_usable_model_is_an_explicit_result():
    runs = [ModelRun("bedrock", error="ValidationException: bad model id")]
    result = ensemble_result(runs, {"bedrock": 1.0}, HISTORY, at=1_678_536_000, horizon_minutes=60)
    assert result.status == "no_model" and "bedrock: ValidationException" in result.reason
    assert result.predicted_price is None and result.confidence == 0.0 and not result.models[0].ok
    refusal = insufficient_history_result(InsufficientHistoryError(12, 51), 1_678_536_000, 60)
    assert refusal.status == "insufficient_history" and refusal.reason == "insufficient_history: 12 bars, 51 needed"


def test_scores_and_persistence_baseline():
    scores = score_prediction({"m": 102.0}, base_price=100.0, realised_price=101.0)
    by_model = {s.model: s for s in scores}
    assert by_model["m"].abs_pct_error == pytest.approx(1 / 101 * 100)
    assert by_model["m"].direction_hit is True
    assert by_model[PERSISTENCE].abs_pct_error == pytest.approx(1 / 101 * 100)
    assert by_model[PERSISTENCE].direction_hit is False
    assert score("x", 100.01, 100.0, 100.02).direction_hit is True  # both "stable"
    with pytest.raises(ValueError, match="realised price must be finite and positive"):
        score("x", 100.0, 100.0, float("nan"))


def test_a_stored_prediction_scores_its_ok_models_only():
    runs = [run("custom", 101.0, 0.8), ModelRun("bedrock", error="boom")]
    stored = ensemble_result(runs, {"custom": 1.0}, HISTORY, 1_678_536_000, 60).model_dump(mode="json")
    scores = {s.model: s for s in score_stored_prediction(stored, realised_price=100.5)}
    assert set(scores) == {"custom", PERSISTENCE}
    assert scores["custom"].abs_pct_error == pytest.approx(0.5 / 100.5 * 100)
    refused = insufficient_history_result(InsufficientHistoryError(0, 51), 1_678_536_000, 60).model_dump(mode="json")
    with pytest.raises(ValueError, match="only ok predictions"):
        score_stored_prediction(refused, 100.0)


def test_rolling_skill_reads_back_to_the_window_th_newest_call():
    call_up = (score("m", 101, 100, 101), score(PERSISTENCE, 100, 100, 101))  # +1 % called, +1 % happened
    call_wrong = (score("m", 99, 100, 101), score(PERSISTENCE, 100, 100, 101))  # -1 % called, +1 % happened
    quiet = (score("m", 100.1, 100, 101), score(PERSISTENCE, 100, 100, 101))  # +0.1 %: below the threshold
    params = EdgeParams(0.5, -0.5, cost_bps=15, window=2)
    newest_first = [call_up, quiet, call_up, call_wrong, call_wrong, call_wrong]
    recent = rolling_skill("m", newest_first, params)
    assert (recent.samples, recent.calls, recent.call_hit_rate) == (3, 2, 1.0)
    # chronological: wrong (-1), up (+1), quiet (0), up (+1): costs 15 + 2 x 15 (flip) + 15 (exit) + 15 (entry)
    assert recent.mean_net_bps == pytest.approx((100 + 100 - 30 - 15 - 15) / 2)
    assert recent.mae_pct == pytest.approx((0 + 0.9 / 101 * 100 + 0) / 3) and recent.persistence_hit_rate == 0.0
    whole = rolling_skill("m", iter(newest_first), replace(params, window=50))
    assert (whole.samples, whole.calls, whole.call_hit_rate) == (6, 5, pytest.approx(0.4))
    # chronological: -1 -1 -1 +1 0 +1 pays 15 + 30 + 15 + 15 over 5 calls; every move was 100 bps
    assert whole.break_even_hit_rate == pytest.approx(0.5 + (15 + 30 + 15 + 15) / 5 / (2 * 100))
    assert rolling_skill("m", [], params) is None
