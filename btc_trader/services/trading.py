"""Use cases of the trading workflow: check the risk of a prediction, execute an approved intent.

Execution is intent-first and exactly-once: the trade id is the client order id derived from
the workflow execution id; the PENDING record is written before any order; a retried or
duplicated execution finds its trade and returns it (or reconciles a PENDING one by looking the
order up on the exchange) and can never place a second order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from btc_trader.contracts import PredictionResult, RiskResult, TradeResult, WalletSnapshot
from btc_trader.domain.orders import ExecutionReport, client_order_id
from btc_trader.domain.risk import RiskDecision, RiskLimits, RiskState, decide
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
    def save_state(self, symbol: str, wallet: PaperWallet, risk: RiskState, version: int) -> int: ...
    def get_trade(self, trade_id: str) -> dict[str, Any] | None: ...
    def record_pending(self, trade: dict[str, Any]) -> bool: ...
    def settle(self, trade_id: str, current_status: str, new_status: str, fields: dict[str, Any], symbol: str,
               wallet: PaperWallet, risk: RiskState, version: int) -> int: ...
    def mark(self, trade_id: str, current_status: str, new_status: str, fields: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TradingParams:
    limits: RiskLimits
    starting_cash: float
    slippage_bps: float
    mode: Mode


class RiskService:
    def __init__(self, store: TradingStore, params: TradingParams):
        self.store = store
        self.params = params

    def check(self, symbol: str, prediction: PredictionResult, now: int, manual_kill_switch: bool) -> RiskDecision:
        """Decide, and persist what the decision changed (day counters, kill switch)."""
        loaded, state, version = self.store.load_state(symbol, self.params.starting_cash)
        # Equity is marked to the latest price first, so a new peak counts before drawdown does.
        wallet = loaded.mark(prediction.current_price) if prediction.current_price else loaded
        decision = decide(prediction, wallet, state, self.params.limits, now, manual_kill_switch)
        if decision.state != state or wallet != loaded:
            self.store.save_state(symbol, wallet, decision.state, version)
        return decision


class ExecutionService:
    def __init__(self, store: TradingStore, params: TradingParams, live: LiveExecutor | None = None):
        if params.mode == "live" and live is None:
            raise ValueError("live mode needs an exchange executor")
        self.store = store
        self.params = params
        self.live = live

    def execute(self, symbol: str, execution_id: str, risk: RiskResult, prediction: PredictionResult,
                now: int) -> TradeResult:
        """Execute an approved intent exactly once."""
        if not risk.approved or risk.action == "HOLD":
            raise NotApprovedError(f"intent {risk.action} was not approved: {'; '.join(risk.reasons) or 'no reason'}")
        trade_id = client_order_id(execution_id)
        existing = self.store.get_trade(trade_id)
        if existing is None:
            trade = {
                "trade_id": trade_id, "client_order_id": trade_id, "execution_id": execution_id,
                "symbol": symbol, "side": risk.action, "mode": self.params.mode,
                "quantity_btc": risk.quantity_btc, "reference_price": prediction.current_price, "created_at": now,
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
