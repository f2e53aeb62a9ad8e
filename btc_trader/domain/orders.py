"""Order identity and the trade record's life cycle."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

TradeStatus = Literal["PENDING", "FILLED", "PARTIAL", "REJECTED", "FAILED"]

# Binance: ^[\.A-Z\:/a-z0-9_-]{1,36}$ ; other venues are at least as permissive in practice.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

ALLOWED: dict[str, set[str]] = {
    "PENDING": {"FILLED", "PARTIAL", "REJECTED", "FAILED"},
    "PARTIAL": {"FILLED"},  # a later reconciliation may find the rest filled
    "FAILED": {"FILLED", "PARTIAL", "REJECTED"},  # reconciliation finds what really happened
    "FILLED": set(),
    "REJECTED": set(),
}


class TransitionError(ValueError):
    """A trade record may not move between these states."""


def client_order_id(execution_id: str) -> str:
    """The exchange order id of a workflow execution: the same execution always maps to the same
    id, so a retried or duplicated execution can never place a second order."""
    if not execution_id:
        raise ValueError("execution_id must not be empty")
    return "btct-" + hashlib.sha256(execution_id.encode()).hexdigest()[:31]


def check_transition(current: str, new: str) -> None:
    """Raise TransitionError unless `current` -> `new` is allowed."""
    if new not in ALLOWED.get(current, set()):
        raise TransitionError(f"a {current} trade cannot become {new}")


@dataclass(frozen=True)
class ExecutionReport:
    """What an exchange says happened to an order."""

    status: Literal["FILLED", "PARTIAL", "REJECTED"]
    filled_qty: float = 0.0
    avg_price: float | None = None
    fee_usd: float = 0.0
    exchange_order_id: str | None = None
    reason: str | None = None
