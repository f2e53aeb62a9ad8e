"""The simulator keeps Binance's documented rules (shared/notes/exchange-semantics.md), seen
through ccxt's real Binance client."""

from decimal import Decimal as D

import ccxt
import pytest
import responses

from tests.exchange_sim import BinanceSim, OrderFault


@pytest.fixture
def account():
    sim = BinanceSim(balances={"USDT": D("10000")}, asks=[(D("20000"), D("1"))], bids=[(D("19990"), D("1"))])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.mount(mock)
        client = ccxt.binance({"apiKey": "k", "secret": "s", "options": {
            "defaultType": "spot", "fetchMarkets": ["spot"], "fetchCurrencies": False, "fetchMargins": False}})
        client.enableRateLimit = False
        yield sim, client


def test_a_market_buy_pays_its_commission_in_the_btc_received(account):
    sim, client = account
    order = client.create_order("BTC/USDT", "market", "buy", 0.25, None, {"clientOrderId": "a"})
    assert order["status"] == "closed" and order["trades"][0]["fee"] == {"cost": 0.00025, "currency": "BTC"}
    assert client.fetch_balance()["total"]["BTC"] == 0.24975  # the documented example
    queried = client.fetch_order(None, "BTC/USDT", {"clientOrderId": "a"})
    assert queried["info"].get("fills") is None, "an order query has no fills"
    (trade,) = client.fetch_my_trades("BTC/USDT", None, None, {"orderId": queried["id"]})
    assert trade["fee"]["cost"] == 0.00025 and trade["fee"]["currency"] == "BTC"


def test_an_order_of_unknown_fate_is_invisible_then_visible(account):
    sim, client = account
    sim.faults.append(OrderFault("-1007", placed=True, visible_after=1))
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"clientOrderId": "u", "timeInForce": "IOC"})
    with pytest.raises(ccxt.OrderNotFound):  # -2013: not visible yet
        client.fetch_order(None, "BTC/USDT", {"clientOrderId": "u"})
    assert client.fetch_order(None, "BTC/USDT", {"clientOrderId": "u"})["status"] == "closed"


def test_client_id_rules_and_ioc_expiry(account):
    sim, client = account
    sim.rest_next = 1
    client.create_order("BTC/USDT", "limit", "buy", 0.01, 19_000, {"clientOrderId": "c", "timeInForce": "GTC"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order("BTC/USDT", "limit", "buy", 0.01, 19_000, {"clientOrderId": "c", "timeInForce": "IOC"})
    sim.fill_resting("c")
    again = client.create_order("BTC/USDT", "limit", "buy", 0.01, 19_000, {"clientOrderId": "c", "timeInForce": "IOC"})
    assert again["status"] == "expired" and again["filled"] == 0, "accepted once the first filled; nothing at 19000"
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order("BTC/USDT", "limit", "buy", 1, 20_000, {"timeInForce": "IOC"})
