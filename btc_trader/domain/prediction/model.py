"""The port every model implements and the values that cross it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

Direction = Literal["up", "down", "stable"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "stable")

# A predicted move smaller than this (in %) is "stable": below fees and noise.
STABLE_BAND_PCT = 0.05
# The one bound on a forecast's move, shared by every model: a forecast further than this from
# the current price is not believed, whichever model says it (a hallucinating LLM, a Chronos
# endpoint fed garbage, a technical model on a broken history).
MAX_MOVE_PCT = 10.0


class ForecastError(ValueError):
    """A model produced no usable forecast; the message is the reason recorded.

    `code` is a short, stable label of the failure kind (for metrics and tests), the message
    says what exactly was wrong.
    """

    def __init__(self, message: str, code: str = "forecast_error"):
        self.code = code
        super().__init__(message)


class InsufficientHistoryError(ForecastError):
    """Too little price history for the models that are enabled."""

    def __init__(self, have: int, need: int, detail: str = ""):
        self.have, self.need = have, need
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"insufficient_history: {have} bars, {need} needed{suffix}", "insufficient_history")


@dataclass(frozen=True)
class PriceHistory:
    """Evenly spaced bars, oldest first (newest last): `prices[i]` is the price at `timestamps[i]`.

    Timestamps are bar times in epoch seconds. `newest_price_time` is when the newest price was
    actually observed (a bar closing at 12:00 may hold a price collected at 11:58); it defaults
    to the last bar's time. `price_age_s` in the prediction contract is measured from it.
    """

    timestamps: np.ndarray
    prices: np.ndarray
    bar_seconds: int
    symbol: str = ""
    newest_price_time: int | None = None

    def __post_init__(self) -> None:
        if self.bar_seconds <= 0:
            raise ValueError(f"bar_seconds must be positive, got {self.bar_seconds}")
        if np.ndim(self.timestamps) != 1 or np.ndim(self.prices) != 1:
            raise ValueError("timestamps and prices must be one-dimensional arrays")
        if len(self.timestamps) != len(self.prices):
            raise ValueError(f"timestamps ({len(self.timestamps)}) and prices ({len(self.prices)}) differ in length")
        if len(self.prices) and not (np.all(np.isfinite(self.prices)) and np.all(self.prices > 0)):
            raise ValueError("prices must be finite and positive")
        if len(self.timestamps) > 1 and not np.all(np.diff(self.timestamps) > 0):
            raise ValueError("timestamps must be strictly increasing (oldest first)")

    def __len__(self) -> int:
        return len(self.prices)

    @property
    def last_price(self) -> float:
        return float(self.prices[-1])

    @property
    def last_time(self) -> int:
        """Time of the newest bar."""
        return int(self.timestamps[-1])

    @property
    def price_time(self) -> int:
        """When the newest price was observed."""
        return self.last_time if self.newest_price_time is None else self.newest_price_time

    def tail(self, bars: int) -> PriceHistory:
        """The newest `bars` bars (all of them when there are fewer)."""
        if bars <= 0:
            raise ValueError(f"bars must be positive, got {bars}")
        return PriceHistory(
            self.timestamps[-bars:], self.prices[-bars:], self.bar_seconds, self.symbol, self.newest_price_time
        )


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
            raise ForecastError(
                f"{self.model}: predicted price must be finite and positive, got {self.predicted_price}", "invalid_price"
            )
        if not (math.isfinite(self.current_price) and self.current_price > 0):
            raise ForecastError(
                f"{self.model}: current price must be finite and positive, got {self.current_price}", "invalid_price"
            )
        if not (math.isfinite(self.confidence) and 0 <= self.confidence <= 1):
            raise ForecastError(f"{self.model}: confidence must be in 0..1, got {self.confidence}", "invalid_confidence")
        check_move(self.model, self.predicted_price, self.current_price)

    @property
    def move_pct(self) -> float:
        return (self.predicted_price / self.current_price - 1) * 100

    @property
    def direction(self) -> Direction:
        return direction_of(self.move_pct)


def check_move(model: str, predicted_price: float, current_price: float, max_move_pct: float = MAX_MOVE_PCT) -> float:
    """The predicted move in %, or ForecastError("implausible_move") beyond the shared bound."""
    move = (predicted_price / current_price - 1) * 100
    if not abs(move) <= min(max_move_pct, MAX_MOVE_PCT):
        raise ForecastError(
            f"{model}: predicted move {move:+.2f}% exceeds the sane bound of ±{min(max_move_pct, MAX_MOVE_PCT):g}%",
            "implausible_move",
        )
    return move


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

    @property
    def history_needed(self) -> int:
        """How many bars `predict` needs (the history loader reads the largest of these)."""
        ...

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
        """A forecast, or raise ForecastError with the reason."""
        ...


class HistoryNeededAlias:
    """Mixin: `history_bars`, the name the prediction service used before `history_needed`."""

    @property
    def history_bars(self) -> int:
        return self.history_needed  # type: ignore[attr-defined]
