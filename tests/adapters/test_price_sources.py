"""Every source against its documented response shapes and its documented failure modes."""

import json
import threading
from pathlib import Path

import pytest
import requests
import responses

from btc_trader.adapters.price_sources import build_session, build_sources, fetch_all, replay_spec
from btc_trader.adapters.price_sources.base import FetchedQuote, SourceError
from btc_trader.adapters.price_sources.binance import BinanceSource, binance_us
from btc_trader.adapters.price_sources.coinbase import CoinbaseSource
from btc_trader.adapters.price_sources.coingecko import CoinGeckoSource
from btc_trader.adapters.price_sources.kraken import KrakenSource
from btc_trader.adapters.price_sources.replay import ReplayPriceSource
from btc_trader.domain.prices import SourceQuote
from tests.conftest import load_fixture

AT = 1_711_356_330
GECKO = "https://api.coingecko.com/api/v3/simple/price"
BINANCE = "https://api.binance.com/api/v3/ticker/24hr"
BINANCE_US = "https://api.binance.us/api/v3/ticker/24hr"
COINBASE = "https://api.exchange.coinbase.com/products/BTC-USD/ticker"
KRAKEN = "https://api.kraken.com/0/public/Ticker"


@pytest.fixture
def session():
    return build_session(retries=0)


def binance_body(symbol="BTCUSDT"):
    body = load_fixture("binance_ticker_24hr.json")
    body["symbol"] = symbol  # the documented example is for BNBBTC
    return body


@responses.activate
def test_coingecko_reads_numbers_and_seconds(session):
    responses.get(GECKO, json=load_fixture("coingecko_simple_price.json"))
    fetched = CoinGeckoSource(session, 2).fetch("BTC-USD", AT)
    assert fetched.quote.price == pytest.approx(67187.3358936566)
    assert fetched.quote.observed_at == 1711356300
    assert fetched.quote.volume_24h == pytest.approx(31260929299.5248)
    assert fetched.quote.change_24h_pct == pytest.approx(3.63727894677354)
    assert responses.calls[0].request.params["ids"] == "bitcoin"
    assert fetched.raw["body"]["bitcoin"]["usd"] == fetched.quote.price


@responses.activate
def test_coingecko_null_change_is_not_an_error(session):
    body = load_fixture("coingecko_simple_price.json")
    body["bitcoin"]["usd_24h_change"] = None
    responses.get(GECKO, json=body)
    assert CoinGeckoSource(session, 2).fetch("BTC-USD", AT).quote.change_24h_pct is None


@responses.activate
def test_coingecko_429_json_and_html(session):
    responses.get(GECKO, json=load_fixture("coingecko_error_429.json"), status=429, headers={"Retry-After": "119"})
    with pytest.raises(SourceError, match=r"rate limited \(HTTP 429, retry after 119 s\)"):
        CoinGeckoSource(session, 2).fetch("BTC-USD", AT)
    responses.replace(responses.GET, GECKO, body="<!DOCTYPE html><html>Just a moment...</html>",
                      status=403, content_type="text/html")
    with pytest.raises(SourceError, match="HTML page instead of JSON"):
        CoinGeckoSource(session, 2).fetch("BTC-USD", AT)


def test_coingecko_unknown_coin(session):
    with pytest.raises(SourceError, match="no CoinGecko id for DOGE"):
        CoinGeckoSource(session, 2).fetch("DOGE-USD", AT)


@responses.activate
def test_binance_reads_strings_and_milliseconds(session):
    responses.get(BINANCE, json=binance_body())
    quote = BinanceSource(session, 2).fetch("BTC-USD", AT).quote
    assert quote.price == 4.000002
    assert quote.observed_at == 1499869899
    assert quote.change_24h_pct == -95.96
    assert responses.calls[0].request.params["symbol"] == "BTCUSDT"


@responses.activate
def test_binance_us_uses_the_usd_pair(session):
    responses.get(BINANCE_US, json=binance_body("BTCUSD"))
    source = binance_us(session, 2)
    assert source.name == "binanceus"
    assert source.fetch("BTC-USD", AT).quote.price == 4.000002
    assert responses.calls[0].request.params["symbol"] == "BTCUSD"


