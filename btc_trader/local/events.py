"""Sample events for `btc-trader local generate-event KIND`: what triggers each function.

Each state's input is what the trading state machine hands that state (the workflow input with
the previous steps' results under their `ResultPath` keys), built from the contracts so that a
sample that no longer matches a contract fails here, not in a user's editor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from btc_trader.contracts import (
    ModelOutput,
    PredictionResult,
    RiskResult,
    TradeResult,
    WalletSnapshot,
    WorkflowInput,
)
from btc_trader.domain.orders import client_order_id
from btc_trader.local.invoke import scheduled_event, workflow_input

# kind -> (what it is for, which function takes it)
KINDS: dict[str, tuple[str, str]] = {
    "schedule": ("EventBridge scheduled event", "price-collector, prediction-evaluator"),
    "workflow-input": ("trading workflow input (Predict's input)", "ml-predictor"),
    "check-risk": ("CheckRisk's input: workflow input + $.prediction", "risk-manager"),
    "execute": ("Execute's input: + an approved $.risk (the executor accepts it only as the stored decision of "
                "the same execution under its lease: invoke risk-manager with the check-risk event first)",
                "trade-executor"),
    "notify": ("Notify's input: + $.trade (published to the alerts topic)", "SNS message"),
}


def _prediction(at: datetime) -> PredictionResult:
    price = 27_150.0
    return PredictionResult(
        as_of=at.strftime("%Y-%m-%dT%H:%M:%SZ"), current_price=price, price_age_s=42.0,
        predicted_price=price * 1.004, horizon_minutes=60, direction="up", confidence=0.62,
        models=[ModelOutput(model="custom", predicted_price=price * 1.004, direction="up", confidence=0.62,
                            weight=1.0, ok=True)],
        source_divergence_bps=3.1,
    )


def _default_lease_s() -> int:
    from btc_trader.workflow import lease_seconds, trading_workflow

    return lease_seconds(trading_workflow("predict", "risk", "execute", "topic", state_table="state"))


def sample_event(kind: str, at: datetime, region: str, symbol: str) -> dict[str, Any]:
    """A valid event of `kind` at time `at`."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; known: {', '.join(KINDS)}")
    at = at.astimezone(UTC)
    if kind == "schedule":
        return scheduled_event(at, region)
    state: dict[str, Any] = WorkflowInput(**workflow_input(at, symbol)).model_dump()
    if kind == "workflow-input":
        return state
    prediction = _prediction(at)
    state["prediction"] = prediction.model_dump()
    if kind == "check-risk":
        return state
    quantity = 0.0184
    order_id = client_order_id(state["execution_id"])
    state["risk"] = RiskResult(approved=True, action="BUY", quantity_btc=quantity,
                               notional_usd=round(quantity * prediction.current_price, 2),
                               reasons=[], risk_score=0.38, reference_price=prediction.current_price,
                               state_version=1, lease_expires_at=int(at.timestamp()) + _default_lease_s(),
                               trade_id=order_id, client_order_id=order_id).model_dump()
    if kind == "execute":
        return state
    fee = round(quantity * prediction.current_price * 0.001, 4)
    state["trade"] = TradeResult(
        trade_id=order_id, client_order_id=order_id, mode="paper", status="FILLED",
        filled_qty=quantity, avg_price=prediction.current_price * 1.0005, fee_usd=fee,
        wallet=WalletSnapshot(usd=9_499.5, btc=quantity, equity_usd=9_999.0),
    ).model_dump()
    return state
