"""Hostile venue payloads: every one is a quote that validates or a SourceError with a reason.

Starting from each venue's documented body, one node at a time is replaced by a hostile value,
deleted, or joined by an extra key; whole bodies are replaced by hostile JSON texts (integers
hundreds of digits long, nesting past any recursion limit). Nothing may surface as another
exception type, and a quote that passes must carry the number at the documented price path.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btc_trader.adapters.price_sources.base import SourceError
from btc_trader.adapters.price_sources.binance import BinanceSource
from btc_trader.adapters.price_sources.coinbase import CoinbaseSource
from btc_trader.adapters.price_sources.coingecko import CoinGeckoSource
from btc_trader.adapters.price_sources.kraken import KrakenSource
from btc_trader.domain.prices import MAX_STORABLE_PRICE, MIN_STORABLE_PRICE
from tests.conftest import load_fixture
from tests.hostile import HOSTILE_JSON_TEXTS, mutations

AT = 1_711_356_330
EXAMPLES = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


class CannedSession:
    """A requests.Session stand-in answering every GET with one body (parsed by requests itself)."""

    def __init__(self, text: str, status: int = 200):
        self.text, self.status = text, status

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = self.status
        response.headers["Content-Type"] = "application/json"
        response._content = self.text.encode("utf-8", "surrogatepass")
        response.encoding = "utf-8"
        return response


def _binance() -> dict:
    body = load_fixture("binance_ticker_24hr.json")
    body["symbol"] = "BTCUSDT"
    body["closeTime"] = AT * 1000
    return body


def _gecko() -> dict:
    body = load_fixture("coingecko_simple_price.json")
    body["bitcoin"]["last_updated_at"] = AT
    return body


VENUES = {
    "binance": (BinanceSource, _binance, ("lastPrice",)),
    "coingecko": (CoinGeckoSource, _gecko, ("bitcoin", "usd")),
    "coinbase": (CoinbaseSource, lambda: load_fixture("coinbase_ticker.json"), ("price",)),
    "kraken": (KrakenSource, lambda: load_fixture("kraken_ticker.json"), ("result", "XXBTZUSD", "c", 0)),
}


def _at(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


def _fetch(venue: str, text: str):
    source_class, _, _ = VENUES[venue]
    return source_class(CannedSession(text), 2).fetch("BTC-USD", AT)


def _check_outcome(venue: str, body: Any, text: str) -> None:
    try:
        fetched = _fetch(venue, text)
    except SourceError as exc:
        assert exc.reason and exc.source == venue
        return
    quote = fetched.quote
    assert isinstance(quote.price, float) and math.isfinite(quote.price)
    assert MIN_STORABLE_PRICE <= quote.price <= MAX_STORABLE_PRICE
    assert quote.volume_24h is None or (math.isfinite(quote.volume_24h) and quote.volume_24h >= 0)
    assert quote.change_24h_pct is None or (math.isfinite(quote.change_24h_pct) and quote.change_24h_pct >= -100)
    assert isinstance(quote.observed_at, int) and 0 < quote.observed_at < 4_102_444_800
    # No other number may stand in for the price: it is the one at the documented path.
    _, _, price_path = VENUES[venue]
    if venue == "kraken":
        (key,) = body["result"]
        assert key in {"XXBTZUSD", "XBTUSD", "XBT/USD", "BTC/USD", "XXBTUSD", "XBTZUSD"}
        assert len(body["result"][key]["c"]) == 2
        price_path = ("result", key, "c", 0)
    assert quote.price == float(_at(body, price_path))


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_documented_body_still_reads(venue):
    body = VENUES[venue][1]()
    _check_outcome(venue, body, json.dumps(body))
    assert _fetch(venue, json.dumps(body)).quote.price > 0


@pytest.mark.parametrize("venue", sorted(VENUES))
@EXAMPLES
@given(data=st.data())
def test_one_broken_node_is_a_reason_never_a_crash(venue, data):
    body = data.draw(mutations(VENUES[venue][1]()))
    try:
        text = json.dumps(body, allow_nan=True)
    except (ValueError, RecursionError):
        return
    _check_outcome(venue, body, text)


@pytest.mark.parametrize("venue", sorted(VENUES))
@settings(max_examples=30)
@given(text=HOSTILE_JSON_TEXTS)
def test_hostile_json_texts_are_reasons(venue, text):
    with pytest.raises(SourceError) as caught:
        _fetch(venue, text)
    assert caught.value.reason


@pytest.mark.parametrize("price", ["1e308", "1e-140", "-5", "0", "NaN", "1,234.5", "1_000", "１２３"])
def test_absurd_prices_are_refused_at_the_edge(price):
    body = load_fixture("coinbase_ticker.json")
    body["price"] = price
    with pytest.raises(SourceError, match="price"):
        _fetch("coinbase", json.dumps(body))


def test_a_json_integer_hundreds_of_digits_long():
    text = json.dumps(load_fixture("coinbase_ticker.json")).replace('"6268.48"', "9" * 400)
    with pytest.raises(SourceError, match="not a representable number"):
        _fetch("coinbase", text)


def test_negative_volume_is_refused():
    body = load_fixture("coinbase_ticker.json")
    body["volume"] = "-3"
    with pytest.raises(SourceError, match="must not be negative"):
        _fetch("coinbase", json.dumps(body))


def test_kraken_missing_price_element_does_not_let_the_volume_stand_in():
    body = load_fixture("kraken_ticker.json")
    body["result"]["XXBTZUSD"]["c"] = ["0.00067643"]
    with pytest.raises(SourceError, match=r"'c' must be \[price, lot volume\]"):
        _fetch("kraken", json.dumps(body))


@pytest.mark.parametrize("key", ["XETHZUSD", "XXBTZEUR", "XBTUSDT", "ETH/USD"])
def test_kraken_entry_for_another_pair_is_refused(key):
    body = load_fixture("kraken_ticker.json")
    body["result"] = {key: body["result"]["XXBTZUSD"]}
    with pytest.raises(SourceError, match="response is for pair"):
        _fetch("kraken", json.dumps(body))
