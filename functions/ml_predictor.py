"""ml_predictor Lambda (workflow step Predict): history -> models in parallel -> ensemble.

Wiring only. Input: the workflow input `{symbol, execution_id, requested_at}`; output: the
`prediction` contract, which the state machine stores under `$.prediction`.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
from btc_trader.adapters.dynamodb_predictions import DynamoDBPredictionStore
from btc_trader.adapters.models.registry import build_predictors
from btc_trader.contracts import WorkflowInput
from btc_trader.event_fields import parse_event_time, require_configured
from btc_trader.runtime_config import PredictorConfig
from btc_trader.services.prediction import PredictionOutcome, PredictionParams, PredictionService
from btc_trader.telemetry import Telemetry

logger = Logger()
tracer = Tracer()
metrics = Metrics()
telemetry = Telemetry(metrics, logger)

# The clients' own read timeouts end a slow model first; this bounds the wait for all of them.
MODEL_GRACE_S = 1.0


@cache
def _config() -> PredictorConfig:
    return PredictorConfig.from_env(os.environ)


@cache
def _service() -> PredictionService:
    config = _config()
    predictors = build_predictors(config.ml_models, config)
    timeout = max(config.bedrock_timeout_seconds, config.sagemaker_timeout_seconds) + MODEL_GRACE_S
    return PredictionService(
        history=DynamoDBPriceHistory(config.prices_table),
        store=DynamoDBPredictionStore(config.predictions_table, config.scores_table),
        predictors=predictors,
        params=PredictionParams(
            horizon_minutes=config.horizon_minutes,
            bar_seconds=config.bar_minutes * 60,
            configured_weights=config.model_weights,
            edge=config.edge_params(),
            ttl_days=config.prediction_ttl_days,
            model_timeout_s=timeout,
        ),
    )


def _record(outcome: PredictionOutcome, symbol: str) -> None:
    for run in outcome.runs:
        telemetry.record("ModelLatency", run.latency_ms, model=run.model)
        telemetry.record("ModelSuccess" if run.ok else "ModelFailure", 1, model=run.model)
        if run.input_tokens or run.output_tokens:
            telemetry.record("BedrockInputTokens", run.input_tokens)
            telemetry.record("BedrockOutputTokens", run.output_tokens)
        if not run.ok:
            logger.warning("model failed", extra={"model": run.model, "reason": run.error})
    result = outcome.result
    if result.price_age_s is not None:
        # Freshness as trading sees it: the age of the latest stored price at decision time.
        telemetry.record("PriceAgeSeconds", result.price_age_s, symbol=symbol)
    if result.status == "ok":
        telemetry.record("EnsembleConfidence", result.confidence)
    else:
        telemetry.record("PredictionRefused", 1, reason=result.status)
    telemetry.record("HistoryItemsRead", outcome.history_items_read)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=WorkflowInput)
def lambda_handler(event: WorkflowInput, context: LambdaContext) -> dict[str, Any]:
    require_configured([event.symbol], _config().symbols)
    at = int(parse_event_time(event.requested_at).timestamp()) // 60 * 60
    logger.append_keys(symbol=event.symbol, execution_id=event.execution_id)
    outcome = _service().predict(event.symbol, at, event.execution_id)
    _record(outcome, event.symbol)
    result = outcome.result
    logger.info(
        "prediction",
        extra={"status": result.status, "direction": result.direction, "confidence": result.confidence,
               "reason": result.reason, "weights": outcome.weights},
    )
    return result.model_dump(mode="json")
