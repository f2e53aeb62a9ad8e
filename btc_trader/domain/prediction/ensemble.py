"""Combining the models: weights earned by measured skill, a weighted vote on direction.

Weights. A model's skill is 1 - MAE(model) / MAE(persistence) over the scoring window, where
persistence is the naive "price stays the same" forecast. Once a model has `min_samples`
scored predictions its weight is configured weight x max(0, skill): a model that does no
better than persistence over the window loses its weight automatically, and a model's own
confidence is never trusted on its own. Before that its configured weight applies. When some
models are measured and others are not yet, an unmeasured model is put on the measured
models' scale (configured x their mean skill factor): otherwise a newcomer at full configured
weight would outvote peers whose weights are skill fractions like 0.05.

Failed models get weight 0 and stay in the output with their error; when no model is usable
`combine` raises NoUsableModelError (and `ensemble_result` returns an explicit `no_model`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from btc_trader.domain.prediction.model import DIRECTIONS, Direction, ModelForecast


@dataclass(frozen=True)
class ModelRun:
    """A model's outcome in one prediction run: a forecast, or the reason it has none."""

    model: str
    forecast: ModelForecast | None = None
    error: str | None = None
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.forecast is not None


@dataclass(frozen=True)
class Skill:
    """A model's track record over the scoring window."""

    model: str
    samples: int
    hit_rate: float
    mae_pct: float
    persistence_mae_pct: float
    persistence_hit_rate: float | None = None

    @property
    def vs_persistence(self) -> float:
        """1 - MAE/persistence MAE: > 0 beats persistence, <= 0 does not."""
        if self.persistence_mae_pct <= 0:
            # Persistence was exact on every sample (a flat market): nobody can beat it.
            return 0.0 if self.mae_pct > 0 else 1.0
        return 1 - self.mae_pct / self.persistence_mae_pct


class NoUsableModelError(RuntimeError):
    """Every enabled model failed (or has no weight); the reasons are in the message."""


def model_weights(
    models: Sequence[str], configured: Mapping[str, float], skills: Mapping[str, Skill], min_samples: int
) -> dict[str, float]:
    """Each model's raw weight: configured x measured skill factor (see the module doc)."""
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples}")
    factors = {
        m: max(0.0, skills[m].vs_persistence) for m in models if m in skills and skills[m].samples >= min_samples
    }
    newcomer_factor = sum(factors.values()) / len(factors) if factors else 1.0
    return {m: configured.get(m, 1.0) * factors.get(m, newcomer_factor) for m in models}


@dataclass(frozen=True)
class EnsembleForecast:
    predicted_price: float
    direction: Direction
    confidence: float
    agreement: float  # share of weight that voted for `direction`
    weights: dict[str, float]  # normalised over the models that produced a forecast


def combine(runs: Sequence[ModelRun], weights: Mapping[str, float], current_price: float) -> EnsembleForecast:
    """Weighted vote on direction; confidence = agreement x the agreeing models' conviction.

    confidence = sum(share_i * confidence_i over models agreeing with the vote): models that
    disagree pull it down (agreement < 1), as do unconvinced ones. The predicted price is the
    weighted mean of the agreeing models' prices, so price and direction always tell the same
    story; a tied vote is "stable" at the current price.
    """
    usable = [r for r in runs if r.ok and weights.get(r.model, 0) > 0]
    if not usable:
        reasons = "; ".join(f"{r.model}: {r.error or 'weight 0 (no better than persistence)'}" for r in runs)
        raise NoUsableModelError(f"no model produced a usable forecast ({reasons or 'no models enabled'})")
    total = sum(weights[r.model] for r in usable)
    share = {r.model: weights[r.model] / total for r in usable}
    votes = dict.fromkeys(DIRECTIONS, 0.0)
    for r in usable:
        votes[r.forecast.direction] += share[r.model]
    top = max(votes.values())
    leaders = [d for d, v in votes.items() if v == top]
    if len(leaders) > 1:
        return EnsembleForecast(current_price, "stable", 0.0, top, share)
    direction = leaders[0]
    agreeing = [r for r in usable if r.forecast.direction == direction]
    agreement = votes[direction]
    predicted = sum(share[r.model] * r.forecast.predicted_price for r in agreeing) / agreement
    confidence = sum(share[r.model] * r.forecast.confidence for r in agreeing)
    return EnsembleForecast(predicted, direction, min(1.0, confidence), agreement, share)
