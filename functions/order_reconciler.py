"""order_reconciler Lambda (scheduled): live ledgers against the exchange, unresolved orders.

Every run looks up each symbol's unresolved orders (never re-sending one), compares the ledger
with the exchange's balances and blocks the symbol with an alert when they differ beyond dust.
Records `UnresolvedOrders` (a metric: alarmed) and `ReconciliationBlocked` (a log measure).
Paper stacks only count.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from btc_trader.adapters.sns_alerts import SnsAlertPublisher
from btc_trader.runtime_config import ReconcilerConfig
from btc_trader.services.reconciliation import ReconcileService
from btc_trader.services.trading_wiring import execution_service
from btc_trader.telemetry import Telemetry

logger = Logger()
tracer = Tracer()
metrics = Metrics()
telemetry = Telemetry(metrics, logger)

SECRET_CACHE_S = 300


class ReconcileEvent(BaseModel):
    """A scheduled event (its `time` is the clock), optionally limited to some symbols."""

    model_config = ConfigDict(extra="ignore")
    time: datetime
    symbols: list[str] | None = None


@cache
def _config() -> ReconcilerConfig:
    return ReconcilerConfig.from_env(os.environ)


@cache
def _service() -> ReconcileService:
    config = _config()
    execution = execution_service(config, _exchange_keys)
    return ReconcileService(execution, SnsAlertPublisher(config.alerts_topic_arn))


def _exchange_keys(secret_name: str) -> dict[str, Any]:
    return parameters.get_secret(secret_name, transform="json", max_age=SECRET_CACHE_S)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ReconcileEvent)
def lambda_handler(event: ReconcileEvent, context: LambdaContext) -> dict[str, Any]:
    now = int(event.time.timestamp())
    symbols = tuple(event.symbols or _config().symbols)
    reports = _service().run(symbols, now)
    unresolved = sum(len(r.unresolved) for r in reports)
    blocked = sum(1 for r in reports if r.blocked_reason)
    telemetry.record("UnresolvedOrders", unresolved)
    telemetry.record("ReconciliationBlocked", blocked)
    summary = [{"symbol": r.symbol, "unresolved": list(r.unresolved), "resolved": list(r.resolved),
                "blocked_reason": r.blocked_reason, "agrees": None if r.check is None else r.check.agrees}
               for r in reports]
    if unresolved or blocked:
        logger.warning("reconciliation needs attention", extra={"summary": summary})
    else:
        logger.info("reconciliation", extra={"summary": summary})
    return {"reconciled_at": event.time.isoformat().replace("+00:00", "Z"), "mode": _config().mode,
            "results": summary}
