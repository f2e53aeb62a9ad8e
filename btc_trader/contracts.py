"""The workflow state contract (DESIGN.md "Workflow state"), as pydantic models.

Each Lambda of the trading workflow returns only its own part; the state machine stores it
under its key (`prediction`, `risk`, `trade`) so the state grows and nothing is lost. Handlers
parse their input with these models at the boundary and return `model_dump(mode="json")`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from btc_trader.event_fields import EventSymbol, EventTimeText

Direction = Literal["up", "down", "stable"]
Action = Literal["BUY", "SELL", "HOLD"]
TradeMode = Literal["paper", "live"]
# UNKNOWN / OPEN: the order is unresolved (tracked until terminal); EXPIRED: an IOC that filled nothing.
TradeStatus = Literal["PENDING", "FILLED", "PARTIAL", "REJECTED", "FAILED", "UNKNOWN", "OPEN", "EXPIRED"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkflowInput(_Contract):
    symbol: EventSymbol
    # Step Functions execution names are at most 80 characters.
    execution_id: str = Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")
    # ISO-8601 with a zone, from $$.State.EnteredTime; normalised to UTC ending in Z.
    requested_at: EventTimeText


class ModelOutput(_Contract):
    model: str
    predicted_price: float | None = None
    direction: Direction | None = None
    confidence: float | None = Field(None, ge=0, le=1)
    weight: float = Field(0.0, ge=0)
    ok: bool
    error: str | None = None


class PredictionResult(_Contract):
    """`status` "ok" carries a forecast; otherwise the prediction refused, with `reason`.

    A refusal is a normal result, not an error: the risk manager rejects it with the reason.
    """

    status: Literal["ok", "insufficient_history", "no_model"] = "ok"
    reason: str | None = None
    as_of: str  # ISO-8601 time of the newest price used (or of the request when none)
    current_price: float | None = Field(None, gt=0)
    price_age_s: float | None = Field(None, ge=0)
    predicted_price: float | None = Field(None, gt=0)
    horizon_minutes: int = Field(gt=0)
    direction: Direction = "stable"
    confidence: float = Field(0.0, ge=0, le=1)
    models: list[ModelOutput] = Field(default_factory=list)
    source_divergence_bps: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _forecast_when_ok(self) -> PredictionResult:
        if self.status == "ok" and None in (self.current_price, self.price_age_s, self.predicted_price):
            raise ValueError("an ok prediction needs current_price, price_age_s and predicted_price")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"a {self.status} prediction needs a reason")
        return self


class RiskResult(_Contract):
    """The risk manager's verdict. With it, what the executor re-validates the intent against:
    the price it was sized at, the trading-state version the decision was stored at, the lease
    this execution holds, and the order ids this execution would use (named in alerts)."""

    approved: bool
    action: Action
    quantity_btc: float = Field(ge=0, allow_inf_nan=False)
    notional_usd: float = Field(ge=0, allow_inf_nan=False)
    reasons: list[str]
    risk_score: float = Field(ge=0, le=1)
    reference_price: float | None = Field(None, gt=0, allow_inf_nan=False)
    state_version: int | None = Field(None, ge=0)
    lease_expires_at: int | None = None  # epoch s, wall clock
    trade_id: str | None = None
    client_order_id: str | None = None


class WalletSnapshot(_Contract):
    usd: float = Field(ge=0)
    btc: float = Field(ge=0)
    equity_usd: float = Field(ge=0)


class TradeResult(_Contract):
    trade_id: str
    client_order_id: str
    mode: TradeMode
    status: TradeStatus
    filled_qty: float = Field(ge=0)
    avg_price: float | None = Field(None, gt=0)
    fee_usd: float = Field(ge=0)
    wallet: WalletSnapshot
    reason: str | None = None  # why nothing (or not everything) filled, or why the order is unresolved
