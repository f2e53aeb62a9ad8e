"""The collector handler end to end: moto storage, recorded venue responses, EMF metrics."""

import json

import boto3
import pytest
import responses
from moto import mock_aws

from btc_trader.stack.environment import function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from btc_trader.storage_schema import PRICES
from tests.aws_fakes import (
    FakeLambdaContext,
    create_table,
    emf_records,
    measure_values,
    metric_values,
)
from tests.conftest import load_fixture

EVENT = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "Scheduled Event",
    "source": "aws.events", "account": "123456789012", "time": "2024-03-25T08:45:00Z",
    "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {},
}
NAMES = ResourceNames("dev", "123456789012", "us-east-1")


@pytest.fixture
def handler(monkeypatch):
    env = function_environments(load_stack_file("dev"), NAMES)["price-collector"]
    env["BTC_TRADER_MAX_SOURCE_STALENESS_SECONDS"] = str(10 ** 9)  # documented examples are old
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        create_table(PRICES, NAMES.table("prices"))
        boto3.client("s3").create_bucket(Bucket=NAMES.raw_bucket)
        from functions import price_collector

        price_collector._config.cache_clear()
        price_collector._service.cache_clear()
        price_collector.metrics.clear_metrics()
        yield price_collector
        price_collector._config.cache_clear()
        price_collector._service.cache_clear()


def venues(kraken_ok: bool = True, coinbase_price: str = "67190.10"):
    responses.get("https://api.coingecko.com/api/v3/simple/price", json=load_fixture("coingecko_simple_price.json"))
    responses.get("https://api.binance.com/api/v3/ticker/24hr",
                  json=load_fixture("binance_error_451_restricted_location.json"), status=451)
    coinbase = load_fixture("coinbase_ticker.json")
    coinbase["price"] = coinbase_price
    responses.get("https://api.exchange.coinbase.com/products/BTC-USD/ticker", json=coinbase)
    kraken = load_fixture("kraken_ticker.json")
    kraken["result"]["XXBTZUSD"]["c"][0] = "67185.0"
    responses.get("https://api.kraken.com/0/public/Ticker",
                  json=kraken if kraken_ok else load_fixture("kraken_error_unknown_asset_pair.json"))


@responses.activate
def test_collects_stores_and_meters(handler, capsys, caplog):
    venues()
    result = handler.lambda_handler(EVENT, FakeLambdaContext())
    (entry,) = result["results"]
    assert result["collected_at"] == "2024-03-25T08:45:00Z"
    assert entry["status"] == "stored"
    assert entry["sources_used"] == ["coinbase", "coingecko", "kraken"]
    assert "binanceus" in entry["sources_rejected"]["binance"]
    assert entry["price"] == pytest.approx(67187.3358936566)
    item = boto3.client("dynamodb").get_item(
        TableName=NAMES.table("prices"), Key={"symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(entry["timestamp"])}}
    )["Item"]
    assert item["kind"]["S"] == "collected"
    records = emf_records(capsys.readouterr().out)
    assert [v for _, v in measure_values(caplog.records, "PricesCollected")] == [1.0]
    assert measure_values(caplog.records, "SourceFailures") == [({"source": "binance"}, 1.0)]
    (dims, price), = metric_values(records, "CollectedPrice")
    assert dims == {"symbol": "BTC-USD", "service": "price-collector"} and price == pytest.approx(entry["price"])
    assert measure_values(caplog.records, "SourceDivergenceBps")[0][1] >= 0
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BtcTrader/dev" for r in records)


@responses.activate
def test_redelivered_event_is_a_noop(handler, capsys, caplog):
    venues()
    first = handler.lambda_handler(EVENT, FakeLambdaContext())
    calls = len(responses.calls)
    again = handler.lambda_handler(EVENT, FakeLambdaContext())
    assert again["results"][0]["status"] == "already_collected"
    assert again["results"][0]["price"] == first["results"][0]["price"]
    assert len(responses.calls) == calls
    assert measure_values(caplog.records, "DuplicateCollections")


@responses.activate
def test_too_few_sources_fails_the_run_and_stores_nothing(handler, monkeypatch, capsys, caplog):
    monkeypatch.setenv("BTC_TRADER_MIN_SOURCES", "3")
    venues(kraken_ok=False)
    with pytest.raises(handler.CollectionFailedError, match="2 valid price source"):
        handler.lambda_handler(EVENT, FakeLambdaContext())
    assert boto3.client("dynamodb").scan(TableName=NAMES.table("prices"))["Count"] == 0
    assert not emf_records(capsys.readouterr().out)  # a failed collection stores no price: no CollectedPrice
    assert [v for _, v in measure_values(caplog.records, "InsufficientSources")] == [1.0]
    assert {d["source"] for d, _ in measure_values(caplog.records, "SourceFailures")} == {"binance", "kraken"}


@responses.activate
def test_manual_event_with_only_a_time(handler):
    venues()
    result = handler.lambda_handler({"time": "2024-03-25T08:45:30+00:00"}, FakeLambdaContext())
    assert result["results"][0]["timestamp"] == 1711356300


def test_event_without_timezone_is_refused(handler):
    with pytest.raises(Exception, match="timezone"):
        handler.lambda_handler({"time": "2024-03-25T08:45:00"}, FakeLambdaContext())


def test_handler_module_keeps_pandas_and_numpy_out():
    import subprocess
    import sys

    code = "import sys, functions.price_collector; print(sorted(m for m in ('numpy','pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


def test_symbols_must_be_configured_and_an_empty_list_is_not_all(handler):
    from pydantic import ValidationError

    from btc_trader.event_fields import UnknownSymbolError

    for symbols, error in (([], ValidationError), (["X" * 300], ValidationError), (["ETH-USD"], UnknownSymbolError)):
        with pytest.raises(error):
            handler.lambda_handler({**EVENT, "symbols": symbols}, FakeLambdaContext())
