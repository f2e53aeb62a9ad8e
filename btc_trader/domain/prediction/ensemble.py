"""Combining the models: weights earned by a decision record, a weighted vote on direction.

Weights. The configured weight (`modelWeights`) is the prior; as a model's scored calls
accumulate its weight moves to what its net edge supports and reaches 0 when acting on its calls
has not paid, net of fees and slippage, with the required significance (the rule and the
statistics are in `edge`). MAE against persistence is kept on `Skill` as a diagnostic only: it
rewards calibrated magnitudes, not a tradable direction. A model's own confidence is never
trusted on its own: the ensemble's confidence multiplies it by the probability, given the
evidence, that acting on the model's call has a positive net edge.

Failed models get weight 0 and stay in the output with their error; when no model is usable
`combine` raises NoUsableModelError (and `ensemble_result` returns an explicit `no_model`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from btc_trader.domain.prediction.edge import EdgeParams, edge_probability, evidence_factor
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
    calls: int = 0  # scored predictions whose move passed the buy/sell thresholds
    call_hit_rate: float | None = None
    break_even_hit_rate: float | None = None
    mean_net_bps: float = 0.0  # per call, net of fees and slippage
    t_stat: float = 0.0  # Newey-West t of the net edge

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
    models: Sequence[str], configured: Mapping[str, float], skills: Mapping[str, Skill], params: EdgeParams
) -> dict[str, float]:
    """Each model's raw weight: configured prior x evidence factor (see `edge`)."""
    weights = {}
    for m in models:
        skill = skills.get(m)
        factor = evidence_factor(skill.calls, skill.t_stat, skill.mean_net_bps, params) if skill else 1.0
        weights[m] = configured.get(m, 1.0) * factor
    return weights


def edge_probabilities(models: Sequence[str], skills: Mapping[str, Skill], params: EdgeParams) -> dict[str, float]:
    """Each model's probability, given its calls, that acting on its call has a positive net edge."""
    return {m: edge_probability(skills[m].calls, skills[m].t_stat, params) if m in skills else 1.0 for m in models}


@dataclass(frozen=True)
class EnsembleForecast:
    predicted_price: float
    direction: Direction
    confidence: float
    agreement: float  # share of weight that voted for `direction`
    weights: dict[str, float]  # normalised over the models that produced a forecast


def combine(runs: Sequence[ModelRun], weights: Mapping[str, float], current_price: float,
            probabilities: Mapping[str, float] | None = None) -> EnsembleForecast:
    """Weighted vote on direction; confidence = agreement x the agreeing models' conviction.

    confidence = sum(share_i * p_i * confidence_i over models agreeing with the vote), p_i the
    probability of a positive net edge (`edge_probabilities`; 1 when not given): models that
    disagree pull it down (agreement < 1), as do unconvinced or unproven ones. The predicted price is the
    weighted mean of the agreeing models' prices, so price and direction always tell the same
    story; a tied vote is "stable" at the current price.
    """
    usable = [r for r in runs if r.ok and weights.get(r.model, 0) > 0]
    if not usable:
        reasons = "; ".join(f"{r.model}: {r.error or 'weight 0 (no net edge after costs)'}" for r in runs)
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
    p = probabilities or {}
    confidence = sum(share[r.model] * p.get(r.model, 1.0) * r.forecast.confidence for r in agreeing)
    return EnsembleForecast(predicted, direction, min(1.0, confidence), agreement, share)
