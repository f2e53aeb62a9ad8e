"""Scoring forecasts against what happened, and the rolling skill the ensemble reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from btc_trader.domain.prediction.ensemble import Skill
from btc_trader.domain.prediction.model import direction_of

PERSISTENCE = "persistence"


@dataclass(frozen=True)
class Score:
    model: str
    abs_pct_error: float
    direction_hit: bool


def score(model: str, predicted_price: float, base_price: float, realised_price: float) -> Score:
    """How far off a forecast made at `base_price` was, and whether it called the direction."""
    error = abs(predicted_price - realised_price) / realised_price * 100
    predicted_direction = direction_of((predicted_price / base_price - 1) * 100)
    realised_direction = direction_of((realised_price / base_price - 1) * 100)
    return Score(model, error, predicted_direction == realised_direction)


def score_prediction(
    model_prices: dict[str, float], base_price: float, realised_price: float
) -> list[Score]:
    """Every model's score plus the persistence baseline's (predicts no change)."""
    scores = [score(m, p, base_price, realised_price) for m, p in sorted(model_prices.items())]
    scores.append(score(PERSISTENCE, base_price, base_price, realised_price))
    return scores


def rolling_skill(model: str, pairs: Iterable[tuple[Score, Score]], window: int) -> Skill | None:
    """Skill over the newest `window` (model score, persistence score) pairs, newest first."""
    recent = list(pairs)[:window]
    if not recent:
        return None
    n = len(recent)
    return Skill(
        model=model,
        samples=n,
        hit_rate=sum(s.direction_hit for s, _ in recent) / n,
        mae_pct=sum(s.abs_pct_error for s, _ in recent) / n,
        persistence_mae_pct=sum(p.abs_pct_error for _, p in recent) / n,
    )
