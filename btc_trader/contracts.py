"""The workflow state contract (DESIGN.md "Workflow state"), as pydantic models.

Each Lambda of the trading workflow returns only its own part; the state machine stores it
under its key (`prediction`, `risk`, `trade`) so the state grows and nothing is lost. Handlers
parse their input with these models at the boundary and return `model_dump(mode="json")`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["up", "down", "stable"]
Action = Literal["BUY", "SELL", "HOLD"]
TradeMode = Literal["paper", "live"]
TradeStatus = Literal["PENDING", "FILLED", "PARTIAL", "REJECTED", "FAILED"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkflowInput(_Contract):
    symbol: str = "BTC-USD"
    execution_id: str = Field(min_length=1)
    requested_at: str = Field(min_length=1)  # ISO-8601, from $$.State.EnteredTime


class ModelOutput(_Contract):
    model: str
    predicted_price: float | None = None
    direction: Direction | None = None
    confidence: float | None = Field(None, ge=0, le=1)
    weight: float = Field(0.0, ge=0)
    ok: bool
    error: str | None = None


class PredictionResult(_Contract):
    as_of: str  # ISO-8601 time of the newest price used
    current_price: float = Field(gt=0)
    price_age_s: float = Field(ge=0)
    predicted_price: float = Field(gt=0)
    horizon_minutes: int = Field(gt=0)
    direction: Direction
    confidence: float = Field(ge=0, le=1)
    models: list[ModelOutput]
    source_divergence_bps: float | None = Field(None, ge=0)


class RiskResult(_Contract):
    approved: bool
    action: Action
    quantity_btc: float = Field(ge=0)
    notional_usd: float = Field(ge=0)
    reasons: list[str]
    risk_score: float = Field(ge=0, le=1)


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
