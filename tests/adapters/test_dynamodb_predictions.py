"""The prediction store on moto: each prediction once, due ones found, scores and skills kept."""

import boto3
import numpy as np
import pytest
from moto import mock_aws

from btc_trader.adapters.dynamodb_predictions import EVIDENCE_MAX_AGE_S, DynamoDBPredictionStore
from btc_trader.contracts import PredictionResult
from btc_trader.domain.prediction.edge import EdgeParams
from btc_trader.domain.prediction.ensemble import ModelRun
from btc_trader.domain.prediction.model import InsufficientHistoryError, ModelForecast, PriceHistory
from btc_trader.domain.prediction.result import ensemble_result, insufficient_history_result
from btc_trader.domain.prediction.scoring import (
    PERSISTENCE,
    Score,
    rolling_skill,
    score_stored_prediction,
)
from btc_trader.storage_schema import PREDICTION_SCORES, PREDICTIONS
from tests.aws_fakes import create_table

T0 = 1_678_536_000
HORIZON = 60


@pytest.fixture
def store():
    with mock_aws():
        for spec in (PREDICTIONS, PREDICTION_SCORES):
            create_table(spec, spec.role)
        yield DynamoDBPredictionStore(PREDICTIONS.role, PREDICTION_SCORES.role, client=boto3.client("dynamodb"))


def result_at(at, custom_price=101.0, bedrock_error="ThrottlingException: slow down"):
    history = PriceHistory(np.array([at - 60, at]), np.array([99.5, 100.0]), 60)
    runs = [ModelRun("custom", ModelForecast("custom", custom_price, 0.8, 100.0)),
            ModelRun("bedrock", error=bedrock_error)]
    return ensemble_result(runs, {"custom": 2.0, "bedrock": 1.0}, history, at, HORIZON)


def test_every_model_output_weight_and_the_ensemble_are_stored_once(store):
    result = result_at(T0)
    assert store.save_result("BTC-USD", T0, result, execution_id="exec-1", expires_at=T0 + 86_400) is True
    assert store.save_result("BTC-USD", T0, result, execution_id="exec-2", expires_at=T0 + 86_400) is False
    stored = store.get_prediction("BTC-USD", T0)
    assert stored["execution_id"] == "exec-1" and stored["due_at"] == T0 + HORIZON * 60
    assert PredictionResult.model_validate(stored["result"]) == result, "None fields are left out, nothing else"
    models = {m["model"]: m for m in stored["result"]["models"]}
    assert models["custom"]["weight"] == 1.0 and models["bedrock"] == {
        "model": "bedrock", "weight": 0.0, "ok": False, "error": "ThrottlingException: slow down"}
    assert store.get_prediction("BTC-USD", T0 + 1) is None


def test_due_for_scoring_is_past_its_horizon_and_unscored(store):
    for minutes in (0, 15, 30, 90):
        at = T0 + minutes * 60
        store.save_result("BTC-USD", at, result_at(at), execution_id=None, expires_at=at + 86_400)
    refused = insufficient_history_result(InsufficientHistoryError(3, 51), T0 + 5 * 60, HORIZON)
    store.save_result("BTC-USD", T0 + 300, refused, execution_id=None, expires_at=T0 + 86_400)
    now = T0 + 80 * 60
    due = store.due_for_scoring("BTC-USD", now, lookback_s=86_400)
    assert [d["timestamp"] for d in due] == [T0, T0 + 15 * 60], "refusals have nothing to score"
    scores = score_stored_prediction(due[0]["result"], realised_price=100.5)
    store.save_scores("BTC-USD", T0, scores, 100.5, now=now, expires_at=now + 86_400)
    assert [d["timestamp"] for d in store.due_for_scoring("BTC-USD", now, 86_400)] == [T0 + 15 * 60]
    scored = store.get_prediction("BTC-USD", T0)
    assert scored["realised_price"] == 100.5 and scored["scored_at"] == now
    assert set(scored["scores"]) == {"custom", PERSISTENCE}


