"""The port every model implements and the values that cross it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

Direction = Literal["up", "down", "stable"]

# A predicted move smaller than this (in %) is "stable": below fees and noise.
STABLE_BAND_PCT = 0.05


class ForecastError(ValueError):
    """A model produced no usable forecast; the message is the reason recorded."""


class InsufficientHistoryError(ForecastError):
    """Too little price history for the models that are enabled."""

    def __init__(self, have: int, need: int, detail: str = ""):
        self.have, self.need = have, need
        super().__init__(f"insufficient_history: {have} bars, {need} needed{f' ({detail})' if detail else ''}")


@dataclass(frozen=True)
class PriceHistory:
    """Evenly spaced bars, oldest first: `prices[i]` is the price at `timestamps[i]` (epoch s)."""

    timestamps: np.ndarray
    prices: np.ndarray
    bar_seconds: int
    symbol: str = ""

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.prices):
            raise ValueError("timestamps and prices differ in length")

    def __len__(self) -> int:
        return len(self.prices)

    @property
    def last_price(self) -> float:
        return float(self.prices[-1])

    @property
    def last_time(self) -> int:
        return int(self.timestamps[-1])

    def tail(self, bars: int) -> PriceHistory:
        return PriceHistory(self.timestamps[-bars:], self.prices[-bars:], self.bar_seconds, self.symbol)


@dataclass(frozen=True)
class HistorySlice:
    """Bars for the models, plus what the newest stored price says about itself."""

    history: PriceHistory
    newest_time: int
    newest_divergence_bps: float | None  # venue disagreement at the newest collection


@dataclass(frozen=True)
class ModelForecast:
    """One model's view of the price `horizon_minutes` after the last bar."""

    model: str
    predicted_price: float
    confidence: float
    current_price: float
    detail: dict[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.predicted_price) and self.predicted_price > 0):
            raise ForecastError(f"{self.model}: predicted price must be finite and positive, got {self.predicted_price}")
        if not (math.isfinite(self.confidence) and 0 <= self.confidence <= 1):
            raise ForecastError(f"{self.model}: confidence must be in 0..1, got {self.confidence}")

    @property
    def move_pct(self) -> float:
        return (self.predicted_price / self.current_price - 1) * 100

    @property
    def direction(self) -> Direction:
        return direction_of(self.move_pct)


def direction_of(move_pct: float) -> Direction:
    """up / down beyond the stable band, else stable."""
    if move_pct > STABLE_BAND_PCT:
        return "up"
    if move_pct < -STABLE_BAND_PCT:
        return "down"
    return "stable"


class PricePredictor(Protocol):
    """Port: a model that forecasts the price some minutes ahead from recent bars."""

    name: str
    history_bars: int  # how many bars it needs

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
        """A forecast, or raise ForecastError with the reason."""
        ...
