"""Use cases of the trading workflow: check the risk of a prediction, execute an approved intent.

Execution is intent-first and exactly-once: the trade id is the client order id derived from
the workflow execution id; the PENDING record is written before any order; a retried or
duplicated execution finds its trade and returns it (or reconciles a PENDING one by looking the
order up on the exchange) and can never place a second order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from btc_trader.contracts import PredictionResult, RiskResult, TradeResult, WalletSnapshot
from btc_trader.domain.orders import ExecutionReport, client_order_id
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
    def place_market_order(self, symbol: str, side: str, quantity: float, client_order_id: str,
                           reference_price: float | None = None) -> ExecutionReport: ...

    def find_order(self, symbol: str, client_order_id: str) -> ExecutionReport | None: ...


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


class ExecutionService:
    def __init__(self, store: TradingStore, params: TradingParams, live: LiveExecutor | None = None):
        if params.mode == "live" and live is None:
            raise ValueError("live mode needs an exchange executor")
        self.store = store
        self.params = params
        self.live = live

    def execute(self, symbol: str, execution_id: str, risk: RiskResult, prediction: PredictionResult,
                now: int, wall_clock: int | None = None) -> TradeResult:
        """Execute an approved intent exactly once."""
        if not risk.approved or risk.action == "HOLD":
            raise NotApprovedError(f"intent {risk.action} was not approved: {'; '.join(risk.reasons) or 'no reason'}")
        trade_id = client_order_id(execution_id)
        existing = self.store.get_trade(trade_id)
        if existing is None:
            # Before PENDING is written: only this execution's stored decision, under its lease.
            verify_intent(self.store, symbol, execution_id, risk, prediction, now if wall_clock is None else wall_clock)
            trade = {
                "trade_id": trade_id, "client_order_id": trade_id, "execution_id": execution_id,
                "symbol": symbol, "side": risk.action, "mode": self.params.mode,
                "quantity_btc": risk.quantity_btc, "reference_price": risk.reference_price, "created_at": now,
                # Why it was sent (a signal or the kill switch's flatten): `local trades` reports it.
                "risk_reasons": list(risk.reasons),
            }
            if not self.store.record_pending(trade):  # a concurrent duplicate got there first
                existing = self.store.get_trade(trade_id)
            else:
                existing = {**trade, "status": "PENDING"}
                return self._send(existing, now)
        if existing["status"] in ("PENDING", "FAILED"):
            return self._reconcile(existing, now)
        return self._result(existing)

    # --- paths -----------------------------------------------------------------------------

    def _send(self, trade: dict[str, Any], now: int) -> TradeResult:
        symbol, side, quantity = trade["symbol"], trade["side"], float(trade["quantity_btc"])
        if self.params.mode == "paper":
            return self._paper_fill(trade, now)
        try:
            report = self.live.place_market_order(symbol, side, quantity, trade["client_order_id"],
                                                  float(trade["reference_price"]))
        except Exception as exc:  # network error, timeout, exchange down: look before retrying
            self.store.mark(trade["trade_id"], "PENDING", "FAILED", {"reason": f"{type(exc).__name__}: {exc}"})
            return self._reconcile({**trade, "status": "FAILED"}, now)
        return self._book(trade, report, now)

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

    def _book(self, trade: dict[str, Any], report: ExecutionReport, now: int) -> TradeResult:
        symbol = trade["symbol"]
        if report.status == "REJECTED" or report.filled_qty <= 0:
            reason = report.reason or "rejected by the exchange"
            self.store.mark(trade["trade_id"], trade["status"], "REJECTED", {"reason": reason})
            wallet, _, _ = self.store.load_state(symbol, self.params.starting_cash)
            return self._result({**trade, "status": "REJECTED", "reason": reason}, wallet)
        wallet, state, version = self.store.load_state(symbol, self.params.starting_cash)
        wallet, fill = wallet.apply_fill(trade["side"], report.filled_qty, report.avg_price, report.fee_usd)
        state = state.after_trade(now, fill.realised_pnl_usd)
        fields = {"filled_qty": report.filled_qty, "avg_price": report.avg_price, "fee_usd": report.fee_usd,
                  "exchange_order_id": report.exchange_order_id, "realised_pnl_usd": fill.realised_pnl_usd,
                  "settled_at": now}
        self.store.settle(trade["trade_id"], trade["status"], report.status, fields, symbol, wallet, state, version)
        return self._result({**trade, **fields, "status": report.status}, wallet)

    def _reconcile(self, trade: dict[str, Any], now: int) -> TradeResult:
        """A trade left PENDING/FAILED: find out what really happened before doing anything."""
        if self.params.mode == "paper":
            # Paper fills and their PENDING->FILLED update are one transaction: a PENDING paper
            # trade never filled, so filling it now cannot double it.
            return self._paper_fill(trade, now)
        found = self.live.find_order(trade["symbol"], trade["client_order_id"])
        if found is not None:
            return self._book(trade, found, now)
        # Absent at the exchange: sending again with the SAME client order id is safe, the
        # exchange refuses a duplicate id.
        try:
            report = self.live.place_market_order(trade["symbol"], trade["side"], float(trade["quantity_btc"]),
                                                  trade["client_order_id"], float(trade["reference_price"]))
        except Exception as exc:
            if trade["status"] == "PENDING":
                self.store.mark(trade["trade_id"], "PENDING", "FAILED", {"reason": f"{type(exc).__name__}: {exc}"})
            raise
        return self._book(trade, report, now)

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
        )
