"""Use cases of the trading workflow: check the risk of a prediction, execute an approved intent.

Execution is intent-first: the trade id is the client order id derived from the workflow
execution id and the PENDING record is written before any order, so a retried or duplicated
execution finds its trade instead of trading again. Live, the exchange is the truth: the ledger
is reconciled with the exchange's balances before every order, an order whose fate is unknown is
looked up (never re-sent) and blocks its symbol until it is resolved, and orders are limit IOC at
the fresh quote within `maxSlippageBps`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from btc_trader.contracts import PredictionResult, RiskResult, TradeResult, WalletSnapshot
from btc_trader.domain.ledger import (
    MarketRules,
    ProtectedOrder,
    Quote,
    adopt,
    book_fill,
    protect,
    reconcile,
)
from btc_trader.domain.orders import (
    UNRESOLVED,
    ExecutionReport,
    LiveGuard,
    OrderFateUnknown,
    client_order_id,
)
from btc_trader.domain.risk import (
    Evidence,
    Lease,
    RiskDecision,
    RiskLimits,
    RiskState,
    decide,
    lease_refusal,
)
from btc_trader.domain.wallet import PaperWallet, WalletError

Mode = Literal["paper", "live"]


class NotApprovedError(ValueError):
    """The executor was handed an intent the risk manager did not approve."""


class LiveExecutor(Protocol):
    """The exchange, as live execution needs it (adapters/exchange/ccxt_executor.py)."""

    def rules(self, symbol: str) -> MarketRules: ...
    def quote(self, symbol: str) -> Quote: ...
    def balances(self, symbol: str) -> dict[str, float]: ...
    def place_limit_ioc(self, symbol: str, side: str, quantity: float, limit_price: float,
                        client_order_id: str) -> ExecutionReport: ...
    def find_order(self, symbol: str, client_order_id: str, since_ms: int | None = None) -> ExecutionReport | None: ...


class TradingStore(Protocol):
    def load_state(self, symbol: str, starting_cash: float) -> tuple[PaperWallet, RiskState, int]: ...
    def save_state(self, symbol: str, wallet: PaperWallet, risk: RiskState, version: int,
                   decision: dict[str, Any] | None = None) -> int: ...
    def load_decision(self, symbol: str) -> tuple[dict[str, Any] | None, int]: ...
    def acquire_lease(self, symbol: str, holder: str, now: int, ttl_s: int) -> Lease: ...
    def lease(self, symbol: str) -> Lease | None: ...
    def get_trade(self, trade_id: str) -> dict[str, Any] | None: ...
    def record_pending(self, trade: dict[str, Any]) -> bool: ...
    def settle(self, trade_id: str, current_status: str, new_status: str, fields: dict[str, Any], symbol: str,
               wallet: PaperWallet, risk: RiskState, version: int) -> int: ...
    def mark(self, trade_id: str, current_status: str, new_status: str, fields: dict[str, Any]) -> None: ...
    def load_guard(self, symbol: str) -> tuple[LiveGuard, int]: ...
    def save_guard(self, symbol: str, guard: LiveGuard, version: int) -> int: ...


class LatestPrice(Protocol):
    def price_at(self, symbol: str, at: int, tolerance_s: int) -> tuple[int, float] | None: ...


# How far back the risk manager looks for the stored price; the age rule then judges it.
PRICE_LOOKBACK_S = 86_400


@dataclass(frozen=True)
class TradingParams:
    limits: RiskLimits
    starting_cash: float
    slippage_bps: float
    mode: Mode
    symbols: tuple[str, ...] = ()  # the configured symbols; any other is refused
    lease_seconds: int = 0  # the per-symbol lease's expiry (btc_trader.workflow.lease_seconds)
    max_slippage_bps: float = 30.0  # live: the limit IOC's distance from the fresh best quote


@dataclass(frozen=True)
class CheckedDecision:
    """A risk decision with what the executor will re-validate it against."""

    decision: RiskDecision
    result: RiskResult


class RiskService:
    def __init__(self, store: TradingStore, params: TradingParams, prices: LatestPrice):
        if params.lease_seconds <= 0:
            raise ValueError(f"the lease needs a positive expiry, got {params.lease_seconds} s")
        self.store = store
        self.params = params
        self.prices = prices

    def check(self, symbol: str, execution_id: str, prediction: PredictionResult, now: int, wall_clock: int,
              manual_kill_switch: bool) -> CheckedDecision:
        """Take the symbol's lease, decide against what the stack knows, store the decision.

        `now` is the run's clock (requested_at), `wall_clock` the handler's: the lease lives in
        real time, and in live mode the run's clock must be within maxPriceAgeSeconds of it. A
        lease held by another execution is a refusal that touches nothing.
        """
        ids = {"trade_id": client_order_id(execution_id), "client_order_id": client_order_id(execution_id)}
        lease = self.store.acquire_lease(symbol, execution_id, wall_clock, self.params.lease_seconds)
        if not lease.acquired:
            decision = lease_refusal(lease)
            return CheckedDecision(decision, decision.to_result(**ids))
        stored = self.prices.price_at(symbol, now, PRICE_LOOKBACK_S)
        evidence = Evidence(
            symbol=symbol, symbols=self.params.symbols,
            stored_price=stored[1] if stored else None, stored_at=stored[0] if stored else None,
            clock_skew_s=abs(wall_clock - now) if self.params.mode == "live" else None,
            **self._order_guard(symbol),
        )
        loaded, state, version = self.store.load_state(symbol, self.params.starting_cash)
        # Equity is marked to the stored price first (never the event's), so a new peak counts
        # before drawdown does.
        wallet = loaded.mark(evidence.stored_price) if evidence.stored_price else loaded
        decision = decide(prediction, wallet, state, self.params.limits, now, manual_kill_switch, evidence)
        identity = {**ids, "lease_expires_at": lease.expires_at}
        result = decision.to_result(**identity)
        record = None
        if result.approved:
            record = {"execution_id": execution_id, "approved": True, "action": result.action,
                      "quantity_btc": result.quantity_btc, "notional_usd": result.notional_usd,
                      "reference_price": result.reference_price, "decided_at": now}
        if record is not None or decision.state != state or wallet != loaded:
            version = self.store.save_state(symbol, wallet, decision.state, version, record)
        return CheckedDecision(decision, result.model_copy(update={"state_version": version}))

    def _order_guard(self, symbol: str) -> dict[str, Any]:
        """Live: the symbol's unresolved orders and reconciliation block, as evidence for the rules."""
        if self.params.mode != "live":
            return {}
        guard, _ = self.store.load_guard(symbol)
        return {"unresolved_orders": tuple(guard.unresolved), "order_block": guard.blocked_reason}