def test_rolling_skill_from_stored_scores_and_skill_snapshots(store):
    realised = [100.6, 100.8, 99.0, 101.2, 100.9]  # custom predicts 101 every time
    for i, price in enumerate(realised):
        at = T0 + i * 3600
        store.save_result("BTC-USD", at, result_at(at), execution_id=None, expires_at=at + 86_400)
        scores = score_stored_prediction(store.get_prediction("BTC-USD", at)["result"], price)
        store.save_scores("BTC-USD", at, scores, price, now=at + 3600, expires_at=at + 86_400)
    skills = store.skills("BTC-USD", ["custom", "bedrock"], EdgeParams(0.5, -0.5, cost_bps=15, window=3))
    assert set(skills) == {"custom"}, "a model with no scores has no skill yet"
    newest = realised[-3:]
    custom = skills["custom"]
    assert custom.samples == 3
    assert custom.mae_pct == pytest.approx(sum(abs(101 - p) / p * 100 for p in newest) / 3)
    assert custom.persistence_mae_pct == pytest.approx(sum(abs(100 - p) / p * 100 for p in newest) / 3)
    assert custom.hit_rate == pytest.approx(2 / 3)
    # Every prediction is a +1 % call; the step before the window was long too, so no cost inside it.
    assert (custom.calls, custom.call_hit_rate) == (3, pytest.approx(2 / 3))
    assert custom.mean_net_bps == pytest.approx((-100 + 120 + 90) / 3)

    assert store.latest_skills("BTC-USD") == {}
    store.save_skills("BTC-USD", {"custom": custom}, at=T0 + 5 * 3600, expires_at=T0 + 9 * 86_400)
    older = store.skills("BTC-USD", ["custom"], EdgeParams(0.5, -0.5, cost_bps=15, window=5))["custom"]
    assert older.mean_net_bps == pytest.approx((60 + 80 - 100 + 120 + 90 - 15) / 5), "the first entry pays its leg"
    store.save_skills("BTC-USD", {"custom": older}, at=T0 + 4 * 3600, expires_at=T0 + 9 * 86_400)
    assert store.latest_skills("BTC-USD") == {"custom": custom}, "the newest snapshot wins"
    assert store.latest_skills("BTC-USD", ["bedrock"]) == {}


