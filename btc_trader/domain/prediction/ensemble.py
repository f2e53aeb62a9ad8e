"""Combining the models: weights earned by measured skill, a weighted vote on direction.

Before a model has `min_samples` scored predictions its configured weight applies. After that
its weight is its skill against persistence (the naive "price stays the same" forecast):
1 - MAE(model) / MAE(persistence), floored at 0. A model that does no better than persistence
over the window therefore loses its weight automatically; a model's own confidence is never
trusted on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from btc_trader.domain.prediction.model import Direction, ModelForecast, direction_of


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

    @property
    def vs_persistence(self) -> float:
        """1 - MAE/persistence MAE: > 0 beats persistence, <= 0 does not."""
        if self.persistence_mae_pct <= 0:
            return 0.0
        return 1 - self.mae_pct / self.persistence_mae_pct


class NoUsableModelError(RuntimeError):
    """Every enabled model failed (or has no weight); the reasons are in the message."""


def model_weights(
    models: list[str], configured: dict[str, float], skills: dict[str, Skill], min_samples: int
) -> dict[str, float]:
    """Each model's weight: measured skill when there is enough of it, else configured."""
    weights = {}
    for model in models:
        skill = skills.get(model)
        if skill is not None and skill.samples >= min_samples:
            weights[model] = max(0.0, skill.vs_persistence)
        else:
            weights[model] = configured.get(model, 1.0)
    return weights


@dataclass(frozen=True)
class EnsembleForecast:
    predicted_price: float
    direction: Direction
    confidence: float
    agreement: float
    weights: dict[str, float]  # normalised over the models that produced a forecast


def combine(runs: list[ModelRun], weights: dict[str, float], current_price: float) -> EnsembleForecast:
    """Weighted mean price, weighted-majority direction, confidence = agreeing weight x conviction.

    confidence = sum(w_i * c_i over models agreeing with the majority) / sum(w_i): models that
    disagree pull it down, as do unconvinced ones.
    """
    usable = [r for r in runs if r.ok and weights.get(r.model, 0) > 0]
    if not usable:
        reasons = "; ".join(f"{r.model}: {r.error or 'weight 0 (worse than persistence)'}" for r in runs)
        raise NoUsableModelError(f"no model produced a usable forecast ({reasons or 'no models enabled'})")
    total = sum(weights[r.model] for r in usable)
    share = {r.model: weights[r.model] / total for r in usable}
    predicted = sum(share[r.model] * r.forecast.predicted_price for r in usable)
    votes: dict[str, float] = {"up": 0.0, "down": 0.0, "stable": 0.0}
    for r in usable:
        votes[r.forecast.direction] += share[r.model]
    top = max(votes.values())
    leaders = [d for d, v in votes.items() if v == top]
    direction: Direction = leaders[0] if len(leaders) == 1 else "stable"
    agreement = votes[direction]
    confidence = sum(share[r.model] * r.forecast.confidence for r in usable if r.forecast.direction == direction)
    # The weighted price and the voted direction can disagree when a big minority move drags
    # the mean; the stated direction is the vote, so report the price on its side of the band.
    if direction_of((predicted / current_price - 1) * 100) not in (direction, "stable") and direction != "stable":
        predicted = current_price
    return EnsembleForecast(predicted, direction, min(1.0, confidence), agreement, share)
