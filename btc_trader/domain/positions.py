"""Positions from trade records: each round trip's PnL and why it was closed.

A position opens with the first fill that buys from flat and closes with the fill that brings the
holding back under one satoshi. Its PnL is the sum of its SELL fills' `realised_pnl_usd` — the
wallet's own average-cost accounting (fees of both sides included) — so the positions always
add up to the wallet's realised PnL. A position is closed either by a SELL signal (the model
predicted a fall past `sellThresholdPct`) or by the drawdown kill switch's flatten; the executor
records the risk manager's reasons with each trade, and the flatten's first reason says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from btc_trader.domain.wallet import DUST_BTC

FILLED = ("FILLED", "PARTIAL")
SIGNAL, FLATTEN, UNRECORDED = "SELL signal", "kill switch flatten", "SELL (reason not recorded)"


@dataclass(frozen=True)
class Position:
    """A round trip (or the open position), in the units the tables show."""

    symbol: str
    opened_at: int | None  # None: opened before the first trade listed
    closed_at: int | None  # None: still open
    bought_btc: float
    sold_btc: float
    cost_usd: float  # buys: notional + fees
    proceeds_usd: float  # sells: notional - fees
    pnl_usd: float  # realised (closed) — for an open position, realised so far by partial sells
    pnl_pct: float | None  # of cost_usd; None when the opening buys are not listed
    fees_usd: float
    fills: int
    closed_by: str | None
    complete: bool  # every fill of the position is in the records given

    def to_json(self) -> dict[str, Any]:
        """Plain values for `--json`."""
        return asdict(self)


def close_reason(trade: Mapping[str, Any]) -> str:
    """Why a SELL was sent: the kill switch's flatten or a SELL signal (from its risk reasons)."""
    reasons = trade.get("risk_reasons")
    if reasons is None:
        return UNRECORDED
    return FLATTEN if any(str(r).startswith("flatten:") for r in reasons) else SIGNAL


def positions(trades: Iterable[Mapping[str, Any]]) -> tuple[list[Position], Position | None]:
    """(closed positions oldest first, the open one or None) from trade records in any order."""
    fills = sorted((t for t in trades if t.get("status") in FILLED and float(t.get("filled_qty") or 0) > 0),
                   key=lambda t: (float(t.get("settled_at") or t.get("created_at") or 0), str(t["trade_id"])))
    closed: list[Position] = []
    current: dict[str, Any] | None = None
    held = 0.0
    for trade in fills:
        quantity, price = float(trade["filled_qty"]), float(trade["avg_price"])
        fee = float(trade.get("fee_usd") or 0)
        at = int(float(trade.get("settled_at") or trade.get("created_at") or 0))
        if current is None:
            # A SELL from "flat" means its buys are older than the records given.
            complete = trade["side"] == "BUY"
            current = {"symbol": trade.get("symbol", ""), "opened_at": at if complete else None, "bought": 0.0,
                       "sold": 0.0, "cost": 0.0, "proceeds": 0.0, "pnl": 0.0, "fees": 0.0, "fills": 0,
                       "complete": complete}
        current["fills"] += 1
        current["fees"] += fee
        if trade["side"] == "BUY":
            held += quantity
            current["bought"] += quantity
            current["cost"] += quantity * price + fee
            continue
        held = max(0.0, held - quantity)
        current["sold"] += quantity
        current["proceeds"] += quantity * price - fee
        current["pnl"] += float(trade.get("realised_pnl_usd") or 0)
        if held < DUST_BTC:
            closed.append(_position(current, at, close_reason(trade)))
            current, held = None, 0.0
    return closed, (_position(current, None, None) if current else None)


def _position(p: dict[str, Any], closed_at: int | None, closed_by: str | None) -> Position:
    pct = p["pnl"] / p["cost"] * 100 if p["complete"] and p["cost"] > 0 else None
    return Position(p["symbol"], p["opened_at"], closed_at, p["bought"], p["sold"], p["cost"], p["proceeds"],
                    p["pnl"], pct, p["fees"], p["fills"], closed_by, p["complete"])
