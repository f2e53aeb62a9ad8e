import pytest

from btc_trader.domain.prediction.ensemble import (
    ModelRun,
    NoUsableModelError,
    Skill,
    combine,
    model_weights,
)
from btc_trader.domain.prediction.model import ModelForecast
from btc_trader.domain.prediction.scoring import PERSISTENCE, rolling_skill, score, score_prediction


def run(model, price, confidence, current=100.0):
    return ModelRun(model, ModelForecast(model, price, confidence, current))


def test_weighted_consensus_and_confidence():
    runs = [run("a", 101.0, 0.8), run("b", 100.5, 0.6), run("c", 99.0, 0.9)]
    result = combine(runs, {"a": 1, "b": 1, "c": 1}, 100.0)
    assert result.direction == "up"
    assert result.agreement == pytest.approx(2 / 3)
    assert result.confidence == pytest.approx((0.8 + 0.6) / 3)
    assert result.predicted_price == pytest.approx((101 + 100.5 + 99) / 3)


def test_failed_models_are_excluded_and_none_is_explicit():
    runs = [run("a", 101.0, 0.8), ModelRun("b", error="ThrottlingException")]
    result = combine(runs, {"a": 1, "b": 1}, 100.0)
    assert result.weights == {"a": 1.0}
    with pytest.raises(NoUsableModelError, match="b: ThrottlingException"):
        combine([ModelRun("b", error="ThrottlingException")], {"b": 1}, 100.0)


def test_a_model_worse_than_persistence_loses_its_weight():
    skills = {
        "good": Skill("good", 50, 0.6, mae_pct=0.5, persistence_mae_pct=1.0),
        "bad": Skill("bad", 50, 0.4, mae_pct=1.5, persistence_mae_pct=1.0),
        "new": Skill("new", 3, 0.9, mae_pct=0.1, persistence_mae_pct=1.0),
    }
    weights = model_weights(["good", "bad", "new"], {"good": 1, "bad": 1, "new": 0.3}, skills, min_samples=20)
    assert weights == {"good": 0.5, "bad": 0.0, "new": 0.3}
    result = combine([run("good", 101, 0.5), run("bad", 98, 0.99), run("new", 101, 0.5)], weights, 100.0)
    assert "bad" not in result.weights and result.direction == "up"


def test_split_vote_is_stable():
    result = combine([run("a", 101.0, 0.9), run("b", 99.0, 0.9)], {"a": 1, "b": 1}, 100.0)
    assert result.direction == "stable"


def test_scores_and_persistence_baseline():
    scores = score_prediction({"m": 102.0}, base_price=100.0, realised_price=101.0)
    by_model = {s.model: s for s in scores}
    assert by_model["m"].abs_pct_error == pytest.approx(1 / 101 * 100)
    assert by_model["m"].direction_hit is True
    assert by_model[PERSISTENCE].abs_pct_error == pytest.approx(1 / 101 * 100)
    assert by_model[PERSISTENCE].direction_hit is False
    assert score("x", 100.01, 100.0, 100.02).direction_hit is True  # both "stable"


def test_rolling_skill_uses_the_newest_window():
    good = (score("m", 101, 100, 101), score(PERSISTENCE, 100, 100, 101))
    bad = (score("m", 99, 100, 101), score(PERSISTENCE, 100, 100, 101))
    skill = rolling_skill("m", [good, good, bad, bad, bad], window=2)
    assert skill.samples == 2 and skill.hit_rate == 1.0 and skill.vs_persistence == pytest.approx(1.0)
    assert rolling_skill("m", [], 5) is None