def test_the_evidence_is_read_from_the_wire_format_older_items_included(store):
    """Scores read straight from DynamoDB's attribute values; a score stored before the decision
    fields existed reads as a step without them (NaN), as it always did."""
    client = store.client
    series = {"S": "BTC-USD#custom"}
    for i, decision in enumerate([True, False]):
        item = {"series": series, "timestamp": {"N": str(T0 + i * 3600)}, "abs_pct_error": {"N": "0.25"},
                "direction_hit": {"BOOL": i == 0}, "persistence_abs_pct_error": {"N": "0.5"},
                "persistence_direction_hit": {"BOOL": False}, "expires_at": {"N": str(T0 + 86_400)}}
        if decision:
            item |= {"predicted_move_pct": {"N": "1.0"}, "realised_return": {"N": "0.006"}}
        client.put_item(TableName=PREDICTION_SCORES.role, Item={
            PREDICTION_SCORES.hash_key.name: series, PREDICTION_SCORES.range_key.name: item.pop("timestamp"),
            **{k: v for k, v in item.items() if k != "series"}})
    pairs = list(store._pairs("custom", client.get_paginator("query").paginate(
        TableName=PREDICTION_SCORES.role, KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": PREDICTION_SCORES.hash_key.name}, ExpressionAttributeValues={":s": series})))
    first, second = pairs[0][0], pairs[1][0]
    assert (first.abs_pct_error, first.direction_hit, first.predicted_move_pct) == (0.25, True, 1.0)
    assert np.isnan(second.predicted_move_pct) and np.isnan(second.realised_return) and second.direction_hit is False
    assert pairs[1][1].abs_pct_error == 0.5 and pairs[1][1].direction_hit is False
    skill = store.skills("BTC-USD", ["custom"], EdgeParams(0.5, -0.5, cost_bps=15))["custom"]
    assert skill.samples == 2 and skill.mae_pct == pytest.approx(0.25)
    with pytest.raises(KeyError, match="abs_pct_error"):  # a required field missing is not a zero
        list(store._pairs("custom", [{"Items": [{"direction_hit": {"BOOL": True}}]}]))


def test_scores_need_the_persistence_baseline(store):
    with pytest.raises(ValueError, match="lack the persistence baseline"):
        store.save_scores("BTC-USD", T0, [], 100.0, now=T0, expires_at=T0 + 1)


def test_a_warm_stores_evidence_is_what_a_full_read_returns(store):
    """A long-lived store (a warm container) reads the score series once, then only newer scores,
    and knows what it writes: through new scores, late (older) ones, reruns that overwrite and
    models without scores, its skills equal those of a fresh store reading everything."""
    import random

    rng = random.Random(17)
    params = EdgeParams(0.3, -0.3, cost_bps=15, window=40)
    written = []
    client = boto3.client("dynamodb")

    def full_read(model):
        """What the evaluator computed before: the whole series, newest first, from the table."""
        pages = client.get_paginator("query").paginate(
            TableName=PREDICTION_SCORES.role, KeyConditionExpression="#s = :s", ScanIndexForward=False,
            ExpressionAttributeNames={"#s": PREDICTION_SCORES.hash_key.name},
            ExpressionAttributeValues={":s": {"S": f"BTC-USD#{model}"}})
        return rolling_skill(model, DynamoDBPredictionStore._pairs(model, pages), params)

    def scores(moved):
        custom = Score("custom", rng.uniform(0, 2), rng.random() < 0.5, moved, rng.uniform(-0.02, 0.02))
        return [custom, Score(PERSISTENCE, rng.uniform(0, 2), rng.random() < 0.5)]

    for step in range(160):
        roll = rng.random()
        if roll < 0.7 or not written:
            at = T0 + (len(written) + 1) * 900  # the next prediction time
        elif roll < 0.85:
            at = T0 + rng.randint(0, len(written)) * 900 + 450  # a late score, older than the newest
        else:
            at = rng.choice(written)  # a rerun overwrites with what it scores now
        written.append(at)
        moved = rng.choice([rng.uniform(-1, 1), None])  # some scores carry no decision record
        store.save_scores("BTC-USD", at, scores(moved), 100.0, now=at + 3600, expires_at=at + 86_400)
        if step % 3 == 0:
            warm = store.skills("BTC-USD", ["custom", "bedrock"], params)
            assert set(warm) == {"custom"} and warm["custom"] == full_read("custom"), step
    assert warm["custom"].samples > 40


def test_another_writers_late_scores_reach_a_warm_store_when_it_reads_the_series_again():
    with mock_aws():
        for spec in (PREDICTIONS, PREDICTION_SCORES):
            create_table(spec, spec.role)
        now = [0.0]
        warm = DynamoDBPredictionStore(PREDICTIONS.role, PREDICTION_SCORES.role, client=boto3.client("dynamodb"),
                                       clock=lambda: now[0])
        other = DynamoDBPredictionStore(PREDICTIONS.role, PREDICTION_SCORES.role, client=boto3.client("dynamodb"))
        params = EdgeParams(0.5, -0.5, cost_bps=15, window=10)

        def save(into, at, error):
            into.save_scores("BTC-USD", at, [Score("custom", error, True, 1.0, 0.01), Score(PERSISTENCE, 1.0, False)],
                             101.0, now=at + 3600, expires_at=at + 86_400)

        for i in range(1, 4):
            save(warm, T0 + i * 900, 0.5)
        assert warm.skills("BTC-USD", ["custom"], params)["custom"].samples == 3
        save(other, T0, 2.0)  # another container's late score, older than what the warm store read
        assert warm.skills("BTC-USD", ["custom"], params)["custom"].samples == 3, "not read back yet"
        now[0] += EVIDENCE_MAX_AGE_S + 1
        assert warm.skills("BTC-USD", ["custom"], params)["custom"].samples == 4