def verify_intent(store: TradingStore, symbol: str, execution_id: str, risk: RiskResult,
                  prediction: PredictionResult, wall_clock: int) -> None:
    """Refuse (NotApprovedError, every reason) an intent that is not this execution's stored,
    approved decision on the current state under a live lease; called before anything is written."""
    if not risk.approved or risk.action == "HOLD":
        raise NotApprovedError(f"intent {risk.action} was not approved: {'; '.join(risk.reasons) or 'no reason'}")
    problems = []
    if prediction.status != "ok":
        problems.append(f"the prediction is a refusal ({prediction.status}: {prediction.reason})")
    decision, version = store.load_decision(symbol)
    if decision is None or decision.get("execution_id") != execution_id:
        holder = decision.get("execution_id") if decision else None
        problems.append(f"no stored approval of execution {execution_id} for {symbol}"
                        + (f" (the stored one is {holder}'s)" if holder else ""))
    else:
        for key in ("action", "quantity_btc", "notional_usd", "reference_price"):
            mine, stored = getattr(risk, key), decision.get(key)
            same = (mine == stored if isinstance(mine, str) or mine is None or stored is None
                    else math.isclose(float(mine), float(stored), rel_tol=1e-12, abs_tol=1e-12))
            if not same:
                problems.append(f"{key} {mine} differs from the stored decision's {stored}")
    if risk.state_version != version:
        problems.append(f"the trading state of {symbol} changed since the decision "
                        f"(version {risk.state_version}, now {version})")
    lease = store.lease(symbol)
    if lease is None or lease.holder != execution_id:
        problems.append(f"execution {execution_id} does not hold the lease of {symbol}"
                        + (f" ({lease.holder} does)" if lease else ""))
    elif lease.expires_at <= wall_clock:
        problems.append(f"the lease of {symbol} expired at epoch {lease.expires_at} (now {wall_clock})")
    if problems:
        raise NotApprovedError(f"refusing the {risk.action} intent of {execution_id}: " + "; ".join(problems))