@responses.activate
def test_binance_451_is_a_configuration_error_not_retried(session):
    responses.get(BINANCE, json=load_fixture("binance_error_451_restricted_location.json"), status=451)
    with pytest.raises(SourceError, match="use the 'binanceus' source"):
        BinanceSource(build_session(retries=3), 2).fetch("BTC-USD", AT)
    assert len(responses.calls) == 1


@responses.activate
def test_binance_error_envelope(session):
    responses.get(BINANCE, json=load_fixture("binance_error_invalid_symbol.json"), status=400)
    with pytest.raises(SourceError, match="HTTP 400"):
        BinanceSource(session, 2).fetch("BTC-USD", AT)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("lastPrice", "abc", "not numeric"), ("lastPrice", "0.00000000", "positive"),
     ("lastPrice", "NaN", "not finite"), ("lastPrice", None, "missing field"),
     ("lastPrice", True, "not numeric")],
)
@responses.activate
def test_binance_bad_fields(session, field, value, message):
    body = binance_body()
    if value is None:
        del body[field]
    else:
        body[field] = value
    responses.get(BINANCE, json=body)
    with pytest.raises(SourceError, match=message):
        BinanceSource(session, 2).fetch("BTC-USD", AT)


@responses.activate
@pytest.mark.parametrize("fixture", ["coinbase_ticker.json", "coinbase_ticker_ccxt_capture.json"])
def test_coinbase_both_documented_shapes(session, fixture):
    body = load_fixture(fixture)
    responses.get(COINBASE, json=body)
    quote = CoinbaseSource(session, 2).fetch("BTC-USD", AT).quote
    assert quote.price == float(body["price"])
    assert quote.volume_24h == float(body["volume"])
    assert quote.observed_at in (1584663777, 1710328241)


@responses.activate
def test_coinbase_error_message(session):
    responses.get(COINBASE, json=load_fixture("coinbase_error.json"), status=404)
    with pytest.raises(SourceError, match="HTTP 404"):
        CoinbaseSource(session, 2).fetch("BTC-USD", AT)


@responses.activate
def test_kraken_result_under_internal_name(session):
    responses.get(KRAKEN, json=load_fixture("kraken_ticker.json"))
    quote = KrakenSource(session, 2).fetch("BTC-USD", AT).quote
    assert quote.price == 30303.2
    assert quote.volume_24h == pytest.approx(4412.73601799)
    assert quote.observed_at == AT
    assert responses.calls[0].request.params["pair"] == "XBTUSD"


@responses.activate
def test_kraken_error_with_http_200(session):
    responses.get(KRAKEN, json=load_fixture("kraken_error_unknown_asset_pair.json"), status=200)
    with pytest.raises(SourceError, match="EQuery:Unknown asset pair"):
        KrakenSource(session, 2).fetch("BTC-USD", AT)


@responses.activate
def test_timeouts_and_connection_errors_become_reasons(session):
    responses.get(COINBASE, body=requests.ConnectTimeout("slow"))
    with pytest.raises(SourceError, match="timed out"):
        CoinbaseSource(session, 2).fetch("BTC-USD", AT)
    responses.replace(responses.GET, COINBASE, body=requests.ConnectionError("reset"))
    with pytest.raises(SourceError, match="network error"):
        CoinbaseSource(session, 2).fetch("BTC-USD", AT)


@responses.activate
def test_server_errors_are_retried_a_bounded_number_of_times():
    responses.get(COINBASE, json={"message": "busy"}, status=503)
    with pytest.raises(SourceError, match="HTTP 503"):
        CoinbaseSource(build_session(retries=2), 2).fetch("BTC-USD", AT)
    assert len(responses.calls) == 3


@responses.activate
def test_invalid_json_body(session):
    responses.get(COINBASE, body="not json", content_type="application/json")
    with pytest.raises(SourceError, match="invalid JSON"):
        CoinbaseSource(session, 2).fetch("BTC-USD", AT)


