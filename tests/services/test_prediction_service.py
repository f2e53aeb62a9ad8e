"""Prediction and evaluation services end to end on moto, including on real replayed candles."""

import math

import boto3
import numpy as np
import pytest
from moto import mock_aws

from btc_trader.adapters.candle_files import read_candles
from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
from btc_trader.adapters.dynamodb_predictions import DynamoDBPredictionStore
from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
from btc_trader.domain.candles import Candle
from btc_trader.domain.prediction.edge import EdgeParams
from btc_trader.domain.prediction.model import ForecastError, ModelForecast
from btc_trader.domain.prediction.technical import TechnicalModel
from btc_trader.services.evaluation import EvaluationService
from btc_trader.services.prediction import PredictionParams, PredictionService, run_models
from btc_trader.storage_schema import PREDICTION_SCORES, PREDICTIONS, PRICES
from tests.aws_fakes import create_table

# Hourly predictions of a 60-minute horizon (no overlap); evidence complete after 5 calls.
EDGE = EdgeParams(buy_threshold_pct=0.1, sell_threshold_pct=-0.1, cost_bps=15, overlap=1, full_evidence_calls=5,
                  window=50)
PARAMS = PredictionParams(horizon_minutes=60, bar_seconds=300, configured_weights={"custom": 1.0, "contrarian": 1.0},
                          edge=EDGE, ttl_days=30, model_timeout_s=5)


class Contrarian:
    """Predicts the opposite of the last hour's move: a model that should lose weight."""

    name = "contrarian"
    history_bars = 13

    def predict(self, history, horizon_minutes):
        last, hour_ago = history.prices[-1], history.prices[-13]
        return ModelForecast(self.name, float(last * (hour_ago / last)), 0.9, float(last))


class Broken:
    name = "broken"
    history_bars = 5

    def predict(self, history, horizon_minutes):
        raise ForecastError("ThrottlingException: Too many requests")


class Slow:
    name = "slow"
    history_bars = 5

    def predict(self, history, horizon_minutes):
        import time

        time.sleep(2)
        raise AssertionError("should have been abandoned")


@pytest.fixture
def aws():
    with mock_aws():
        for spec in (PRICES, PREDICTIONS, PREDICTION_SCORES):
            create_table(spec, spec.role)
        yield boto3.client("dynamodb")


def load(candles):
    DynamoDBPriceRepository("prices").save_candles("BTC-USD", candles, source="test")


def services(predictors, params=PARAMS):
    store = DynamoDBPredictionStore("predictions", "prediction-scores")
    history = DynamoDBPriceHistory("prices")
    prediction = PredictionService(history, store, predictors, params)
    evaluation = EvaluationService(history, store, [p.name for p in predictors], tolerance_s=600,
                                   lookback_s=7 * 86_400, edge=params.edge, ttl_days=30)
    return prediction, evaluation, store


def synthetic(minutes=3_000, start=1_700_000_000):
    prices = 20_000 * np.exp(np.cumsum(np.sin(np.arange(minutes) / 90) * 0.0006))
    return [Candle(start + 60 * i, p, p, p, p, 1.0) for i, p in enumerate(prices)]


def test_prediction_in_the_contract_shape_and_stored(aws):
    candles = synthetic()
    load(candles)
    prediction, _, store = services([TechnicalModel(), Broken()])
    at = candles[-1].timestamp + 60
    outcome = prediction.predict("BTC-USD", at, "exec-1")
    result = outcome.result
    assert result.status == "ok" and result.price_age_s == 0
    assert result.current_price == pytest.approx(candles[-1].close)
    models = {m.model: m for m in result.models}
    assert models["custom"].ok and models["custom"].weight == 1.0
    assert not models["broken"].ok and "ThrottlingException" in models["broken"].error
    stored = store.get_prediction("BTC-USD", at)
    assert stored["execution_id"] == "exec-1" and stored["due_at"] == at + 3600
    assert stored["result"]["direction"] == result.direction
    again = prediction.predict("BTC-USD", at, "exec-1")
    assert again.result == result and again.stored is False


