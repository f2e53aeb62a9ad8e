"""Sinks under moto: conditional writes, re-delivery and a failure between sinks."""

import json

import boto3
import pytest
from moto import mock_aws

from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
from btc_trader.adapters.price_sources.base import FetchedQuote, SourceError
from btc_trader.adapters.s3_raw_payloads import S3RawPayloadStore
from btc_trader.adapters.timestream_prices import TimestreamPriceWriter
from btc_trader.domain.candles import Candle
from btc_trader.domain.prices import InsufficientSourcesError, SourceQuote
from btc_trader.services.price_collection import CollectionLimits, PriceCollectionService
from btc_trader.storage_schema import PRICES
from tests.aws_fakes import create_table

TABLE = "btc-trader-test-prices"
BUCKET = "btc-trader-test-raw"
AT = 1_678_536_000
LIMITS = CollectionLimits(min_sources=2, max_divergence_bps=150, max_staleness_s=300, ttl_days=30)


class FixedSource:
    def __init__(self, name: str, price: float, fail: bool = False):
        self.name, self.price, self.fail, self.calls = name, price, fail, 0

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        self.calls += 1
        if self.fail:
            raise SourceError(self.name, "HTTP 503")
        return FetchedQuote(SourceQuote(self.name, symbol, self.price, at - 5), {"price": self.price})


class FlakyStore(S3RawPayloadStore):
    """Fails the first put, as S3 might, then behaves."""

    def __init__(self, *args, failures: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.failures = failures

    def put(self, symbol, timestamp, payload):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("S3 unavailable")
        return super().put(symbol, timestamp, payload)


class FlakyPrices(DynamoDBPriceRepository):
    def __init__(self, *args, failures: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.failures = failures

    def save_snapshot(self, snapshot, *, expires_at):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("DynamoDB unavailable")
        return super().save_snapshot(snapshot, expires_at=expires_at)


@pytest.fixture
def aws():
    with mock_aws():
        create_table(PRICES, TABLE)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


def sources():
    return [FixedSource("a", 100.0), FixedSource("b", 100.2), FixedSource("c", 100.1)]


def object_versions() -> list[dict]:
    return boto3.client("s3").list_object_versions(Bucket=BUCKET).get("Versions", [])


def test_snapshot_is_stored_once_and_redelivery_is_a_noop(aws):
    srcs = sources()
    service = PriceCollectionService(srcs, DynamoDBPriceRepository(TABLE), S3RawPayloadStore(BUCKET), LIMITS)
    first = service.collect("BTC-USD", AT + 17)
    assert first.status == "stored"
    assert first.timestamp == AT
    assert first.sinks == ["s3", "dynamodb"]
    second = service.collect("BTC-USD", AT + 17)
    assert second.status == "already_collected"
    assert second.price == first.price
    assert all(s.calls == 1 for s in srcs), "a re-delivered event must not refetch"
    item = DynamoDBPriceRepository(TABLE).get("BTC-USD", AT)
    assert float(item["price"]) == pytest.approx(100.1)
    assert item["kind"] == "collected"
    assert item["expires_at"] == AT + 30 * 86_400
    assert set(item["sources_used"]) == {"a", "b", "c"}
    body = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=first.raw_key)["Body"].read())
    assert set(body["payloads"]) == {"a", "b", "c"}


def test_conditional_write_refuses_a_second_snapshot(aws):
    service = PriceCollectionService(sources(), DynamoDBPriceRepository(TABLE), S3RawPayloadStore(BUCKET), LIMITS)
    outcome = service.collect("BTC-USD", AT)
    repo = DynamoDBPriceRepository(TABLE)
    from btc_trader.domain.prices import aggregate_quotes

    other = aggregate_quotes([SourceQuote("z", "BTC-USD", 1.0, AT), SourceQuote("y", "BTC-USD", 1.0, AT)],
                             symbol="BTC-USD", at=AT, max_divergence_bps=150, max_staleness_s=300, min_sources=2)
    assert repo.save_snapshot(other, expires_at=AT) is False
    assert float(repo.get("BTC-USD", AT)["price"]) == outcome.price


