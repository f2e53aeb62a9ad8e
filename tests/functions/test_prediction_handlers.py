"""ml_predictor and prediction_evaluator handlers: contract shape, metrics, scoring."""

import boto3
import numpy as np
import pytest
from moto import mock_aws

from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
from btc_trader.contracts import PredictionResult
from btc_trader.domain.candles import Candle
from btc_trader.stack.environment import function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from btc_trader.storage_schema import TABLES
from tests.aws_fakes import (
    FakeLambdaContext,
    create_table,
    emf_records,
    measure_values,
    metric_values,
)

NAMES = ResourceNames("dev", "123456789012", "us-east-1")
START = 1_700_000_000 // 300 * 300


@pytest.fixture
def handlers(monkeypatch):
    env = function_environments(load_stack_file("dev"), NAMES)["ml-predictor"]
    env["BTC_TRADER_ML_MODELS"] = '["custom"]'  # Bedrock needs AWS; tested with Stubber elsewhere
    env["BTC_TRADER_MIN_SKILL_SAMPLES"] = "3"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        for spec in TABLES:
            create_table(spec, NAMES.table(spec.role))
        prices = 20_000 * np.exp(np.cumsum(np.sin(np.arange(2_000) / 60) * 0.0005))
        DynamoDBPriceRepository(NAMES.table("prices")).save_candles(
            "BTC-USD", [Candle(START + 60 * i, p, p, p, p, 1) for i, p in enumerate(prices)], source="test")
        from functions import ml_predictor, prediction_evaluator

        for module in (ml_predictor, prediction_evaluator):
            module._config.cache_clear()
            module._service.cache_clear()
            module.metrics.clear_metrics()
        yield ml_predictor, prediction_evaluator


def iso(epoch):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_predictor_returns_the_contract_and_meters(handlers, capsys, caplog):
    predictor, _ = handlers
    at = START + 600 * 60
    result = predictor.lambda_handler(
        {"symbol": "BTC-USD", "execution_id": "exec-42", "requested_at": iso(at + 17)}, FakeLambdaContext())
    parsed = PredictionResult.model_validate(result)
    assert parsed.status == "ok" and parsed.horizon_minutes == 60
    assert [m["model"] for m in result["models"]] == ["custom"]
    assert not emf_records(capsys.readouterr().out)  # every predictor measure is a log line: no billed series
    assert measure_values(caplog.records, "ModelSuccess")[0][0]["model"] == "custom"
    assert measure_values(caplog.records, "ModelLatency")[0][1] >= 0
    assert measure_values(caplog.records, "EnsembleConfidence")[0][1] == pytest.approx(parsed.confidence)
    assert 0 < measure_values(caplog.records, "HistoryItemsRead")[0][1] < 500
    ((dims, age),) = measure_values(caplog.records, "PriceAgeSeconds")
    assert dims["symbol"] == "BTC-USD" and age == parsed.price_age_s


def test_predictor_refuses_without_history(handlers, capsys, caplog, monkeypatch):
    predictor, _ = handlers
    monkeypatch.setenv("BTC_TRADER_SYMBOLS", '["BTC-USD","ETH-USD"]')  # configured, never collected
    predictor._config.cache_clear()
    result = predictor.lambda_handler(
        {"symbol": "ETH-USD", "execution_id": "e", "requested_at": iso(START + 600 * 60)}, FakeLambdaContext())
    assert result["status"] == "insufficient_history"
    assert measure_values(caplog.records, "PredictionRefused")[0][0]["reason"] == "insufficient_history"


def test_bad_workflow_input_is_refused(handlers):
    predictor, _ = handlers
    with pytest.raises(Exception, match="execution_id"):
        predictor.lambda_handler({"symbol": "BTC-USD", "requested_at": iso(START)}, FakeLambdaContext())


def test_evaluator_scores_and_emits_accuracy(handlers, capsys, caplog):
    predictor, evaluator = handlers
    for hour in range(8):
        at = START + (300 + 60 * hour) * 60
        predictor.lambda_handler({"symbol": "BTC-USD", "execution_id": f"e{hour}", "requested_at": iso(at)},
                                 FakeLambdaContext())
    capsys.readouterr()
    summary = evaluator.lambda_handler({"time": iso(START + (300 + 60 * 8) * 60)}, FakeLambdaContext())
    (entry,) = summary["results"]
    assert entry["scored"] == 8 and entry["skills"]["custom"]["samples"] == 8
    records = emf_records(capsys.readouterr().out)
    accuracy = measure_values(caplog.records, "PredictionAccuracy")
    assert len(accuracy) == 8 and {d["model"] for d, _ in accuracy} == {"custom"}
    assert all(v in (0.0, 100.0) for _, v in accuracy)
    assert metric_values(records, "ModelNetEdgeT")[0][0]["model"] == "custom"
    again = evaluator.lambda_handler({"time": iso(START + (300 + 60 * 8) * 60)}, FakeLambdaContext())
    assert again["results"][0]["scored"] == 0, "a prediction is scored once"
    items = boto3.client("dynamodb").scan(TableName=NAMES.table("prediction-scores"))["Items"]
    series = sorted(item["series"]["S"] for item in items)
    assert series == ["BTC-USD#custom"] * 8 + ["BTC-USD#skill"], "8 scores and one skill snapshot per evaluation time"


def test_predictor_and_evaluator_refuse_bad_events(handlers):
    """One fixture (seeding history is the slow part) for every refusal: they happen before any read."""
    from pydantic import ValidationError

    from btc_trader.event_fields import UnknownSymbolError

    predictor, evaluator = handlers
    for requested_at in ("2023-11-15T00:00:00", "2023-02-30T00:00:00Z", "yesterday", "1700000000"):
        with pytest.raises(ValidationError, match="requested_at"):
            predictor.lambda_handler({"symbol": "BTC-USD", "execution_id": "e", "requested_at": requested_at},
                                     FakeLambdaContext())
    with pytest.raises(UnknownSymbolError, match=r"\['ETH-USD'\] are not configured for this stack"):
        predictor.lambda_handler({"symbol": "ETH-USD", "execution_id": "e", "requested_at": iso(START + 600 * 60)},
                                 FakeLambdaContext())
    for event, error in (({"time": "2023-11-15T00:00:00"}, ValidationError),
                         ({"time": "2023-11-15T00:00:00Z", "symbols": []}, ValidationError),
                         ({"time": "2023-11-15T00:00:00Z", "symbols": ["ETH-USD"]}, UnknownSymbolError)):
        with pytest.raises(error):
            evaluator.lambda_handler(event, FakeLambdaContext())
