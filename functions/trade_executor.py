"""trade_executor Lambda (workflow step Execute): executes an approved intent exactly once.

Powertools Idempotency keyed on the workflow execution id guards the handler; the service's
intent-first audit trail guards the order itself; the intent must be this execution's stored
approval on the current trading state, under the symbol's lease (read against the wall clock). Live keys come from Secrets Manager through Powertools Parameters.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from btc_trader.contracts import PredictionResult, RiskResult, TradeResult, WorkflowInput
from btc_trader.runtime_config import TradingConfig
from btc_trader.services.trading import ExecutionService
from btc_trader.services.trading_wiring import execution_service
from btc_trader.telemetry import Telemetry

logger = Logger()
tracer = Tracer()
metrics = Metrics()
telemetry = Telemetry(metrics, logger)

SECRET_CACHE_S = 300


class ExecuteInput(WorkflowInput):
    prediction: PredictionResult
    risk: RiskResult


def wall_clock() -> int:
    """The real time (epoch s): what the lease and, in live mode, the run's clock are held against."""
    return int(time.time())


@cache
def _config() -> TradingConfig:
    return TradingConfig.from_env(os.environ)


@cache
def _service() -> ExecutionService:
    return execution_service(_config(), _exchange_keys)


def _exchange_keys(secret_name: str) -> dict[str, Any]:
    return parameters.get_secret(secret_name, transform="json", max_age=SECRET_CACHE_S)


@cache
def _idempotency() -> tuple[IdempotencyConfig, Any]:
    config = IdempotencyConfig(event_key_jmespath="execution_id", raise_on_no_idempotency_key=True)
    persistence = DynamoDBPersistenceLayer(table_name=_config().idempotency_table)

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def execute(request: dict[str, Any]) -> dict[str, Any]:
        parsed = ExecuteInput.model_validate(request)
        now = int(datetime.fromisoformat(parsed.requested_at.replace("Z", "+00:00")).timestamp())
        trade = _service().execute(parsed.symbol, parsed.execution_id, parsed.risk, parsed.prediction, now,
                                   wall_clock=wall_clock())
        return trade.model_dump(mode="json")

    return config, execute


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ExecuteInput)
def lambda_handler(event: ExecuteInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(symbol=event.symbol, execution_id=event.execution_id)
    config, execute = _idempotency()
    config.register_lambda_context(context)
    trade = TradeResult.model_validate(execute(request=event.model_dump(mode="json")))
    success = trade.status in ("FILLED", "PARTIAL")
    telemetry.record("TradeSuccessRate", 100.0 if success else 0.0)
    telemetry.record("TradesExecuted", 1, mode=trade.mode, side=event.risk.action)
    telemetry.record("PortfolioValue", trade.wallet.equity_usd, mode=trade.mode)
    logger.info("trade", extra={"status": trade.status, "trade_id": trade.trade_id, "filled": trade.filled_qty,
                                "price": trade.avg_price, "wallet": trade.wallet.model_dump()})
    return trade.model_dump(mode="json")
