"""prediction_evaluator Lambda (scheduled): score due predictions, keep per-model skill."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
from btc_trader.adapters.dynamodb_predictions import DynamoDBPredictionStore
from btc_trader.domain.prediction.scoring import PERSISTENCE
from btc_trader.event_fields import EvaluationEvent, require_configured
from btc_trader.runtime_config import PredictorConfig
from btc_trader.services.evaluation import EvaluationService
from btc_trader.telemetry import Telemetry

logger = Logger()
tracer = Tracer()
metrics = Metrics()
telemetry = Telemetry(metrics, logger)

LOOKBACK_DAYS = 7  # predictions older than this that never found a realised price are dropped


@cache
def _config() -> PredictorConfig:
    return PredictorConfig.from_env(os.environ)


@cache
def _service() -> EvaluationService:
    config = _config()
    return EvaluationService(
        prices=DynamoDBPriceHistory(config.prices_table),
        store=DynamoDBPredictionStore(config.predictions_table, config.scores_table),
        models=list(config.ml_models),
        tolerance_s=max(120, config.bar_minutes * 60 * 2),
        lookback_s=LOOKBACK_DAYS * 86_400,
        edge=config.edge_params(),
        ttl_days=config.prediction_ttl_days,
    )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EvaluationEvent)
def lambda_handler(event: EvaluationEvent, context: LambdaContext) -> dict[str, Any]:
    now = int(event.time.timestamp())
    symbols = require_configured(event.symbols, _config().symbols)
    summary = []
    for symbol in symbols:
        outcome = _service().evaluate(symbol, now)
        for score in outcome.scores:
            if score.model == PERSISTENCE:
                continue
            telemetry.record("PredictionAccuracy", 100.0 if score.direction_hit else 0.0, model=score.model)
        for model, skill in outcome.skills.items():
            # Below the evidence minimum the figure is noise, and an alarm on it would be too. The one
            # skill metric per model: the significance (Newey-West t) of its net edge after costs.
            if skill.samples < _config().min_skill_samples:
                continue
            telemetry.record("ModelNetEdgeT", skill.t_stat, model=model)
        telemetry.record("PredictionsScored", outcome.scored)
        summary.append({
            "symbol": symbol,
            "scored": outcome.scored,
            "waiting_for_price": outcome.waiting_for_price,
            "skills": {
                m: {"samples": s.samples, "calls": s.calls, "call_hit_rate": s.call_hit_rate,
                    "break_even_hit_rate": s.break_even_hit_rate, "mean_net_bps": s.mean_net_bps,
                    "t_stat": s.t_stat, "hit_rate": s.hit_rate, "mae_pct": s.mae_pct,
                    "persistence_mae_pct": s.persistence_mae_pct, "vs_persistence": s.vs_persistence}
                for m, s in outcome.skills.items()
            },
        })
    logger.info("evaluation", extra={"summary": summary})
    return {"evaluated_at": event.time.isoformat().replace("+00:00", "Z"), "results": summary}