@responses.activate
def test_fetch_all_runs_every_source_and_keeps_failures(session):
    responses.get(GECKO, json=load_fixture("coingecko_simple_price.json"))
    responses.get(BINANCE, json=load_fixture("binance_error_451_restricted_location.json"), status=451)
    responses.get(COINBASE, json=load_fixture("coinbase_ticker.json"))
    responses.get(KRAKEN, json=load_fixture("kraken_error_unknown_asset_pair.json"))
    sources = build_sources(["coingecko", "binance", "coinbase", "kraken"], session=session, timeout_s=2)
    quotes, rejections = fetch_all(sources, "BTC-USD", AT)
    assert sorted(q.quote.source for q in quotes) == ["coinbase", "coingecko"]
    assert {r.source for r in rejections} == {"binance", "kraken"}


def test_fetch_all_turns_adapter_bugs_into_rejections():
    class Broken:
        name = "broken"

        def fetch(self, symbol, at):
            raise KeyError("oops")

    quotes, rejections = fetch_all([Broken()], "BTC-USD", AT)
    assert quotes == []
    assert rejections[0].reason.startswith("unexpected KeyError")


def test_fetch_all_overlaps_several_sources_and_fetches_a_lone_one_inline():
    class Recording:
        def __init__(self, name, price):
            self.name, self.price, self.thread = name, price, None

        def fetch(self, symbol, at):
            self.thread = threading.current_thread().name
            return FetchedQuote(SourceQuote(self.name, symbol, self.price, at), {"price": self.price})

    lone = Recording("replay", 100.0)
    quotes, rejections = fetch_all([lone], "BTC-USD", AT)
    assert [q.quote.price for q in quotes] == [100.0] and rejections == []
    assert lone.thread == threading.current_thread().name, "one source: no thread to start and join"
    pair = [Recording("a", 1.0), Recording("b", 2.0)]
    quotes, _ = fetch_all(pair, "BTC-USD", AT)
    assert [q.quote.source for q in quotes] == ["a", "b"], "in the sources' order"
    assert all(s.thread.startswith("price-source") for s in pair)


def test_registry_rejects_unknown_and_duplicate_specs(session, tmp_path):
    with pytest.raises(ValueError, match="unknown price source 'bitstamp'"):
        build_sources(["bitstamp"], session=session, timeout_s=2)
    with pytest.raises(ValueError, match="replay:NAME=PATH"):
        build_sources(["replay:nopath"], session=session, timeout_s=2)
    with pytest.raises(ValueError, match="repeated"):
        build_sources(["kraken", "replay:kraken=/x.csv"], session=session, timeout_s=2)


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def test_replay_serves_the_last_closed_bar(tmp_path, session):
    path = write_csv(tmp_path / "bars.csv", [
        "2023-03-11T11:58:00Z,10,11,9,10.5,1",
        "2023-03-11T11:59:00Z,10.5,12,10,11.5,1",
        "2023-03-11T12:00:00Z,11.5,13,11,12.5,1",
    ])
    (source,) = build_sources([replay_spec("venue", path)], session=session, timeout_s=2)
    at = 1678536000  # 12:00:00, the 12:00 bar has not closed yet
    fetched = source.fetch("BTC-USD", at)
    assert fetched.quote.price == 11.5
    assert fetched.quote.observed_at == at
    assert fetched.raw["bar"]["close"] == 11.5


def test_replay_errors_name_the_file(tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ["2023-03-11T12:00:00Z,1,1,1,1,1", "2023-03-11T11:00:00Z,1,1,1,1,1"])
    with pytest.raises(SourceError, match="not sorted"):
        ReplayPriceSource("x", bad).fetch("BTC-USD", 1678536000)
    good = write_csv(tmp_path / "good.csv", ["2023-03-11T12:00:00Z,1,1,1,1,1", "2023-03-11T12:01:00Z,1,1,1,1,1"])
    with pytest.raises(SourceError, match="no bar closed by"):
        ReplayPriceSource("x", good).fetch("BTC-USD", 1678000000)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("time,price\n1,2\n")
    with pytest.raises(SourceError, match="expected columns"):
        ReplayPriceSource("x", wrong).fetch("BTC-USD", 1678536000)


def test_fixtures_are_the_documented_shapes():
    # Guard against a fixture drifting from ../shared/fixtures: these keys are the contract.
    assert set(load_fixture("kraken_ticker.json")["result"]["XXBTZUSD"]) == set("abcvptlho")
    assert isinstance(load_fixture("binance_ticker_24hr.json")["lastPrice"], str)
    assert json.dumps(load_fixture("coingecko_simple_price.json")).count("last_updated_at") == 1
