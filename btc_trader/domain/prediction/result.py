"""Model runs and the ensemble as the workflow's `prediction` contract (PredictionResult)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from btc_trader.contracts import ModelOutput, PredictionResult
from btc_trader.domain.prediction.ensemble import ModelRun, NoUsableModelError, combine
from btc_trader.domain.prediction.model import InsufficientHistoryError, PriceHistory


def iso(epoch: int) -> str:
    """UTC epoch seconds as ISO-8601 (`2023-03-11T12:00:00Z`)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_outputs(runs: Sequence[ModelRun], weights: Mapping[str, float]) -> list[ModelOutput]:
    """One ModelOutput per run: a failed or unweighted model shows weight 0 and its error."""
    return [
        ModelOutput(
            model=run.model,
            predicted_price=run.forecast.predicted_price if run.forecast else None,
            direction=run.forecast.direction if run.forecast else None,
            confidence=run.forecast.confidence if run.forecast else None,
            weight=round(weights.get(run.model, 0.0), 6) if run.ok else 0.0,
            ok=run.ok,
            error=run.error,
        )
        for run in runs
    ]


def ensemble_result(
    runs: Sequence[ModelRun],
    weights: Mapping[str, float],
    history: PriceHistory,
    at: int,
    horizon_minutes: int,
    source_divergence_bps: float | None = None,
    probabilities: Mapping[str, float] | None = None,
) -> PredictionResult:
    """The ensemble of `runs` as of `at` (epoch s); `no_model` when no model was usable."""
    current = history.last_price
    age = max(0, at - history.price_time)
    try:
        ensemble = combine(runs, weights, current, probabilities)
    except NoUsableModelError as exc:
        return PredictionResult(
            status="no_model", reason=str(exc), as_of=iso(history.price_time), current_price=current,
            price_age_s=age, horizon_minutes=horizon_minutes, models=model_outputs(runs, {}),
            source_divergence_bps=source_divergence_bps,
        )
    return PredictionResult(
        as_of=iso(history.price_time),
        current_price=current,
        price_age_s=age,
        predicted_price=ensemble.predicted_price,
        horizon_minutes=horizon_minutes,
        direction=ensemble.direction,
        confidence=ensemble.confidence,
        models=model_outputs(runs, ensemble.weights),
        source_divergence_bps=source_divergence_bps,
    )


def insufficient_history_result(error: InsufficientHistoryError, at: int, horizon_minutes: int) -> PredictionResult:
    """The explicit refusal when too little history exists (the reason carries have/need)."""
    return PredictionResult(
        status="insufficient_history", reason=str(error), as_of=iso(at), horizon_minutes=horizon_minutes
    )