def test_failure_after_s3_then_retry_completes_without_duplicates(aws):
    repo = FlakyPrices(TABLE, failures=1)
    service = PriceCollectionService(sources(), repo, S3RawPayloadStore(BUCKET), LIMITS)
    with pytest.raises(ConnectionError):
        service.collect("BTC-USD", AT)
    assert DynamoDBPriceRepository(TABLE).get("BTC-USD", AT) is None, "no commit marker after a failure"
    keys_after_failure = [v["Key"] for v in object_versions()]
    assert len(keys_after_failure) == 1
    retry = service.collect("BTC-USD", AT)
    assert retry.status == "stored"
    assert DynamoDBPriceRepository(TABLE).get("BTC-USD", AT) is not None
    assert {v["Key"] for v in object_versions()} == set(keys_after_failure), "same key, not a second object"


def test_s3_failure_stores_nothing_and_the_retry_stores_everything(aws):
    service = PriceCollectionService(sources(), DynamoDBPriceRepository(TABLE), FlakyStore(BUCKET, failures=1), LIMITS)
    with pytest.raises(ConnectionError):
        service.collect("BTC-USD", AT)
    assert DynamoDBPriceRepository(TABLE).get("BTC-USD", AT) is None
    assert service.collect("BTC-USD", AT).status == "stored"
    assert len(object_versions()) == 1


def test_insufficient_sources_writes_nothing(aws):
    srcs = [FixedSource("a", 100.0), FixedSource("b", 0, fail=True), FixedSource("c", 0, fail=True)]
    service = PriceCollectionService(srcs, DynamoDBPriceRepository(TABLE), S3RawPayloadStore(BUCKET), LIMITS)
    with pytest.raises(InsufficientSourcesError, match="b: HTTP 503"):
        service.collect("BTC-USD", AT)
    assert DynamoDBPriceRepository(TABLE).get("BTC-USD", AT) is None
    assert object_versions() == []


def test_timestream_sink_when_enabled(aws):
    ts = boto3.client("timestream-write")
    ts.create_database(DatabaseName="db")
    ts.create_table(DatabaseName="db", TableName="prices")
    writer = TimestreamPriceWriter("db", "prices")
    service = PriceCollectionService(sources(), DynamoDBPriceRepository(TABLE), S3RawPayloadStore(BUCKET), LIMITS, timestream=writer)
    outcome = service.collect("BTC-USD", AT)
    assert outcome.sinks == ["s3", "timestream", "dynamodb"]
    from moto.timestreamwrite.models import timestreamwrite_backends

    table = timestreamwrite_backends["123456789012"]["us-east-1"].databases["db"].tables["prices"]
    assert table.records[0]["Dimensions"] == [{"Name": "symbol", "Value": "BTC-USD"}]


def test_save_candles_batches_and_is_idempotent(aws):
    repo = DynamoDBPriceRepository(TABLE)
    candles = [Candle(AT + 60 * i, 100.0, 101.0, 99.0, 100.5, 2.0) for i in range(60)]
    progress = []
    assert repo.save_candles("BTC-USD", candles, source="file:x.csv", expires_at_for=lambda t: t + 10,
                             on_progress=progress.append) == 60
    assert sum(progress) == 60 and len(progress) == 3
    repo.save_candles("BTC-USD", candles, source="file:x.csv")
    count = boto3.client("dynamodb").scan(TableName=TABLE, Select="COUNT")["Count"]
    assert count == 60
    item = repo.get("BTC-USD", AT + 60)
    assert item["kind"] == "backfill" and float(item["high"]) == 101.0 and "expires_at" not in item


def test_a_run_judges_quotes_against_the_last_stored_price(aws):
    prices = DynamoDBPriceRepository(TABLE)
    PriceCollectionService(sources(), prices, S3RawPayloadStore(BUCKET), LIMITS).collect("BTC-USD", AT)
    # The next minute every venue agrees on a price 1000x higher: a broken feed, nothing stored.
    broken = [FixedSource("a", 100_000.0), FixedSource("b", 100_020.0), FixedSource("c", 100_010.0)]
    service = PriceCollectionService(broken, prices, S3RawPayloadStore(BUCKET), LIMITS)
    with pytest.raises(InsufficientSourcesError, match="implausible: 999x the last stored price 100.1"):
        service.collect("BTC-USD", AT + 60)
    assert prices.get("BTC-USD", AT + 60) is None