def test_insufficient_history_is_a_clear_result(aws):
    load(synthetic(minutes=100))
    prediction, _, store = services([TechnicalModel()])
    at = 1_700_000_000 + 100 * 60
    result = prediction.predict("BTC-USD", at).result
    assert result.status == "insufficient_history"
    assert "51 needed" in result.reason
    assert store.get_prediction("BTC-USD", at)["status"] == "insufficient_history"
    nothing = prediction.predict("ETH-USD", at).result
    assert nothing.status == "insufficient_history" and "no prices for ETH-USD" in nothing.reason


def test_no_model_is_explicit(aws):
    load(synthetic())
    prediction, _, _ = services([Broken()])
    result = prediction.predict("BTC-USD", 1_700_000_000 + 3_000 * 60).result
    assert result.status == "no_model" and "broken: ThrottlingException" in result.reason


def test_slow_models_are_abandoned_at_their_timeout():
    from btc_trader.domain.prediction.model import PriceHistory

    history = PriceHistory(np.arange(10) * 60, np.ones(10), 60)
    runs = run_models([Slow(), Broken()], history, 60, timeout_s=0.2)
    assert {r.model: r.error for r in runs} == {"slow": "timed out after 0.2 s",
                                                 "broken": "ThrottlingException: Too many requests"}


def run_days(candles, predictors, hours):
    prediction, evaluation, store = services(predictors)
    start = candles[0].timestamp + 6 * 3600
    weights_over_time = []
    for hour in range(hours):
        at = start + hour * 3600
        outcome = prediction.predict("BTC-USD", at)
        weights_over_time.append(dict(outcome.weights))
        evaluation.evaluate("BTC-USD", at)
    return weights_over_time, evaluation.evaluate("BTC-USD", start + hours * 3600)


def test_evaluator_scores_and_weights_move(aws):
    candles = synthetic(minutes=40 * 60)
    load(candles)
    weights, final = run_days(candles, [TechnicalModel(), Contrarian()], hours=30)
    first, last = weights[0], weights[-1]
    assert first == pytest.approx({"custom": 0.5, "contrarian": 0.5}), "configured weights at first"
    assert last != first, "the decision record replaces the configured weights"
    skills = final.skills
    assert skills["custom"].samples >= 20 and skills["custom"].calls >= 5
    assert skills["custom"].t_stat >= 2 and skills["custom"].mean_net_bps > 0
    assert skills["contrarian"].mean_net_bps < 0 and "contrarian" not in last, "losing after costs: weight 0"


@pytest.mark.realdata
def test_on_real_replayed_candles(aws, shared_file):
    candles = read_candles(shared_file("btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"))
    day = [c for c in candles if 1678406400 <= c.timestamp < 1678406400 + 36 * 3600]  # from 2023-03-10
    load(day)
    weights, final = run_days(day, [TechnicalModel(), Contrarian()], hours=24)
    assert final.skills["custom"].samples >= 15
    assert weights[-1] != weights[0]
    assert all(math.isfinite(s.mae_pct) for s in final.skills.values())


@pytest.mark.realdata
def test_evaluator_on_real_hourly_data(aws, shared_file):
    candles = read_candles(shared_file("btcusd_1h_bitstamp_2018-05-15_2023-01-25.csv.gz"))[:130]
    DynamoDBPriceRepository("prices").save_candles("BTC-USD", candles, source="test", bar_seconds=3600)
    params = PredictionParams(horizon_minutes=60, bar_seconds=3600, configured_weights={"custom": 1.0},
                              edge=EdgeParams(0.2, -0.2, 15, full_evidence_calls=20, window=40), ttl_days=30,
                              model_timeout_s=5)
    prediction, evaluation, _ = services([TechnicalModel()], params)
    first = candles[0].timestamp + 3600
    for bar in range(60, 120):
        at = first + bar * 3600
        prediction.predict("BTC-USD", at)
        evaluation.evaluate("BTC-USD", at)
    skill = evaluation.evaluate("BTC-USD", first + 121 * 3600).skills["custom"]
    assert skill.samples == 60 and skill.calls <= 40  # fewer than 40 calls: every scored step is read
    assert 0.2 < skill.hit_rate < 0.9 and skill.persistence_mae_pct > 0
    # An hourly horizon on hourly bars: the persistence error equals the mean absolute hourly move.
    moves = [abs(b.close / a.close - 1) * 100 for a, b in zip(candles[80:120], candles[81:121], strict=False)]
    assert skill.persistence_mae_pct == pytest.approx(sum(moves) / len(moves), rel=0.25)
