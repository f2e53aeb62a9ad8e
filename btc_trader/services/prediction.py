"""Use case: one prediction for a symbol — history, models in parallel, ensemble, stored.

Every outcome is a `PredictionResult`: a forecast, or a refusal that says why
(`insufficient_history`, `no_model`). Refusals are stored too, so the audit trail has no holes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from btc_trader.contracts import ModelOutput, PredictionResult
from btc_trader.domain.prediction.edge import EdgeParams
from btc_trader.domain.prediction.ensemble import (
    ModelRun,
    NoUsableModelError,
    Skill,
    combine,
    edge_probabilities,
    model_weights,
)
from btc_trader.domain.prediction.model import (
    ForecastError,
    HistorySlice,
    InsufficientHistoryError,
    PriceHistory,
    PricePredictor,
)

SECONDS_PER_DAY = 86_400


class HistoryReader(Protocol):
    def load(self, symbol: str, at: int, bars: int, bar_seconds: int) -> HistorySlice: ...


class PredictionStore(Protocol):
    def save_prediction(self, symbol: str, timestamp: int, record: dict[str, Any], *, expires_at: int) -> bool: ...

    def get_prediction(self, symbol: str, timestamp: int) -> dict[str, Any] | None: ...

    def latest_skills(self, symbol: str, models: list[str]) -> dict[str, Skill]: ...


@dataclass(frozen=True)
class PredictionParams:
    horizon_minutes: int
    bar_seconds: int
    configured_weights: dict[str, float]
    edge: EdgeParams
    ttl_days: int
    model_timeout_s: float


@dataclass
class PredictionOutcome:
    result: PredictionResult
    runs: list[ModelRun]
    weights: dict[str, float]
    stored: bool
    history_items_read: int = 0


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_models(
    predictors: Sequence[PricePredictor], history: PriceHistory, horizon_minutes: int, timeout_s: float
) -> list[ModelRun]:
    """Every model in parallel, each bounded by `timeout_s`; failures become reasons."""

    def one(predictor: PricePredictor) -> ModelRun:
        started = time.perf_counter()
        if len(history) < predictor.history_bars:
            error = InsufficientHistoryError(len(history), predictor.history_bars)
            return ModelRun(predictor.name, error=str(error))
        try:
            forecast = predictor.predict(history.tail(predictor.history_bars), horizon_minutes)
            error = None
        except ForecastError as exc:
            forecast, error = None, str(exc)
        except Exception as exc:  # a broken adapter must not take the ensemble down
            forecast, error = None, f"unexpected {type(exc).__name__}: {exc}"
        usage = getattr(predictor, "last_usage", None)
        return ModelRun(
            predictor.name, forecast, error,
            latency_ms=(time.perf_counter() - started) * 1000,
            input_tokens=getattr(usage, "input_tokens", 0),
            output_tokens=getattr(usage, "output_tokens", 0),
        )

    if not predictors:
        return []
    pool = ThreadPoolExecutor(max_workers=len(predictors), thread_name_prefix="model")
    futures = {p.name: pool.submit(one, p) for p in predictors}
    deadline = time.monotonic() + timeout_s
    runs = []
    for name, future in futures.items():
        try:
            runs.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            runs.append(ModelRun(name, error=f"timed out after {timeout_s:g} s", latency_ms=timeout_s * 1000))
    # Do not wait for a model that overran: its client's own read timeout ends it.
    pool.shutdown(wait=False, cancel_futures=True)
    return runs


class PredictionService:
    def __init__(
        self,
        history: HistoryReader,
        store: PredictionStore,
        predictors: Sequence[PricePredictor],
        params: PredictionParams,
    ):
        self.history = history
        self.store = store
        self.predictors = list(predictors)
        self.params = params

    def predict(self, symbol: str, at: int, execution_id: str | None = None) -> PredictionOutcome:
        """Predict `symbol` as of `at` (epoch s)."""
        p = self.params
        models = [predictor.name for predictor in self.predictors]
        existing = self.store.get_prediction(symbol, at)
        if existing is not None:  # a retried workflow step: the stored answer stands
            return PredictionOutcome(PredictionResult.model_validate(existing["result"]), [], {}, stored=False)
        need = max(predictor.history_bars for predictor in self.predictors)
        try:
            loaded = self.history.load(symbol, at, need, p.bar_seconds)
        except InsufficientHistoryError as exc:
            return self._refuse(symbol, at, "insufficient_history", str(exc), execution_id)
        history, newest = loaded.history, loaded.newest_time
        least = min(predictor.history_bars for predictor in self.predictors)
        if len(history) < least:
            reason = str(InsufficientHistoryError(len(history), least, f"{p.bar_seconds // 60}-minute bars"))
            return self._refuse(symbol, at, "insufficient_history", reason, execution_id, history, newest)
        runs = run_models(self.predictors, history, p.horizon_minutes, p.model_timeout_s)
        skills = self.store.latest_skills(symbol, models)  # the evaluator's newest snapshot
        weights = model_weights(models, p.configured_weights, skills, p.edge)
        try:
            ensemble = combine(runs, weights, history.last_price, edge_probabilities(models, skills, p.edge))
        except NoUsableModelError as exc:
            return self._refuse(symbol, at, "no_model", str(exc), execution_id, history, newest, runs, weights)
        result = PredictionResult(
            as_of=iso(newest),
            current_price=history.last_price,
            price_age_s=max(0, at - newest),
            predicted_price=ensemble.predicted_price,
            horizon_minutes=p.horizon_minutes,
            direction=ensemble.direction,
            confidence=ensemble.confidence,
            models=_outputs(runs, ensemble.weights),
            source_divergence_bps=loaded.newest_divergence_bps,
        )
        stored = self._store(symbol, at, result, execution_id)
        items_read = getattr(getattr(self.history, "last_read", None), "items", 0)
        return PredictionOutcome(result, runs, ensemble.weights, stored, items_read)

    def _refuse(self, symbol, at, status, reason, execution_id, history=None, newest=None, runs=(), weights=None):
        result = PredictionResult(
            status=status,
            reason=reason,
            as_of=iso(newest if newest is not None else at),
            current_price=history.last_price if history is not None and len(history) else None,
            price_age_s=max(0, at - newest) if newest is not None else None,
            horizon_minutes=self.params.horizon_minutes,
            models=_outputs(list(runs), {}),
        )
        stored = self._store(symbol, at, result, execution_id)
        return PredictionOutcome(result, list(runs), weights or {}, stored)

    def _store(self, symbol: str, at: int, result: PredictionResult, execution_id: str | None) -> bool:
        record = {
            "result": result.model_dump(mode="json"),
            "status": result.status,
            "due_at": at + result.horizon_minutes * 60,
            "execution_id": execution_id,
        }
        if not any(m.ok for m in result.models):
            # Nothing to score: keeps it out of the evaluator's queue. Forecasts that merely had
            # no weight are still scored, so a model can earn its weight back.
            record["scored_at"] = at
        return self.store.save_prediction(symbol, at, record, expires_at=at + self.params.ttl_days * SECONDS_PER_DAY)


def _outputs(runs: list[ModelRun], weights: dict[str, float]) -> list[ModelOutput]:
    return [
        ModelOutput(
            model=run.model,
            predicted_price=run.forecast.predicted_price if run.forecast else None,
            direction=run.forecast.direction if run.forecast else None,
            confidence=run.forecast.confidence if run.forecast else None,
            weight=round(weights.get(run.model, 0.0), 6),
            ok=run.ok,
            error=run.error,
        )
        for run in runs
    ]
