"""The order reconciler: live ledgers against the exchange, orders of unknown fate until resolved.

Run on a schedule (functions/order_reconciler.py) and by an operator (`btc-trader trading
reconcile`). For each symbol it looks up every unresolved order (never re-sending one), compares
the ledger with the exchange's balances, and blocks the symbol with an alert when they differ
beyond dust. Only an operator lifts a block, by adopting the exchange's side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from btc_trader.domain.ledger import Reconciliation, adopt, reconcile
from btc_trader.domain.orders import UNRESOLVED, LiveGuard
from btc_trader.services.trading import ExecutionService

# An order still unseen this long after it was sent, while the balances agree up to dust, never
# reached the exchange (Binance shows an accepted order within seconds, -2013 right after a
# timeout only means "not visible yet").
NEVER_PLACED_AFTER_S = 900


class AlertPublisher(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


@dataclass(frozen=True)
class SymbolReport:
    """One symbol's state after a pass: what is unresolved, what is blocked, both sides."""

    symbol: str
    unresolved: tuple[str, ...]
    blocked_reason: str | None
    check: Reconciliation | None  # None in paper mode or before the ledger first adopted
    resolved: tuple[str, ...] = ()
    newly_blocked: bool = False

    def lines(self) -> list[str]:
        """What an operator reads."""
        out = [f"{self.symbol}:"]
        if self.check is not None:
            out += [f"  {d.asset:<6} ledger {d.ledger:>18.8f}   exchange {d.exchange:>18.8f}   diff {d.difference:+.8f}"
                    f"{'' if d in self.check.diffs and d not in self.check.beyond_dust else '   BEYOND DUST'}"
                    for d in self.check.diffs]
        out.append(f"  unresolved orders: {', '.join(self.unresolved) or 'none'}")
        if self.resolved:
            out.append(f"  resolved now: {', '.join(self.resolved)}")
        out.append(f"  blocked: {self.blocked_reason or 'no'}")
        return out


class ReconcileService:
    def __init__(self, execution: ExecutionService, alerts: AlertPublisher | None = None,
                 never_placed_after_s: int = NEVER_PLACED_AFTER_S):
        self.execution = execution
        self.store = execution.store
        self.live = execution.live
        self.alerts = alerts
        self.never_placed_after_s = never_placed_after_s

    def run(self, symbols: tuple[str, ...], now: int) -> list[SymbolReport]:
        """One scheduled pass over every symbol."""
        return [self.check(symbol, now) for symbol in symbols]

    def check(self, symbol: str, now: int) -> SymbolReport:
        """Resolve what can be resolved, compare both sides, block (and alert) on a difference."""
        if self.live is None:  # paper: nothing on an exchange to compare with
            guard, _ = self.store.load_guard(symbol)
            return SymbolReport(symbol, guard.unresolved, guard.blocked_reason, None)
        resolved = self._resolve_unresolved(symbol, now)
        guard, version = self.store.load_guard(symbol)
        wallet, _, _ = self.store.load_state(symbol, self.execution.params.starting_cash)
        price = self._price(symbol)
        balances = self.live.balances(symbol)
        check = reconcile(wallet, balances, self.live.rules(symbol), price)
        still = []
        for trade_id in guard.unresolved:
            trade = self.store.get_trade(trade_id)
            if trade is None or trade["status"] not in UNRESOLVED:
                continue
            if (trade["status"] != "OPEN" and check.agrees and guard.adopted
                    and now - int(trade["created_at"]) >= self.never_placed_after_s):
                reason = (f"never placed: not on the exchange {(now - int(trade['created_at'])) // 60} min after "
                          "sending, and the balances agree with the ledger")
                self.store.mark(trade_id, trade["status"], "REJECTED", {"reason": reason, "settled_at": now})
                resolved.append(trade_id)
                continue
            still.append(trade_id)
        newly_blocked = False
        blocked = guard.blocked_reason
        if guard.adopted and not still and not check.agrees and not blocked:
            blocked = f"ledger and exchange differ beyond dust: {check.describe()}"
            newly_blocked = True
        updated = replace(guard, unresolved=tuple(still), blocked_reason=blocked, checked_at=now)
        if updated != guard:
            self.store.save_guard(symbol, updated, version)
        report = SymbolReport(symbol, tuple(still), blocked, check, tuple(resolved), newly_blocked)
        if newly_blocked and self.alerts is not None:
            self.alerts.publish(f"btc-trader: {symbol} blocked, ledger differs from the exchange",
                                "\n".join([*report.lines(), "", "No new orders for this symbol until an operator runs "
                                           "`btc-trader trading reconcile --stack <stack> --aws`."]))
        return report

    def adopt_exchange(self, symbol: str, now: int) -> SymbolReport:
        """The operator's confirmation: the ledger takes the exchange's balances and the block is
        lifted. Orders still unknown are closed as not found; an order still open on the exchange
        keeps the symbol blocked (cancel it on the exchange first)."""
        if self.live is None:
            raise ValueError("reconcile adopts an exchange's balances: this stack trades on paper")
        self._resolve_unresolved(symbol, now)
        guard, version = self.store.load_guard(symbol)
        still = []
        for trade_id, trade in self._still_unresolved(guard):
            if trade["status"] == "OPEN":
                still.append(trade_id)
                continue
            self.store.mark(trade_id, trade["status"], "REJECTED", {
                "reason": "closed by an operator: not found on the exchange; its balances were adopted",
                "settled_at": now})
        price = self._price(symbol)
        balances, rules = self.live.balances(symbol), self.live.rules(symbol)
        wallet, state, state_version = self.store.load_state(symbol, self.execution.params.starting_cash)
        self.store.save_state(symbol, adopt(wallet, balances, rules, price), state, state_version)
        self.store.save_guard(symbol, replace(guard, unresolved=tuple(still), blocked_reason=None, adopted=True,
                                              checked_at=now), version)
        return self.check(symbol, now)

    def _resolve_unresolved(self, symbol: str, now: int) -> list[str]:
        guard, _ = self.store.load_guard(symbol)
        return [trade_id for trade_id, trade in self._still_unresolved(guard)
                if self.execution.resolve(trade, now, attempts=1).status not in UNRESOLVED]

    def _still_unresolved(self, guard: LiveGuard) -> Iterator[tuple[str, dict[str, Any]]]:
        """The guard's trades whose stored status is still unresolved (gone or settled ones skipped)."""
        for trade_id in guard.unresolved:
            trade = self.store.get_trade(trade_id)
            if trade is not None and trade["status"] in UNRESOLVED:
                yield trade_id, trade

    def _price(self, symbol: str) -> float:
        quote = self.live.quote(symbol)
        return quote.mid
