"""Use case: score every prediction whose horizon has passed against the realised price."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from btc_trader.domain.prediction.edge import EdgeParams
from btc_trader.domain.prediction.ensemble import Skill
from btc_trader.domain.prediction.scoring import Score, score_prediction

SECONDS_PER_DAY = 86_400


class RealisedPrices(Protocol):
    def price_at(self, symbol: str, at: int, tolerance_s: int) -> tuple[int, float] | None: ...


class ScoreStore(Protocol):
    def due_for_scoring(self, symbol: str, now: int, lookback_s: int) -> list[dict[str, Any]]: ...

    def save_scores(self, symbol: str, timestamp: int, scores: list[Score], realised_price: float, *,
                    now: int, expires_at: int) -> None: ...

    def skills(self, symbol: str, models: list[str], params: EdgeParams) -> dict[str, Skill]: ...

    def save_skills(self, symbol: str, skills: dict[str, Skill], *, at: int, expires_at: int) -> None: ...


@dataclass
class EvaluationOutcome:
    symbol: str
    scored: int = 0
    waiting_for_price: int = 0
    scores: list[Score] = field(default_factory=list)
    skills: dict[str, Skill] = field(default_factory=dict)


class EvaluationService:
    def __init__(self, prices: RealisedPrices, store: ScoreStore, models: list[str], *, tolerance_s: int,
                 lookback_s: int, edge: EdgeParams, ttl_days: int):
        self.prices = prices
        self.store = store
        self.models = models
        self.tolerance_s = tolerance_s
        self.lookback_s = lookback_s
        self.edge = edge
        self.ttl_days = ttl_days

    def evaluate(self, symbol: str, now: int) -> EvaluationOutcome:
        """Score what is due as of `now`; predictions whose realised price is missing wait."""
        outcome = EvaluationOutcome(symbol)
        for prediction in self.store.due_for_scoring(symbol, now, self.lookback_s):
            result = prediction["result"]
            realised = self.prices.price_at(symbol, int(prediction["due_at"]), self.tolerance_s)
            if realised is None:
                outcome.waiting_for_price += 1
                continue
            model_prices = {m["model"]: m["predicted_price"] for m in result["models"] if m["ok"]}
            scores = score_prediction(model_prices, result["current_price"], realised[1])
            self.store.save_scores(
                symbol, int(prediction["timestamp"]), scores, realised[1],
                now=now, expires_at=now + self.ttl_days * SECONDS_PER_DAY,
            )
            outcome.scored += 1
            outcome.scores.extend(scores)
        outcome.skills = self.store.skills(symbol, self.models, self.edge)
        if outcome.skills:
            # One snapshot per evaluation: the predictor reads it in one request instead of
            # re-reading every model's window of calls before each prediction.
            self.store.save_skills(symbol, outcome.skills, at=now, expires_at=now + self.ttl_days * SECONDS_PER_DAY)
        return outcome
