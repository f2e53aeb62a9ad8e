"""risk_manager Lambda (workflow step CheckRisk): prediction -> order intent -> every protection.

Input: the workflow state `{symbol, execution_id, requested_at, prediction}`; output: the `risk`
contract, with the lease, the state version and the order ids the executor re-validates against.
The handler reads the wall clock (the domain never does): the lease lives in real time, and in
live mode the run's clock (`requested_at`) must be near it. The operator's kill switch is an SSM
parameter read through Powertools Parameters (cached 30 s); if it cannot be read, trading stops —
when in doubt, do not trade.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.contracts import PredictionResult, WorkflowInput
from btc_trader.runtime_config import TradingConfig
from btc_trader.services.trading import RiskService
from btc_trader.services.trading_wiring import trading_params
from btc_trader.telemetry import Telemetry

logger = Logger()
tracer = Tracer()
metrics = Metrics()
telemetry = Telemetry(metrics, logger)

KILL_SWITCH_CACHE_S = 30


class RiskInput(WorkflowInput):
    prediction: PredictionResult


def wall_clock() -> int:
    """The real time (epoch s): what the lease and, in live mode, the run's clock are held against."""
    return int(time.time())


@cache
def _config() -> TradingConfig:
    return TradingConfig.from_env(os.environ)


@cache
def _service() -> RiskService:
    config = _config()
    return RiskService(DynamoDBTradingStore(config.trades_table, config.state_table), trading_params(config),
                       DynamoDBPriceHistory(config.prices_table))


def manual_kill_switch(name: str) -> tuple[bool, str | None]:
    """(engaged, why-unreadable). Anything but a clear "off"/"false" stops trading."""
    try:
        value = parameters.get_parameter(name, max_age=KILL_SWITCH_CACHE_S)
    except parameters.exceptions.GetParameterError as exc:
        return True, f"kill switch parameter {name} unreadable ({exc})"
    return str(value).strip().lower() not in {"off", "false", "0"}, None


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=RiskInput)
def lambda_handler(event: RiskInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(symbol=event.symbol, execution_id=event.execution_id)
    now = int(datetime.fromisoformat(event.requested_at.replace("Z", "+00:00")).timestamp())
    engaged, unreadable = manual_kill_switch(_config().kill_switch_parameter)
    if unreadable:
        logger.error(unreadable)
    checked = _service().check(event.symbol, event.execution_id, event.prediction, now, wall_clock(), engaged)
    decision, result = checked.decision, checked.result
    telemetry.record("RiskScore", result.risk_score)
    failing = [outcome.rule for outcome in decision.outcomes if not outcome.passed]
    if failing:
        # Counted once per decision, by the deciding rule (the first reason), as the backtest counts;
        # every reason is in the "risk decision" line below.
        telemetry.record("RiskRejections", 1, rule=failing[0])
    if "lease" not in failing:
        # A run refused by the lease saw no state: it must not report a flat drawdown.
        telemetry.record("KillSwitchEngaged", 1 if decision.state.kill_switch else 0)
        telemetry.record("DrawdownPct", decision.drawdown_pct)
    logger.info("risk decision", extra={"approved": result.approved, "action": result.action,
                                        "reasons": result.reasons, "risk_score": result.risk_score})
    return result.model_dump(mode="json")
