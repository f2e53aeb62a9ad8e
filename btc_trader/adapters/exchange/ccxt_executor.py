"""Live orders through ccxt, with the failure handling money needs.

- Orders are limit IOC at a price the caller computed from the fresh quote (`quote`), amounts
  and prices rounded to the market's precision; a market's minimums come from its filters.
- The client order id (derived from the workflow execution) goes with every order, so the order
  can be found again. It guarantees nothing else: Binance accepts a reused id once the first
  order is no longer open, so nothing is ever re-sent.
- Funds, filter and permission errors are REJECTED with the exchange's reason (no order exists).
  Anything else (timeouts, -1007, HTTP 5xx, "Duplicate order sent.") raises OrderFateUnknown:
  the caller must find the order (`find_order`) before doing anything else for the symbol.
- Fills come from the exchange's trades with each fee in its real currency.
"""

from __future__ import annotations

from typing import Any

import ccxt

from btc_trader.domain.ledger import Fee, MarketRules, Quote
from btc_trader.domain.orders import ExecutionReport, OrderFateUnknown, order_state

QUOTE_ALIASES = {"binance": {"USD": "USDT"}}
REFUSALS = (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadSymbol, ccxt.BadRequest, ccxt.PermissionDenied,
            ccxt.AuthenticationError)
DUPLICATE = "Duplicate order sent"


