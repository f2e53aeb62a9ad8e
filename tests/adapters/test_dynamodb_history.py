"""History reads: bounded window, projection, every page followed, bars resampled."""

import boto3
import numpy as np
import pytest
from moto import mock_aws

from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory, resample_last
from btc_trader.domain.prediction.model import InsufficientHistoryError
from btc_trader.storage_schema import PRICES
from tests.aws_fakes import create_table

TABLE = "prices"
END = 1_678_536_000


@pytest.fixture
def table():
    with mock_aws():
        create_table(PRICES, TABLE)
        yield boto3.client("dynamodb")


def put_minutes(client, count, padding=0, start=END, price=lambda i: 20_000 + i):
    with_padding = {"sources_rejected": {"S": "x" * padding}} if padding else {}
    for first in range(0, count, 25):
        client.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": {"symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(start - 60 * i)},
                                     "price": {"N": str(price(i))}, **with_padding}}}
            for i in range(first, min(count, first + 25))
        ]})


def test_pages_are_followed_and_only_two_attributes_read(table):
    put_minutes(table, 2_500, padding=1_000)  # ~1 KB items: several 1 MB pages unprojected
    reader = DynamoDBPriceHistory(TABLE, client=table)
    loaded = reader.load("BTC-USD", END, bars=1_600, bar_seconds=60)
    history, newest = loaded.history, loaded.newest_time
    assert len(history) == 1_600 and newest == END
    assert history.prices[-1] == 20_000 and history.prices[0] == 20_000 + 1_599
    assert reader.last_read.items == 2_401  # the window (1,600 bars x 1.5 slack), both ends included
    assert reader.last_read.bytes < reader.last_read.items * 40, "projection keeps items small"
    assert reader.last_read.items < 2_500, "the window bounds the read"


def test_every_page_is_followed(table):
    put_minutes(table, 2_500, padding=1_000)
    unprojected = table.query(TableName=TABLE, KeyConditionExpression="symbol = :s",
                              ExpressionAttributeValues={":s": {"S": "BTC-USD"}})
    assert "LastEvaluatedKey" in unprojected, "the data set really spans pages"
    reader = DynamoDBPriceHistory(TABLE, client=table)
    loaded = reader.load("BTC-USD", END, bars=1_700, bar_seconds=60)
    # 1 MB pages are measured on the full items, as in DynamoDB: ~2,500 items of ~1 KB -> 3 pages.
    assert reader.last_read.items == 2_500 and reader.last_read.pages == 3
    assert len(loaded.history) == 1_700 and not reader.last_read.truncated
    assert reader.last_read.capacity_units > 0


def test_reading_stops_at_the_item_cap_and_keeps_the_newest(table):
    # Two items per minute is the normal maximum; here there are four (every 15 s).
    for first in range(0, 400, 25):
        table.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": {"symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(END - 15 * i)},
                                     "price": {"N": str(20_000 + i)}}}}
            for i in range(first, first + 25)
        ]})
    reader = DynamoDBPriceHistory(TABLE, client=table)
    loaded = reader.load("BTC-USD", END, bars=20, bar_seconds=60)  # 30-minute window -> cap 62
    assert reader.last_read.truncated and reader.last_read.items == 62
    assert loaded.history.prices[-1] == 20_000 and loaded.newest_time == END


def test_too_few_bars_is_refused_with_have_and_need(table):
    put_minutes(table, 30)
    reader = DynamoDBPriceHistory(TABLE, client=table)
    assert len(reader.load("BTC-USD", END, bars=51, bar_seconds=60).history) == 30
    with pytest.raises(InsufficientHistoryError, match="30 bars, 51 needed") as raised:
        reader.load("BTC-USD", END, bars=51, bar_seconds=60, min_bars=51)
    assert (raised.value.have, raised.value.need) == (30, 51)


def test_the_newest_price_time_is_kept_apart_from_the_bar_time(table):
    put_minutes(table, 120, start=END - 100)
    loaded = DynamoDBPriceHistory(TABLE, client=table).load("BTC-USD", END, bars=10, bar_seconds=300)
    assert loaded.history.last_time == END and loaded.history.price_time == END - 100
    assert loaded.newest_time == END - 100


def test_five_minute_bars_take_each_bars_last_price(table):
    put_minutes(table, 300)
    history = DynamoDBPriceHistory(TABLE, client=table).load("BTC-USD", END, bars=51, bar_seconds=300).history
    assert len(history) == 51
    assert history.timestamps[-1] == END and history.timestamps[-2] == END - 300
    assert history.prices[-1] == 20_000 and history.prices[-2] == 20_005


def test_no_prices_is_insufficient_history(table):
    with pytest.raises(InsufficientHistoryError, match="insufficient_history: 0 bars"):
        DynamoDBPriceHistory(TABLE, client=table).load("BTC-USD", END, bars=51, bar_seconds=60)


def test_price_at(table):
    put_minutes(table, 10)
    reader = DynamoDBPriceHistory(TABLE, client=table)
    assert reader.price_at("BTC-USD", END + 30, tolerance_s=120) == (END, 20_000.0)
    assert reader.price_at("BTC-USD", END + 3_600, tolerance_s=120) is None


def test_resample_fills_short_gaps_and_stops_at_long_ones():
    minutes = [0, 1, 2, 6, 7, 8, 9]  # minutes back from END; 3..5 missing (3 bars), then more
    times = np.array([END - 60 * m for m in minutes] + [END - 60 * 20])
    prices = np.array([10.0, 11, 12, 16, 17, 18, 19, 99])
    history = resample_last(times, prices, 60, END)
    assert list(history.prices) == [19, 18, 17, 16, 16, 16, 16, 12, 11, 10]
    assert history.timestamps[-1] == END and len(history) == 10


def test_newest_collected_divergence_is_reported(table):
    put_minutes(table, 60)
    table.update_item(TableName=TABLE, Key={"symbol": {"S": "BTC-USD"}, "timestamp": {"N": str(END)}},
                      UpdateExpression="SET divergence_bps = :d", ExpressionAttributeValues={":d": {"N": "12.5"}})
    loaded = DynamoDBPriceHistory(TABLE, client=table).load("BTC-USD", END, bars=10, bar_seconds=60)
    assert loaded.newest_divergence_bps == 12.5
