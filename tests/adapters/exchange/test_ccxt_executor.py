"""Live execution through ccxt with Binance's documented HTTP bodies (responses, no network)."""

import copy
import re

import pytest
import requests
import responses

from btc_trader.adapters.exchange.ccxt_executor import CcxtExecutor
from tests.conftest import load_fixture

API = "https://api.binance.com/api/v3"
ORDER = re.compile(r"https://api\.binance\.com/api/v3/order(\?.*)?$")
COID = "btct-0123456789abcdef0123456789abcde"


def order_body(status="FILLED", executed="0.00500000", fills=None):
    body = copy.deepcopy(load_fixture("binance_order_full.json"))
    body.update({"clientOrderId": COID, "origQty": "0.00500000", "executedQty": executed, "status": status,
                 "side": "BUY", "cummulativeQuoteQty": str(float(executed) * 20_000)})
    body["fills"] = fills if fills is not None else [
        {"price": "20000.00000000", "qty": executed, "commission": "0.02000000", "commissionAsset": "USDT", "tradeId": 56}]
    return body


@pytest.fixture
def binance():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API}/exchangeInfo", json=load_fixture("binance_exchange_info_btcusdt.json"))
        mock.get(f"{API}/time", json={"serverTime": 1655969291181})
        yield mock


@pytest.fixture
def executor():
    return CcxtExecutor("binance", "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j", sandbox=False)


def sent(mock, method="POST"):
    return [c.request for c in mock.calls if c.request.method == method and "/order" in c.request.url]


def test_filled_market_order_with_client_order_id(binance, executor):
    binance.post(ORDER, json=order_body())
    report = executor.place_market_order("BTC-USD", "BUY", 0.0050000049, COID, reference_price=20_000)
    assert report.status == "FILLED" and report.filled_qty == 0.005
    assert report.avg_price == 20_000 and report.fee_usd == pytest.approx(0.02)
    (request,) = sent(binance)
    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or request.url)
    assert f"newClientOrderId={COID}" in body and "quantity=0.005" in body and "symbol=BTCUSDT" in body


def test_partial_fill(binance, executor):
    binance.post(ORDER, json=order_body(status="EXPIRED", executed="0.00300000"))
    report = executor.place_market_order("BTC-USD", "BUY", 0.005, COID, reference_price=20_000)
    assert report.status == "PARTIAL" and report.filled_qty == 0.003


def test_insufficient_funds_and_filter_failures_are_rejections(binance, executor):
    binance.post(ORDER, json=load_fixture("binance_error_insufficient_balance.json"), status=400)
    report = executor.place_market_order("BTC-USD", "BUY", 0.005, COID, reference_price=20_000)
    assert report.status == "REJECTED" and "insufficient balance" in report.reason
    binance.replace(responses.POST, ORDER, json=load_fixture("binance_error_filter_failure_notional.json"), status=400)
    report = executor.place_market_order("BTC-USD", "BUY", 0.005, COID, reference_price=20_000)
    assert report.status == "REJECTED" and "NOTIONAL" in report.reason


def test_below_market_minimums_never_reach_the_exchange(binance, executor):
    assert "below the market minimum" in executor.place_market_order("BTC-USD", "BUY", 0.000001, COID, 20_000).reason
    assert "notional" in executor.place_market_order("BTC-USD", "BUY", 0.0002, COID, 20_000).reason
    assert sent(binance) == []


def test_timeout_propagates_then_lookup_finds_or_not(binance, executor):
    import ccxt

    binance.post(ORDER, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ccxt.NetworkError):
        executor.place_market_order("BTC-USD", "BUY", 0.005, COID, reference_price=20_000)
    found = copy.deepcopy(load_fixture("binance_query_order.json"))
    found.update({"symbol": "BTCUSDT", "clientOrderId": COID, "status": "FILLED", "type": "MARKET",
                  "origQty": "0.005", "executedQty": "0.005", "cummulativeQuoteQty": "100.0"})
    binance.get(ORDER, json=found)
    report = executor.find_order("BTC-USD", COID)
    assert report.status == "FILLED" and report.avg_price == pytest.approx(20_000)
    (lookup,) = sent(binance, "GET")
    assert f"origClientOrderId={COID}" in lookup.url
    binance.replace(responses.GET, ORDER, json=load_fixture("binance_error_order_does_not_exist.json"), status=400)
    assert executor.find_order("BTC-USD", COID) is None
