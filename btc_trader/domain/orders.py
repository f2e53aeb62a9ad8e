"""Order identity, the trade record's life cycle and the in-flight order state machine.

A trade is written PENDING before its order is sent. Until the exchange says the order is
terminal it stays unresolved: OPEN (accepted, not done) or UNKNOWN (sent, fate unknown: a
timeout, -1007, an HTTP 5xx, or a crash before the answer was stored). An unresolved order
blocks new orders for its symbol and is never re-sent: it is looked up until its fate is known.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from btc_trader.domain.ledger import Fee

TradeStatus = Literal["PENDING", "FILLED", "PARTIAL", "REJECTED", "FAILED", "UNKNOWN", "OPEN", "EXPIRED"]
OrderState = Literal["FILLED", "PARTIAL", "REJECTED", "EXPIRED", "OPEN"]

# Binance: ^[\.A-Z\:/a-z0-9_-]{1,36}$ ; other venues are at least as permissive in practice.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

# FAILED is what older versions wrote after a network error; it is treated like UNKNOWN.
UNRESOLVED: frozenset[str] = frozenset({"PENDING", "FAILED", "UNKNOWN", "OPEN"})
_FROM_UNRESOLVED = {"FILLED", "PARTIAL", "REJECTED", "EXPIRED", "OPEN", "UNKNOWN"}
ALLOWED: dict[str, set[str]] = {
    "PENDING": _FROM_UNRESOLVED | {"FAILED"},
    "FAILED": _FROM_UNRESOLVED,
    "UNKNOWN": _FROM_UNRESOLVED - {"UNKNOWN"},
    "OPEN": {"FILLED", "PARTIAL", "EXPIRED"},
    "PARTIAL": {"FILLED"},  # a later reconciliation may find the rest filled
    "FILLED": set(),
    "REJECTED": set(),
    "EXPIRED": set(),
}
# Statuses that count toward the trade limits: something was bought or sold.
COUNTED: frozenset[str] = frozenset({"FILLED", "PARTIAL"})


class TransitionError(ValueError):
    """A trade record may not move between these states."""


def client_order_id(execution_id: str) -> str:
    """The exchange order id of a workflow execution: the same execution always maps to the same
    id, so a retried or duplicated execution finds its order instead of placing another."""
    if not execution_id:
        raise ValueError("execution_id must not be empty")
    return "btct-" + hashlib.sha256(execution_id.encode()).hexdigest()[:31]


def check_transition(current: str, new: str) -> None:
    """Raise TransitionError unless `current` -> `new` is allowed."""
    if new not in ALLOWED.get(current, set()):
        raise TransitionError(f"a {current} trade cannot become {new}")


def order_state(exchange_status: str | None, filled: float, amount: float | None) -> OrderState:
    """The trade status of an order the exchange reports (ccxt's unified order statuses)."""
    if exchange_status in ("open", "canceling", None):
        return "OPEN"
    if exchange_status == "closed" and (not amount or filled >= amount * (1 - 1e-9)):
        return "FILLED"
    if filled > 0:
        return "PARTIAL"  # canceled, expired or closed with part of it filled: terminal
    return "REJECTED" if exchange_status == "rejected" else "EXPIRED"


@dataclass(frozen=True)
class ExecutionReport:
    """What an exchange says happened to an order."""

    status: OrderState
    filled_qty: float = 0.0
    avg_price: float | None = None
    fee_usd: float = 0.0  # paper fills; live fills carry `fees` in their real currencies
    exchange_order_id: str | None = None
    reason: str | None = None
    fees: tuple[Fee, ...] = ()
    limit_price: float | None = None


class OrderFateUnknown(RuntimeError):
    """The order may or may not exist (timeout, -1007, HTTP 5xx, a duplicate client id): look it
    up, never send it again."""


@dataclass(frozen=True)
class LiveGuard:
    """A live symbol's order tracking: its unresolved trades and the block an operator must lift."""

    unresolved: tuple[str, ...] = ()  # trade ids whose order is OPEN or of unknown fate
    blocked_reason: str | None = None  # a ledger/exchange difference beyond dust, until adopted
    adopted: bool = False  # the ledger has taken the exchange's balances once
    checked_at: int | None = None

    def with_unresolved(self, trade_id: str) -> LiveGuard:
        """Track `trade_id` until its order is terminal."""
        if trade_id in self.unresolved:
            return self
        return LiveGuard(self.unresolved + (trade_id,), self.blocked_reason, self.adopted, self.checked_at)

    def without(self, trade_id: str) -> LiveGuard:
        """Stop tracking `trade_id` (its order is terminal)."""
        return LiveGuard(tuple(t for t in self.unresolved if t != trade_id), self.blocked_reason, self.adopted,
                         self.checked_at)
