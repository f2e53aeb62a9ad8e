"""The klines client pages through Binance's documented row shape."""

import pytest
import requests
import responses

from btc_trader.adapters.binance_klines import BinanceKlinesClient
from btc_trader.adapters.price_sources.base import SourceError
from tests.conftest import load_fixture

URL = "https://api.binance.com/api/v3/klines"


def row(open_ms: int, close: str = "100.5"):
    documented = load_fixture("binance_klines.json")[0]
    return [open_ms, "100.0", "101.0", "99.0", close, documented[5], open_ms + 59_999, *documented[7:]]


@responses.activate
def test_pages_by_start_time_until_the_end():
    start = 1_700_000_000 // 60 * 60
    first = [row((start + 60 * i) * 1000) for i in range(1000)]
    second = [row((start + 60 * (1000 + i)) * 1000) for i in range(5)]
    responses.get(URL, json=first)
    responses.get(URL, json=second)
    client = BinanceKlinesClient(requests.Session(), "binance")
    pages = []
    candles = list(client.candles("BTC-USD", start, start + 60 * 1005, on_page=pages.append))
    assert len(candles) == 1005 and pages == [1000, 5]
    assert candles[0].timestamp == start and candles[-1].close == 100.5
    assert responses.calls[0].request.params["symbol"] == "BTCUSDT"
    assert responses.calls[1].request.params["startTime"] == str((start + 60_000) * 1000)


@responses.activate
def test_binance_us_pair_and_451():
    responses.get("https://api.binance.us/api/v3/klines", json=[])
    assert list(BinanceKlinesClient(requests.Session(), "binanceus").candles("BTC-USD", 0, 60)) == []
    assert responses.calls[0].request.params["symbol"] == "BTCUSD"
    responses.get(URL, json=load_fixture("binance_error_451_restricted_location.json"), status=451)
    with pytest.raises(SourceError, match="use --exchange binanceus"):
        list(BinanceKlinesClient(requests.Session(), "binance").candles("BTC-USD", 0, 60))


@responses.activate
def test_malformed_rows_are_named():
    responses.get(URL, json=[[1, "x"]])
    with pytest.raises(SourceError, match="malformed row"):
        list(BinanceKlinesClient(requests.Session()).candles("BTC-USD", 0, 60))