# Unknown fate: look the order up this many times, this far apart, before leaving it to the
# reconciler (bounded so the executor returns well within its Lambda timeout).
POLL_ATTEMPTS = 4
POLL_INTERVAL_S = 2.0
# How far before the trade's creation the recent-orders lookup starts (exchange clock skew).
LOOKBACK_S = 120


class ExecutionService:
    def __init__(self, store: TradingStore, params: TradingParams, live: LiveExecutor | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if params.mode == "live" and live is None:
            raise ValueError("live mode needs an exchange executor")
        self.store = store
        self.params = params
        self.live = live
        self.sleep = sleep

    def execute(self, symbol: str, execution_id: str, risk: RiskResult, prediction: PredictionResult,
                now: int, wall_clock: int | None = None) -> TradeResult:
        """Execute an approved intent at most once; live, only when the symbol is clear."""
        if not risk.approved or risk.action == "HOLD":
            raise NotApprovedError(f"intent {risk.action} was not approved: {'; '.join(risk.reasons) or 'no reason'}")
        trade_id = client_order_id(execution_id)
        existing = self.store.get_trade(trade_id)
        if existing is not None:
            if existing["status"] in UNRESOLVED:
                return self.resolve(existing, now)
            return self._result(existing)
        # Before anything is written: only this execution's stored decision, under its lease.
        verify_intent(self.store, symbol, execution_id, risk, prediction, now if wall_clock is None else wall_clock)
        trade = {
            "trade_id": trade_id, "client_order_id": trade_id, "execution_id": execution_id,
            "symbol": symbol, "side": risk.action, "mode": self.params.mode,
            "quantity_btc": risk.quantity_btc, "notional_usd": risk.notional_usd,
            "reference_price": risk.reference_price, "created_at": now,
            # Why it was sent (a signal or the kill switch's flatten): `local trades` reports it.
            "risk_reasons": list(risk.reasons),
        }
        if self.params.mode == "paper":
            if not self.store.record_pending(trade):  # a concurrent duplicate got there first
                return self._result(self.store.get_trade(trade_id))
            return self._paper_fill({**trade, "status": "PENDING"}, now)
        return self._live_send(trade, now)

    # --- paper -----------------------------------------------------------------------------

    def _paper_fill(self, trade: dict[str, Any], now: int) -> TradeResult:
        symbol = trade["symbol"]
        wallet, state, version = self.store.load_state(symbol, self.params.starting_cash)
        try:
            wallet, fill = wallet.fill(trade["side"], float(trade["quantity_btc"]), float(trade["reference_price"]),
                                       self.params.limits.fee_bps, self.params.slippage_bps)
        except WalletError as exc:
            self.store.mark(trade["trade_id"], trade["status"], "REJECTED", {"reason": str(exc)})
            return self._result({**trade, "status": "REJECTED", "reason": str(exc)}, wallet)
        state = state.after_trade(now, fill.realised_pnl_usd)
        status = "PARTIAL" if fill.shrunk else "FILLED"
        fields = {"filled_qty": fill.quantity_btc, "avg_price": fill.price, "fee_usd": fill.fee_usd,
                  "realised_pnl_usd": fill.realised_pnl_usd, "settled_at": now}
        self.store.settle(trade["trade_id"], trade["status"], status, fields, symbol, wallet, state, version)
        return self._result({**trade, **fields, "status": status}, wallet)

    # --- live ------------------------------------------------------------------------------

    def gate(self, symbol: str, reference_price: float, now: int) -> str | None:
        """Why no new order may be sent for `symbol` now, or None when it is clear.

        First its unresolved orders are looked up once; then the ledger is compared with the
        exchange's balances (the first time, it takes them). A difference beyond dust blocks the
        symbol until an operator adopts the exchange's side (`btc-trader trading reconcile`).
        """
        guard, _ = self.store.load_guard(symbol)
        for trade_id in guard.unresolved:
            trade = self.store.get_trade(trade_id)
            if trade is not None and trade["status"] in UNRESOLVED:
                self._lookup_once(trade, now)
        guard, guard_version = self.store.load_guard(symbol)
        if guard.unresolved:
            return (f"unresolved_order: {len(guard.unresolved)} order(s) of {symbol} not yet terminal "
                    f"({', '.join(guard.unresolved)}); nothing is sent until they are resolved")
        if guard.blocked_reason:
            return f"reconciliation: {guard.blocked_reason} (resolve with `btc-trader trading reconcile`)"
        rules = self.live.rules(symbol)
        balances = self.live.balances(symbol)
        wallet, state, version = self.store.load_state(symbol, self.params.starting_cash)
        if not guard.adopted:
            # The ledger's first sight of the account: it takes the exchange's balances.
            self.store.save_state(symbol, adopt(wallet, balances, rules, reference_price), state, version)
            self.store.save_guard(symbol, replace(guard, adopted=True, checked_at=now), guard_version)
            return None
        check = reconcile(wallet, balances, rules, reference_price)
        if not check.agrees:
            reason = f"ledger and exchange differ beyond dust: {check.describe()}"
            self.store.save_guard(symbol, replace(guard, blocked_reason=reason, checked_at=now), guard_version)
            return f"reconciliation: {reason} (resolve with `btc-trader trading reconcile`)"
        return None

    def _live_send(self, trade: dict[str, Any], now: int) -> TradeResult:
        symbol, reference = trade["symbol"], float(trade["reference_price"])
        refusal = self.gate(symbol, reference, now)
        order: ProtectedOrder | str | None = None
        if refusal is None:
            wallet, _, _ = self.store.load_state(symbol, self.params.starting_cash)
            budget = float(trade["notional_usd"]) or float(trade["quantity_btc"]) * reference
            order = protect(trade["side"], float(trade["quantity_btc"]), budget, self.live.quote(symbol), reference,
                            wallet, self.live.rules(symbol), self.params.max_slippage_bps,
                            self.params.limits.fee_bps, self.params.limits.max_divergence_bps)
            refusal = order if isinstance(order, str) else None
        if refusal is not None:
            # Nothing was sent: the trade is recorded with the reason and counts toward no limit.
            if not self.store.record_pending(trade):
                return self._result(self.store.get_trade(trade["trade_id"]))
            self.store.mark(trade["trade_id"], "PENDING", "REJECTED", {"reason": refusal})
            return self._result({**trade, "status": "REJECTED", "reason": refusal})
        assert isinstance(order, ProtectedOrder)
        trade = {**trade, "order_quantity": order.quantity, "limit_price": order.limit_price,
                 "worst_cost_usd": order.worst_cost}
        if not self.store.record_pending(trade):
            return self._result(self.store.get_trade(trade["trade_id"]))
        trade = {**trade, "status": "PENDING"}
        # Tracked before it is sent: a crash from here on leaves an order of unknown fate, never a
        # forgotten one.
        self._track(symbol, trade["trade_id"])
        try:
            report = self.live.place_limit_ioc(symbol, trade["side"], order.quantity, order.limit_price,
                                               trade["client_order_id"])
        except OrderFateUnknown as exc:
            reason = f"order fate unknown after sending ({exc})"
            self.store.mark(trade["trade_id"], "PENDING", "UNKNOWN", {"reason": reason})
            return self.resolve({**trade, "status": "UNKNOWN", "reason": reason}, now)
        return self._book(trade, report, now)

    def resolve(self, trade: dict[str, Any], now: int, attempts: int | None = None) -> TradeResult:
        """Find out what happened to an unresolved order: bounded wait-and-poll, never a re-send."""
        if self.params.mode == "paper":
            # Paper fills and their PENDING->FILLED update are one transaction: a PENDING paper
            # trade never filled, so filling it now cannot double it.
            return self._paper_fill(trade, now)
        attempts = POLL_ATTEMPTS if attempts is None else attempts
        for attempt in range(attempts):
            if attempt:
                self.sleep(POLL_INTERVAL_S)
            result = self._lookup_once(trade, now)
            if result is not None and result.status not in UNRESOLVED:
                return result
            trade = self.store.get_trade(trade["trade_id"]) or trade
        if trade["status"] in ("PENDING", "FAILED"):
            reason = "order fate unknown: not found on the exchange yet"
            self.store.mark(trade["trade_id"], trade["status"], "UNKNOWN", {"reason": reason})
            trade = {**trade, "status": "UNKNOWN", "reason": reason}
        self._track(trade["symbol"], trade["trade_id"])
        return self._result({**trade, "reason": (trade.get("reason") or "") +
                             f"; still {trade['status']} after {attempts} lookups: tracked by the reconciler, "
                             f"no new order for {trade['symbol']} until it is resolved"})

    def _lookup_once(self, trade: dict[str, Any], now: int) -> TradeResult | None:
        """One look at the exchange for this trade's order; books it when it is terminal."""
        since_ms = (int(trade["created_at"]) - LOOKBACK_S) * 1000
        try:
            found = self.live.find_order(trade["symbol"], trade["client_order_id"], since_ms)
        except Exception:  # the exchange is unreachable: still unknown, looked at again later
            return None
        if found is None:
            return None
        return self._book(trade, found, now)

    def _track(self, symbol: str, trade_id: str) -> None:
        guard, version = self.store.load_guard(symbol)
        if trade_id not in guard.unresolved:
            self.store.save_guard(symbol, guard.with_unresolved(trade_id), version)

    def _untrack(self, symbol: str, trade_id: str, blocked_reason: str | None = None) -> None:
        guard, version = self.store.load_guard(symbol)
        updated = guard.without(trade_id)
        if blocked_reason:
            updated = replace(updated, blocked_reason=blocked_reason)
        if updated != guard:
            self.store.save_guard(symbol, updated, version)

    def _book(self, trade: dict[str, Any], report: ExecutionReport, now: int) -> TradeResult:
        symbol, current = trade["symbol"], trade["status"]
        extra = {"exchange_order_id": report.exchange_order_id} if report.exchange_order_id else {}
        if report.status == "OPEN":
            if current != "OPEN":
                self.store.mark(trade["trade_id"], current, "OPEN", {**extra, "reason": "open on the exchange"})
            self._track(symbol, trade["trade_id"])
            return self._result({**trade, "status": "OPEN", "reason": "open on the exchange; tracked until terminal"})
        if report.filled_qty <= 0:
            status = "EXPIRED" if report.status == "EXPIRED" else "REJECTED"
            reason = report.reason or "rejected by the exchange"
            self.store.mark(trade["trade_id"], current, status, {**extra, "reason": reason})
            self._untrack(symbol, trade["trade_id"])
            return self._result({**trade, "status": status, "reason": reason})
        rules = self.live.rules(symbol)
        wallet, state, version = self.store.load_state(symbol, self.params.starting_cash)
        wallet, booked = book_fill(wallet, trade["side"], report.filled_qty, float(report.avg_price), report.fees,
                                   rules)
        state = state.after_trade(now, booked.realised_pnl)
        fields = {"filled_qty": report.filled_qty, "avg_price": report.avg_price, "fee_usd": booked.fee_value_quote,
                  "fees": [{"amount": f.amount, "currency": f.currency} for f in report.fees],
                  "realised_pnl_usd": booked.realised_pnl, "settled_at": now, **extra}
        if report.reason:
            fields["reason"] = report.reason
        self.store.settle(trade["trade_id"], current, report.status, fields, symbol, wallet, state, version)
        self._untrack(symbol, trade["trade_id"], booked.shortfall)
        return self._result({**trade, **fields, "status": report.status}, wallet)

    def _result(self, trade: dict[str, Any], wallet: PaperWallet | None = None) -> TradeResult:
        if wallet is None:
            wallet, _, _ = self.store.load_state(trade["symbol"], self.params.starting_cash)
        price = float(trade.get("avg_price") or trade.get("reference_price") or 0)
        return TradeResult(
            trade_id=trade["trade_id"], client_order_id=trade["client_order_id"], mode=trade["mode"],
            status=trade["status"], filled_qty=float(trade.get("filled_qty") or 0),
            avg_price=float(trade["avg_price"]) if trade.get("avg_price") else None,
            fee_usd=float(trade.get("fee_usd") or 0),
            wallet=WalletSnapshot(usd=round(wallet.usd, 8), btc=round(wallet.btc, 8),
                                  equity_usd=round(wallet.equity(price), 8)),
            reason=trade.get("reason"),
        )
