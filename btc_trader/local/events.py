"""Sample events for `btc-trader local generate-event KIND`: what triggers each function.

Each state's input is what the trading state machine hands that state (the workflow input with
the previous steps' results under their `ResultPath` keys), built from the contracts so that a
sample that no longer matches a contract fails here, not in a user's editor. The workflow steps'
samples are built from what the emulator holds (the stored price, its age and divergence, the
paper wallet) and the stack's own rules, so a sample never carries a price that never existed.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from btc_trader.contracts import (
    ModelOutput,
    PredictionResult,
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
    "check-risk": ("CheckRisk's input: + $.prediction, a BUY signal at the stored price (confidence 0.62)",
                   "risk-manager"),
    "execute": ("Execute's input: + $.risk, the intent the stack's own rules approve (the executor accepts it "
                "only as the stored decision of the same execution under its lease: invoke risk-manager with "
                "this event's prediction first)", "trade-executor"),
    "notify": ("Notify's input: + $.trade, the paper fill (published to the alerts topic)", "SNS message"),
}
# Kinds built from what the emulator holds (the stored price, the wallet, the risk state).
FROM_EMULATOR = ("check-risk", "execute", "notify")
SAMPLE_CONFIDENCE = 0.62  # a plausible model conviction; below dev's riskThreshold, so CheckRisk refuses it


class SampleError(ValueError):
    """A sample cannot be built from what the emulator holds; the message says what to run."""


def _default_lease_s() -> int:
    from btc_trader.workflow import lease_seconds, trading_workflow

    return lease_seconds(trading_workflow("predict", "risk", "execute", "topic", state_table="state"))


def sample_event(kind: str, at: datetime, region: str, symbol: str) -> dict[str, Any]:
    """A trigger event of `kind` at `at` (schedule, workflow-input): no stored data needed."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; known: {', '.join(KINDS)}")
    if kind in FROM_EMULATOR:
        raise SampleError(f"a {kind} sample is built from the emulator's data: use build_sample")
    at = at.astimezone(UTC)
    if kind == "schedule":
        return scheduled_event(at, region)
    return WorkflowInput(**workflow_input(at, symbol)).model_dump()


def build_sample(kind: str, at: datetime, state: Any, symbol: str) -> dict[str, Any]:
    """A valid event of `kind` at `at`, from what the emulator holds and the stack's rules.

    check-risk: a BUY signal (the stack's buyThresholdPct) at the price the collector stored for
    `at`, with its real age and venue divergence. execute: the same prediction, confident enough,
    with the intent the stack's own risk rules give it against the stored wallet and risk state
    (refused with their reasons if they would not approve). notify: + the paper fill at that
    price with the stack's fee and slippage.
    """
    from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
    from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.domain.risk import decide
    from btc_trader.local.emulator import aws_environment
    from btc_trader.services.trading_wiring import trading_params
    from btc_trader.stack.environment import trading_config
    from btc_trader.stack.settings import load_stack_file

    if kind not in FROM_EMULATOR:
        return sample_event(kind, at, state.region, symbol)
    at = at.astimezone(UTC)
    now = int(at.timestamp())
    settings = load_stack_file(state.stack)
    params = trading_params(trading_config(settings, state.names))
    with aws_environment(state):
        prices = state.names.table("prices")
        found = DynamoDBPriceHistory(prices).price_at(symbol, now, settings.max_price_age_seconds)
        if found is None:
            stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            raise SampleError(
                f"no price of {symbol} stored at or up to maxPriceAgeSeconds ({settings.max_price_age_seconds} s) "
                f"before {stamp} in {prices}; store one first: `btc-trader local invoke price-collector --at "
                f"{stamp} --replay NAME=FILE ...` (or `btc-trader data backfill`)")
        stored_at, price = found
        item = DynamoDBPriceRepository(prices).get(symbol, stored_at) or {}
        wallet, risk_state, version = DynamoDBTradingStore(state.names.table("trades"),
                                                     state.names.table("trading-state")).load_state(
            symbol, params.starting_cash)
    divergence = item.get("divergence_bps")
    # Rounded up to the cent, so that the move is at least buyThresholdPct (a BUY, not a HOLD).
    predicted = math.ceil(price * (1 + settings.buy_threshold_pct / 100) * 100) / 100
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    event: dict[str, Any] = WorkflowInput(**workflow_input(at, symbol)).model_dump()
    confidence = SAMPLE_CONFIDENCE if kind == "check-risk" else max(SAMPLE_CONFIDENCE, settings.risk_threshold)
    prediction = PredictionResult(
        as_of=stamp, current_price=price, price_age_s=float(now - stored_at), predicted_price=predicted,
        horizon_minutes=settings.prediction_horizon_minutes, direction="up", confidence=confidence,
        models=[ModelOutput(model="custom", predicted_price=predicted, direction="up",
                            confidence=confidence, weight=1.0, ok=True)],
        source_divergence_bps=float(divergence) if divergence is not None else None,
    )
    event["prediction"] = prediction.model_dump()
    if kind == "check-risk":
        return event
    decision = decide(prediction, wallet.mark(price), risk_state, params.limits, now)
    if not decision.approved:
        raise SampleError(f"the stack's risk rules would not approve a BUY of {symbol} at {stamp}: "
                          f"{'; '.join(decision.reasons)}; an execute sample would be refused too")
    order_id = client_order_id(event["execution_id"])
    event["risk"] = decision.to_result(state_version=version, lease_expires_at=int(time.time()) + _default_lease_s(),
                                       trade_id=order_id, client_order_id=order_id).model_dump()
    if kind == "execute":
        return event
    after, fill = wallet.fill(decision.intent.action, decision.intent.quantity_btc, price, params.limits.fee_bps,
                              params.slippage_bps)
    event["trade"] = TradeResult(
        trade_id=order_id, client_order_id=order_id, mode=params.mode, status="FILLED",
        filled_qty=round(fill.quantity_btc, 8), avg_price=round(fill.price, 2), fee_usd=round(fill.fee_usd, 4),
        wallet=WalletSnapshot(usd=round(after.usd, 2), btc=round(after.btc, 8), equity_usd=round(after.equity(price), 2)),
    ).model_dump()
    return event