class CcxtExecutor:
    def __init__(self, exchange_id: str, api_key: str, secret: str, sandbox: bool, exchange: Any | None = None):
        if exchange is None:
            if not hasattr(ccxt, exchange_id):
                raise ValueError(f"ccxt has no exchange {exchange_id!r}")
            exchange = getattr(ccxt, exchange_id)({
                "apiKey": api_key,
                "secret": secret,
                "enableRateLimit": True,
                "timeout": 10_000,
                # Spot only: no derivatives market lists, no wallet endpoints at start-up.
                "options": {"defaultType": "spot", "fetchMarkets": ["spot"], "fetchCurrencies": False,
                            "fetchMargins": False},
            })
            if sandbox:
                exchange.set_sandbox_mode(True)
        self.exchange = exchange
        self.exchange_id = exchange_id
        self._markets_loaded = False

    def market_symbol(self, symbol: str) -> str:
        """`BTC-USD` -> the exchange's unified symbol (`BTC/USDT` on Binance)."""
        base, _, quote = symbol.partition("-")
        quote = QUOTE_ALIASES.get(self.exchange_id, {}).get(quote, quote)
        return f"{base}/{quote}"

    def _market(self, symbol: str) -> dict[str, Any]:
        if not self._markets_loaded:
            self.exchange.load_markets()
            self._markets_loaded = True
        return self.exchange.market(self.market_symbol(symbol))

    # --- market data and balances ----------------------------------------------------------

    def rules(self, symbol: str) -> MarketRules:
        """The market's minimums and increments (Binance LOT_SIZE, PRICE_FILTER, NOTIONAL)."""
        market = self._market(symbol)
        limits, precision = market.get("limits") or {}, market.get("precision") or {}
        return MarketRules(
            base=market["base"], quote=market["quote"],
            min_qty=float((limits.get("amount") or {}).get("min") or 0),
            step=float(precision.get("amount") or 1e-8),
            tick=float(precision.get("price") or 1e-8),
            min_notional=float((limits.get("cost") or {}).get("min") or 0),
        )

    def quote(self, symbol: str) -> Quote:
        """The best bid and ask now (Binance: GET /api/v3/ticker/bookTicker)."""
        unified = self._market(symbol)["symbol"]
        ticker = self.exchange.fetch_bids_asks([unified])[unified]
        return Quote(bid=float(ticker.get("bid") or 0), ask=float(ticker.get("ask") or 0))

    def balances(self, symbol: str) -> dict[str, float]:
        """Total (free + locked) balances of the market's base and quote assets."""
        market = self._market(symbol)
        total = self.exchange.fetch_balance().get("total") or {}
        return {asset: float(total.get(asset) or 0) for asset in (market["base"], market["quote"])}

    # --- orders ----------------------------------------------------------------------------

    def place_limit_ioc(self, symbol: str, side: str, quantity: float, limit_price: float,
                        client_order_id: str) -> ExecutionReport:
        """Send a limit IOC; REJECTED with a reason when refused, OrderFateUnknown when unsure."""
        market = self._market(symbol)
        unified = market["symbol"]
        try:
            amount = float(self.exchange.amount_to_precision(unified, quantity))
            price = float(self.exchange.price_to_precision(unified, limit_price))
        except ccxt.InvalidOrder as exc:
            return ExecutionReport("REJECTED", reason=f"amount {quantity:.8f} is below the market minimum ({exc})")
        try:
            order = self.exchange.create_order(unified, "limit", side.lower(), amount, price,
                                               {"timeInForce": "IOC", "clientOrderId": client_order_id})
        except REFUSALS as exc:
            if DUPLICATE in str(exc):  # an order with our id is open: ours, from an earlier attempt
                raise OrderFateUnknown(f"{type(exc).__name__}: {exc}") from exc
            return ExecutionReport("REJECTED", reason=f"{type(exc).__name__}: {exc}", limit_price=price)
        except Exception as exc:  # timeout, -1007, 5xx, anything: the order may exist
            raise OrderFateUnknown(f"{type(exc).__name__}: {exc}") from exc
        return self._report(order, market, price)

    def find_order(self, symbol: str, client_order_id: str, since_ms: int | None = None) -> ExecutionReport | None:
        """The order with this client order id (by id, then among recent orders), or None when the
        exchange shows none yet. Network errors propagate: the order stays unresolved."""
        market = self._market(symbol)
        try:
            order = self.exchange.fetch_order(None, market["symbol"], {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            # -2013 right after a timeout can mean "not visible yet": the recent orders may show it.
            recent = self.exchange.fetch_orders(market["symbol"], since_ms)
            order = next((o for o in recent if o.get("clientOrderId") == client_order_id), None)
            if order is None:
                return None
        return self._report(order, market, order.get("price"))

    def _report(self, order: dict[str, Any], market: dict[str, Any], limit_price: Any) -> ExecutionReport:
        filled = float(order.get("filled") or 0)
        state = order_state(order.get("status"), filled, float(order.get("amount") or 0) or None)
        fees: tuple[Fee, ...] = ()
        average = order.get("average")
        if filled > 0:
            trades = order.get("trades") or []
            if not trades and order.get("id") is not None:
                # An order query carries no fills: the fees are in the account's trades.
                trades = self.exchange.fetch_my_trades(market["symbol"], None, None, {"orderId": order["id"]})
            fees = tuple(Fee(float(t["fee"]["cost"]), t["fee"]["currency"])
                         for t in trades if t.get("fee") and t["fee"].get("cost") is not None)
            if trades:
                cost = sum(float(t["cost"]) for t in trades)
                average = cost / sum(float(t["amount"]) for t in trades)
            elif not average and order.get("cost"):
                average = float(order["cost"]) / filled
        reason = None
        if state == "EXPIRED":
            reason = f"IOC expired unfilled at the limit {limit_price}"
        elif state == "PARTIAL":
            reason = f"{filled:g} of {order.get('amount')} filled at the limit {limit_price}; the rest expired"
        elif state == "REJECTED":
            reason = f"rejected by the exchange (status {order.get('info', {}).get('status', order.get('status'))})"
        return ExecutionReport(
            status=state, filled_qty=filled, avg_price=float(average) if average else None,
            exchange_order_id=str(order.get("id")) if order.get("id") is not None else None,
            reason=reason, fees=fees, limit_price=float(limit_price) if limit_price else None,
        )
