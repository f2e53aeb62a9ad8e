"""A Binance Spot account behind ccxt's real Binance code, following Binance's documented rules.

Mounted on a `responses` mock, it answers the REST endpoints ccxt calls (exchangeInfo, time,
ticker/bookTicker, account, order POST/GET, openOrders, allOrders, myTrades) from an account
state it keeps: balances (free and locked), orders, trades and an order book that fills consume.
What it reproduces (shared/notes/exchange-semantics.md):

- commission in the asset received (BUY: base) unless `fee_mode` says quote or BNB;
- partial fills when the book is thin: MARKET and LIMIT IOC fill what they can and EXPIRE the rest;
- -1007, -1006 and bare HTTP 5xx on POST /order with the order placed or not, and an order that is
  invisible to queries (-2013) for a number of queries before it appears, or never appears;
- newClientOrderId: -2010 "Duplicate order sent." while an order with that id is open, accepted
  again once it is not;
- -2010 insufficient balance, -1013 filter failures (LOT_SIZE, PRICE_FILTER, NOTIONAL);
- order queries without fills (fees only through myTrades), FULL responses with fills.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

from tests.conftest import load_fixture

API = "https://api.binance.com/api/v3"
D = Decimal
ZERO = D(0)
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}


def _s(value: Decimal) -> str:
    return f"{value:.8f}"


@dataclass
class OrderFault:
    """What goes wrong with the next POST /order.

    kind: "-1007" (JSON error, HTTP 503), "-1006" (JSON error, HTTP 500), "5xx" (HTTP 502 with no
    JSON), "timeout" (read timeout).
    placed: the exchange processed the order anyway. visible_after: queries (order, allOrders,
    openOrders, myTrades) that answer as if the order did not exist, before it shows.
    """

    kind: str = "-1007"
    placed: bool = True
    visible_after: int = 0


@dataclass
class Order:
    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    price: Decimal
    orig_qty: Decimal
    time: int
    executed: Decimal = ZERO
    quote: Decimal = ZERO
    status: str = "NEW"
    hidden_queries: int = 0  # queries left that must not see it (status unknown to the client)

    def body(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1, "clientOrderId": self.client_id,
            "price": _s(self.price), "origQty": _s(self.orig_qty), "executedQty": _s(self.executed),
            "cummulativeQuoteQty": _s(self.quote), "status": self.status,
            "timeInForce": self.time_in_force or "GTC", "type": self.type, "side": self.side,
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": self.time, "updateTime": self.time,
            "isWorking": True, "workingTime": self.time, "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE",
        }


@dataclass
class BinanceSim:
    """One account on one symbol's book. Prices and quantities are Decimals; the clock is `now_ms`."""

    balances: dict[str, Decimal]
    asks: list[tuple[Decimal, Decimal]]  # (price, qty), best first
    bids: list[tuple[Decimal, Decimal]]
    fee_rate: Decimal = D("0.001")
    fee_mode: str = "received"  # "received" (Binance without BNB), "quote", "bnb"
    bnb_price_quote: Decimal = D("300")
    symbol: str = "BTCUSDT"
    base: str = "BTC"
    quote: str = "USDT"
    api: str = API  # Binance.US: https://api.binance.us/api/v3 (same API, BTC quoted in USD)
    now_ms: int = 1_678_536_000_000
    faults: list[OrderFault] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    locked: dict[str, Decimal] = field(default_factory=dict)
    stale_quote: tuple[Decimal, Decimal] | None = None  # (bid, ask) bookTicker answers while the book moved
    # The next N LIMIT orders are answered NEW (accepted, not matched yet: Binance documents NEW or
    # PARTIALLY_FILLED after placement for any order when the book is thin); `fill_resting` fills them.
    rest_next: int = 0
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _next_order: int = 1000
    _next_trade: int = 5000

    # --- the book and the filters -----------------------------------------------------------

    @classmethod
    def for_exchange(cls, exchange_id: str, **fields: Any) -> BinanceSim:
        """The account on binance.com (BTC/USDT) or Binance.US (BTC/USD)."""
        if exchange_id == "binanceus":
            return cls(symbol="BTCUSD", quote="USD", api="https://api.binance.us/api/v3", **fields)
        if exchange_id != "binance":
            raise ValueError(f"the simulator serves binance and binanceus, not {exchange_id!r}")
        return cls(**fields)

    def exchange_info(self) -> dict[str, Any]:
        """The documented exchangeInfo, listing this account's market."""
        info = load_fixture("binance_exchange_info_btcusdt.json")
        info["symbols"][0].update({"symbol": self.symbol, "baseAsset": self.base, "quoteAsset": self.quote})
        return info

    @property
    def filters(self) -> dict[str, dict[str, Any]]:
        return {f["filterType"]: f for f in self.exchange_info()["symbols"][0]["filters"]}

    def _filter_failure(self, order_type: str, price: Decimal | None, qty: Decimal, mid: Decimal) -> str | None:
        lot, tick, notional = self.filters["LOT_SIZE"], self.filters["PRICE_FILTER"], self.filters["NOTIONAL"]
        if qty < D(lot["minQty"]) or qty > D(lot["maxQty"]) or (qty - D(lot["minQty"])) % D(lot["stepSize"]) != 0:
            return "Filter failure: LOT_SIZE"
        if price is not None and (price < D(tick["minPrice"]) or price > D(tick["maxPrice"])
                                  or (price - D(tick["minPrice"])) % D(tick["tickSize"]) != 0):
            return "Filter failure: PRICE_FILTER"
        reference = price if order_type == "LIMIT" else mid
        if qty * reference < D(notional["minNotional"]):
            return "Filter failure: NOTIONAL"
        return None

    def mid(self) -> Decimal:
        return (self.asks[0][0] + self.bids[0][0]) / 2

    # --- account state ----------------------------------------------------------------------

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, ZERO) - self.locked.get(asset, ZERO)

    def _credit(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.balances.get(asset, ZERO) + amount

    def _visible(self, order: Order) -> bool:
        if order.hidden_queries > 0:
            order.hidden_queries -= 1
            return False
        return order.hidden_queries == 0

    def _match(self, order: Order, limit: Decimal | None) -> list[dict[str, Any]]:
        """Fill against the book (consuming it) up to the order's size and limit; book the trades."""
        levels = self.asks if order.side == "BUY" else self.bids
        fills, remaining = [], order.orig_qty - order.executed
        while remaining > 0 and levels:
            price, available = levels[0]
            if limit is not None and ((order.side == "BUY" and price > limit) or (order.side == "SELL" and price < limit)):
                break
            qty = min(remaining, available)
            fills.append(self._trade(order, price, qty))
            remaining -= qty
            levels[0] = (price, available - qty)
            if levels[0][1] == 0:
                levels.pop(0)
        return fills

    def _trade(self, order: Order, price: Decimal, qty: Decimal) -> dict[str, Any]:
        notional = price * qty
        if self.fee_mode == "bnb":
            commission, asset = (notional * self.fee_rate / self.bnb_price_quote).quantize(D("1e-8"), ROUND_DOWN), "BNB"
        elif self.fee_mode == "quote" or order.side == "SELL":
            commission, asset = (notional * self.fee_rate).quantize(D("1e-8"), ROUND_DOWN), self.quote
        else:
            commission, asset = (qty * self.fee_rate).quantize(D("1e-8"), ROUND_DOWN), self.base
        if order.side == "BUY":
            self._credit(self.quote, -notional)
            self._credit(self.base, qty)
        else:
            self._credit(self.base, -qty)
            self._credit(self.quote, notional)
        self._credit(asset, -commission)
        order.executed += qty
        order.quote += notional
        self._next_trade += 1
        trade = {"symbol": self.symbol, "id": self._next_trade, "orderId": order.order_id, "orderListId": -1,
                 "price": _s(price), "qty": _s(qty), "quoteQty": _s(notional), "commission": _s(commission),
                 "commissionAsset": asset, "time": self.now_ms, "isBuyer": order.side == "BUY", "isMaker": False,
                 "isBestMatch": True}
        self.trades.append(trade)
        return trade

    def fill_resting(self, client_id: str, qty: Decimal | None = None) -> None:
        """The market comes to a resting LIMIT order: it fills (entirely, or `qty`)."""
        order = next(o for o in self.orders if o.client_id == client_id and o.status in OPEN_STATUSES)
        qty = qty if qty is not None else order.orig_qty - order.executed
        self._unlock(order)
        self._trade(order, order.price, qty)
        order.status = "FILLED" if order.executed == order.orig_qty else "PARTIALLY_FILLED"
        if order.status != "FILLED":
            self._lock(order)

    def _lock(self, order: Order) -> None:
        asset, amount = ((self.quote, (order.orig_qty - order.executed) * order.price) if order.side == "BUY"
                         else (self.base, order.orig_qty - order.executed))
        self.locked[asset] = self.locked.get(asset, ZERO) + amount

    def _unlock(self, order: Order) -> None:
        asset, amount = ((self.quote, (order.orig_qty - order.executed) * order.price) if order.side == "BUY"
                         else (self.base, order.orig_qty - order.executed))
        self.locked[asset] = self.locked.get(asset, ZERO) - amount

    # --- endpoints --------------------------------------------------------------------------

    def new_order(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        side, order_type = params["side"], params["type"]
        qty = D(params["quantity"])
        price = D(params["price"]) if "price" in params else None
        client_id = params.get("newClientOrderId") or f"sim-{self._next_order}"
        if any(o.client_id == client_id and o.status in OPEN_STATUSES for o in self.orders):
            return 400, {"code": -2010, "msg": "Duplicate order sent."}
        failure = self._filter_failure(order_type, price, qty, self.mid())
        if failure:
            return 400, {"code": -1013, "msg": failure}
        if order_type == "LIMIT" and params.get("timeInForce") not in ("GTC", "IOC", "FOK"):
            return 400, {"code": -1102, "msg": "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."}
        worst = price if price is not None else (self.asks[-1][0] if side == "BUY" else ZERO)
        if (side == "BUY" and qty * worst > self.free(self.quote)) or (side == "SELL" and qty > self.free(self.base)):
            return 400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}
        self._next_order += 1
        order = Order(self._next_order, client_id, self.symbol, side, order_type, params.get("timeInForce"),
                      price or ZERO, qty, self.now_ms)
        self.orders.append(order)
        if order_type == "LIMIT" and self.rest_next > 0:
            self.rest_next -= 1
            self._lock(order)
            fills: list[dict[str, Any]] = []
        else:
            fills = self._match(order, price)
            if order.executed == order.orig_qty:
                order.status = "FILLED"
            elif order_type == "MARKET" or params.get("timeInForce") in ("IOC", "FOK"):
                order.status = "EXPIRED"  # what the book could not fill at the limit expires
            else:
                order.status = "PARTIALLY_FILLED" if order.executed else "NEW"
                self._lock(order)
        body = {**order.body(), "transactTime": self.now_ms,
                "fills": [{"price": t["price"], "qty": t["qty"], "commission": t["commission"],
                           "commissionAsset": t["commissionAsset"], "tradeId": t["id"]} for t in fills]}
        return 200, body

    def query_order(self, params: dict[str, str]) -> tuple[int, Any]:
        for order in self.orders:
            matches = str(order.order_id) == params.get("orderId") or order.client_id == params.get("origClientOrderId")
            if matches and self._visible(order):
                return 200, order.body()
        return 400, {"code": -2013, "msg": "Order does not exist."}

    def visible_orders(self, since: int | None = None) -> list[Order]:
        return [o for o in self.orders if self._visible(o) and (since is None or o.time >= since)]

    def handle(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = urlsplit(request.url)
        params = dict(parse_qsl(url.query))
        if request.body:
            body = request.body.decode() if isinstance(request.body, bytes) else request.body
            params.update(parse_qsl(body))
        path = url.path.removeprefix("/api/v3/")
        self.calls.append((request.method, path, params))
        status, payload = self._route(request, path, params)
        return status, {"Content-Type": "application/json"}, json.dumps(payload)

    def _route(self, request: requests.PreparedRequest, path: str, params: dict[str, str]) -> tuple[int, Any]:
        method = request.method
        if path == "exchangeInfo":
            return 200, self.exchange_info()
        if path == "time":
            return 200, {"serverTime": self.now_ms}
        if path == "ticker/bookTicker":
            bid, ask = self.stale_quote or (self.bids[0][0], self.asks[0][0])
            ticker = {"symbol": self.symbol, "bidPrice": _s(bid), "bidQty": _s(self.bids[0][1]),
                      "askPrice": _s(ask), "askQty": _s(self.asks[0][1])}
            return 200, [ticker] if "symbols" in params else ticker
        if "X-MBX-APIKEY" not in request.headers:
            return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        if path == "account":
            assets = sorted(set(self.balances) | set(self.locked))
            return 200, {"canTrade": True, "accountType": "SPOT", "updateTime": self.now_ms, "permissions": ["SPOT"],
                         "balances": [{"asset": a, "free": _s(self.free(a)), "locked": _s(self.locked.get(a, ZERO))}
                                      for a in assets]}
        if path == "order" and method == "POST":
            return self.new_order(params)
        if path == "order" and method == "GET":
            return self.query_order(params)
        if path == "openOrders":
            return 200, [o.body() for o in self.visible_orders() if o.status in OPEN_STATUSES]
        if path == "allOrders":
            since = int(params["startTime"]) if "startTime" in params else None
            return 200, [o.body() for o in self.visible_orders(since)]
        if path == "myTrades":
            visible = {o.order_id for o in self.visible_orders()}
            wanted = int(params["orderId"]) if "orderId" in params else None
            return 200, [t for t in self.trades if t["orderId"] in visible and wanted in (None, t["orderId"])]
        return 404, {"code": -1000, "msg": f"simulator does not serve {method} {path}"}

    # --- mounting ---------------------------------------------------------------------------

    def _post_order(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if not self.faults:
            return self.handle(request)
        fault = self.faults.pop(0)
        if fault.placed:
            status, headers, body = self.handle(request)
            if status == 200:
                self.orders[-1].hidden_queries = fault.visible_after if fault.visible_after >= 0 else 10**9
        else:
            self.calls.append(("POST", "order", {}))
        if fault.kind == "timeout":
            raise requests.ReadTimeout("read timed out (simulated)")
        if fault.kind == "5xx":
            return 502, {"Content-Type": "text/html"}, "<html><body>502 Bad Gateway</body></html>"
        if fault.kind == "-1006":
            return 500, {"Content-Type": "application/json"}, json.dumps({
                "code": -1006, "msg": "An unexpected response was received from the message bus. Execution status unknown."})
        return 503, {"Content-Type": "application/json"}, json.dumps({
            "code": -1007,
            "msg": "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        })

    def mount(self, mock: responses.RequestsMock) -> None:
        """Serve every endpoint of this account on `mock`."""
        pattern = re.compile(re.escape(self.api) + r"/.*")
        mock.add_callback(responses.POST, re.compile(re.escape(self.api) + r"/order(\?.*)?$"), callback=self._post_order)
        for method in (responses.GET, responses.POST, responses.DELETE):
            mock.add_callback(method, pattern, callback=self.handle)

    def posted_orders(self) -> list[dict[str, str]]:
        """The parameters of every POST /order the client sent (a re-send shows up twice)."""
        return [p for m, path, p in self.calls if m == "POST" and path == "order"]
