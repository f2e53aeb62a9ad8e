"""Live execution through ccxt with Binance's documented HTTP bodies (responses, no network).

Scenarios against a whole simulated account are in tests/services/test_live_execution.py."""

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
                 "side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "price": "20060.00000000",
                 "cummulativeQuoteQty": str(float(executed) * 20_000)})
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


def test_filled_limit_ioc_with_client_order_id_and_fees_in_their_currency(binance, executor):
    fills = [{"price": "20000.00000000", "qty": "0.00500000", "commission": "0.00000500", "commissionAsset": "BTC",
              "tradeId": 56}]
    binance.post(ORDER, json=order_body(fills=fills))
    report = executor.place_limit_ioc("BTC-USD", "BUY", 0.0050000049, 20_060.004, COID)
    assert report.status == "FILLED" and report.filled_qty == 0.005 and report.avg_price == 20_000
    assert [(f.amount, f.currency) for f in report.fees] == [(0.000005, "BTC")]
    (request,) = sent(binance)
    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or request.url)
    for part in (f"newClientOrderId={COID}", "quantity=0.005", "symbol=BTCUSDT", "type=LIMIT", "timeInForce=IOC",
                 "price=20060"):
        assert part in body


def test_partial_fill_expires_the_rest(binance, executor):
    fills = [{"price": "20000.00000000", "qty": "0.00300000", "commission": "0.06", "commissionAsset": "USDT",
              "tradeId": 57}]
    binance.post(ORDER, json=order_body(status="EXPIRED", executed="0.00300000", fills=fills))
    report = executor.place_limit_ioc("BTC-USD", "BUY", 0.005, 20_060, COID)
    assert report.status == "PARTIAL" and report.filled_qty == 0.003 and "rest expired" in report.reason


def test_insufficient_funds_and_filter_failures_are_rejections(binance, executor):
    binance.post(ORDER, json=load_fixture("binance_error_insufficient_balance.json"), status=400)
    report = executor.place_limit_ioc("BTC-USD", "BUY", 0.005, 20_060, COID)
    assert report.status == "REJECTED" and "insufficient balance" in report.reason
    binance.replace(responses.POST, ORDER, json=load_fixture("binance_error_filter_failure_notional.json"), status=400)
    report = executor.place_limit_ioc("BTC-USD", "BUY", 0.005, 20_060, COID)
    assert report.status == "REJECTED" and "NOTIONAL" in report.reason


def test_market_rules_come_from_the_filters(binance, executor):
    rules = executor.rules("BTC-USD")
    assert (rules.base, rules.quote, rules.min_qty, rules.step, rules.tick, rules.min_notional) == (
        "BTC", "USDT", 0.00001, 0.00001, 0.01, 5.0)


def test_timeout_is_an_unknown_fate_then_lookup_by_client_id_and_recent_orders(binance, executor):
    from btc_trader.domain.orders import OrderFateUnknown

    binance.post(ORDER, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(OrderFateUnknown):
        executor.place_limit_ioc("BTC-USD", "BUY", 0.005, 20_060, COID)
    found = copy.deepcopy(load_fixture("binance_query_order.json"))
    found.update({"symbol": "BTCUSDT", "clientOrderId": COID, "status": "FILLED", "type": "LIMIT",
                  "origQty": "0.005", "executedQty": "0.005", "cummulativeQuoteQty": "100.0", "orderId": 28})
    binance.get(ORDER, json=found)
    trade = {"symbol": "BTCUSDT", "id": 1, "orderId": 28, "orderListId": -1, "price": "20000.0", "qty": "0.005",
             "quoteQty": "100.0", "commission": "0.000005", "commissionAsset": "BTC", "time": 1499865549590,
             "isBuyer": True, "isMaker": False, "isBestMatch": True}
    binance.get(re.compile(rf"{API}/myTrades.*"), json=[trade])
    report = executor.find_order("BTC-USD", COID)
    assert report.status == "FILLED" and report.avg_price == pytest.approx(20_000)
    assert [(f.amount, f.currency) for f in report.fees] == [(0.000005, "BTC")], "an order query has no fills"
    (lookup,) = sent(binance, "GET")
    assert f"origClientOrderId={COID}" in lookup.url
    # -2013 right after a timeout: not visible by id, so the recent orders are read too.
    binance.replace(responses.GET, ORDER, json=load_fixture("binance_error_order_does_not_exist.json"), status=400)
    binance.get(re.compile(rf"{API}/allOrders.*"), json=[])
    assert executor.find_order("BTC-USD", COID, since_ms=1_499_000_000_000) is None
    assert any("allOrders" in c.request.url and "startTime=1499000000000" in c.request.url for c in binance.calls)
