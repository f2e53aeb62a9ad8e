"""Live market orders through ccxt, with the failure handling money needs.

- Amounts are rounded to the market's precision; orders under the market's minimum amount or
  notional are refused here, with the reason, before reaching the exchange.
- The client order id (derived from the workflow execution) goes with every order, so the
  exchange itself refuses a duplicate.
- Funds and invalid-order errors are REJECTED with the exchange's reason. Network errors and
  timeouts propagate: the caller must look the order up by client order id (`find_order`)
  before anything is retried, because the order may have been placed.
"""

from __future__ import annotations

from typing import Any

import ccxt

from btc_trader.domain.orders import ExecutionReport

QUOTE_ALIASES = {"binance": {"USD": "USDT"}}


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

    def place_market_order(self, symbol: str, side: str, quantity: float, client_order_id: str,
                           reference_price: float | None = None) -> ExecutionReport:
        """Send a market order; REJECTED with a reason when it cannot or may not be placed."""
        market = self._market(symbol)
        unified = market["symbol"]
        try:
            amount = float(self.exchange.amount_to_precision(unified, quantity))
        except ccxt.InvalidOrder as exc:
            return ExecutionReport("REJECTED", reason=f"amount {quantity:.8f} is below the market minimum ({exc})")
        limits = market.get("limits") or {}
        min_amount = (limits.get("amount") or {}).get("min")
        if amount <= 0 or (min_amount and amount < min_amount):
            return ExecutionReport("REJECTED", reason=f"amount {quantity:.8f} rounds to {amount} below the "
                                   f"market minimum {min_amount}")
        min_cost = (limits.get("cost") or {}).get("min")
        if reference_price and min_cost and amount * reference_price < min_cost:
            return ExecutionReport("REJECTED", reason=f"notional {amount * reference_price:.2f} below the "
                                   f"market minimum {min_cost}")
        try:
            order = self.exchange.create_order(unified, "market", side.lower(), amount, None,
                                               {"clientOrderId": client_order_id})
        except (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadSymbol, ccxt.BadRequest,
                ccxt.PermissionDenied) as exc:
            # Refused by the exchange (funds, filters, symbol, permissions): no order exists.
            return ExecutionReport("REJECTED", reason=f"{type(exc).__name__}: {exc}")
        return self._report(order, market)

    def find_order(self, symbol: str, client_order_id: str) -> ExecutionReport | None:
        """The order with this client order id, or None when the exchange has none."""
        market = self._market(symbol)
        try:
            order = self.exchange.fetch_order(None, market["symbol"], {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            return None
        return self._report(order, market)

    def _report(self, order: dict[str, Any], market: dict[str, Any]) -> ExecutionReport:
        filled = float(order.get("filled") or 0)
        average = order.get("average")
        if not average and filled:
            cost = order.get("cost")
            average = float(cost) / filled if cost else None
        status = order.get("status")
        if filled <= 0:
            state = "REJECTED"
        elif status == "closed" and filled >= float(order.get("amount") or filled) * (1 - 1e-9):
            state = "FILLED"
        else:
            state = "PARTIAL"
        return ExecutionReport(
            status=state, filled_qty=filled, avg_price=float(average) if average else None,
            fee_usd=self._fee_usd(order, market, float(average or 0)),
            exchange_order_id=str(order.get("id")) if order.get("id") is not None else None,
            reason=None if filled > 0 else f"nothing filled (exchange status {status})",
        )

    @staticmethod
    def _fee_usd(order: dict[str, Any], market: dict[str, Any], price: float) -> float:
        """Fees in the quote currency; a base-currency fee is converted at the fill price, and a
        fee in a third currency (BNB) is estimated at the market's taker rate."""
        fees = order.get("fees") or ([order["fee"]] if order.get("fee") else [])
        total = 0.0
        for fee in fees:
            cost = float(fee.get("cost") or 0)
            currency = fee.get("currency")
            if currency == market.get("quote"):
                total += cost
            elif currency == market.get("base"):
                total += cost * price
            elif cost:
                total += float(order.get("cost") or 0) * float(market.get("taker") or 0)
        return total
