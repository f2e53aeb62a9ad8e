"""Scoring forecasts against what happened, and the rolling skill the ensemble reads.

Every scored prediction also scores persistence (the naive "price stays where it was"
forecast) on the same sample, so a model's error is always compared with the baseline's
error over exactly the same moments (a diagnostic). The weight follows the decision record:
each score keeps the predicted and the realised move, from which `edge` computes what acting
on the model's calls would have earned net of costs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from btc_trader.domain.prediction.edge import EdgeParams, edge_stats
from btc_trader.domain.prediction.ensemble import Skill
from btc_trader.domain.prediction.model import direction_of

PERSISTENCE = "persistence"


@dataclass(frozen=True)
class Score:
    model: str
    abs_pct_error: float
    direction_hit: bool
    predicted_move_pct: float = float("nan")  # NaN: stored before moves were kept (not a call)
    realised_return: float = float("nan")  # fractional move from the base price to the realised one


def _positive(value: float, name: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be finite and positive, got {value!r}")
    return number


def score(model: str, predicted_price: float, base_price: float, realised_price: float) -> Score:
    """How far off a forecast made at `base_price` was, and whether it called the direction."""
    predicted = _positive(predicted_price, f"{model} predicted_price")
    base = _positive(base_price, "base price")
    realised = _positive(realised_price, "realised price")
    error = abs(predicted - realised) / realised * 100
    predicted_direction = direction_of((predicted / base - 1) * 100)
    realised_direction = direction_of((realised / base - 1) * 100)
    return Score(model, error, predicted_direction == realised_direction, (predicted / base - 1) * 100,
                 realised / base - 1)


def score_prediction(
    model_prices: Mapping[str, float], base_price: float, realised_price: float
) -> list[Score]:
    """Every model's score plus the persistence baseline's (predicts no change)."""
    scores = [score(m, p, base_price, realised_price) for m, p in sorted(model_prices.items())]
    scores.append(score(PERSISTENCE, base_price, base_price, realised_price))
    return scores


def score_stored_prediction(result: Mapping[str, Any], realised_price: float) -> list[Score]:
    """Scores of a stored `prediction` (PredictionResult as JSON): its ok models and persistence."""
    if result.get("status", "ok") != "ok" or result.get("current_price") is None:
        raise ValueError(f"only ok predictions can be scored, got status {result.get('status')!r}")
    model_prices = {m["model"]: m["predicted_price"] for m in result.get("models", []) if m.get("ok")}
    return score_prediction(model_prices, result["current_price"], realised_price)


def rolling_skill(model: str, pairs: Iterable[tuple[Score, Score]], params: EdgeParams) -> Skill | None:
    """Skill over (model score, persistence score) pairs, newest first, back to the window-th newest call.

    Reads `overlap` more pairs than the window: the positions before it set the first steps'
    trading costs, exactly as the backtester's walk-forward does. MAE diagnostics cover the same steps.
    """
    recent, calls, extra = [], 0, 0
    for pair in pairs:
        recent.append(pair)
        if calls >= params.window:
            extra += 1
            if extra >= params.overlap:
                break
        elif params.is_call(pair[0].predicted_move_pct):
            calls += 1
    if not recent:
        return None
    chronological = recent[::-1]
    edge = edge_stats(np.array([s.predicted_move_pct for s, _ in chronological], dtype=float),
                      np.array([s.realised_return for s, _ in chronological], dtype=float), params)
    window = chronological[-edge.steps:] if edge.steps else chronological
    n = len(window)
    return Skill(
        model=model,
        samples=n,
        hit_rate=sum(s.direction_hit for s, _ in window) / n,
        mae_pct=sum(s.abs_pct_error for s, _ in window) / n,
        persistence_mae_pct=sum(p.abs_pct_error for _, p in window) / n,
        persistence_hit_rate=sum(p.direction_hit for _, p in window) / n,
        calls=edge.calls,
        call_hit_rate=edge.hit_rate,
        break_even_hit_rate=edge.break_even_hit_rate,
        mean_net_bps=edge.mean_net_bps,
        t_stat=edge.t_stat,
    )
