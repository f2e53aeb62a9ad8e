"""`custom`: the seed's technical model (SMA(20) vs SMA(50) trend, 10-bar momentum), with a
confidence that is measured, not fixed.

The seed returned confidence 0.7 whatever the market did, which could never pass its own 0.75
gate. Here confidence is a signal-to-noise ratio. With sigma the stdev of one-bar log returns
over the last VOL_WINDOW bars:

    trend      = SMA20 / SMA50 - 1                  (the seed's trend, as a fraction)
    trend_z    = |trend|    / (sigma * sqrt(SLOW))      how many random-walk "noise units" the
    momentum_z = |momentum| / (sigma * sqrt(MOMENTUM))  gap and the 10-bar move amount to
    confidence = 1 - exp(-(trend_z + momentum_z) / 2)   squashed into 0..1
    confidence /= 2 when trend and momentum point opposite ways

so a strong, consistent trend in a quiet market is confident and the same gap in a wild market
is not. Predicted move: the momentum's per-bar drift carried over the horizon, capped at
MAX_SIGMAS standard deviations of a random walk over that horizon (no model should promise
more than the noise allows).

Two variants compute the same numbers: `technical_signal` over the last SLOW + 1 bars (one
prediction), and `technical_forecasts` over a whole price array (every bar at once, for
backtests). A test proves them equal bar by bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from btc_trader.domain.prediction.model import (
    STABLE_BAND_PCT,
    ForecastError,
    HistoryNeededAlias,
    ModelForecast,
    PriceHistory,
)

FAST, SLOW, MOMENTUM = 20, 50, 10
VOL_WINDOW = 50
MAX_SIGMAS = 2.0
BARS_NEEDED = SLOW + 1  # SLOW prices for the slow SMA, and VOL_WINDOW returns need one more
_STD_CHUNK = 32_768  # bars per block of the vectorised volatility: ~13 MB of windows at a time
_MIN_VOL = 1e-9  # a perfectly flat series has no noise; avoid dividing by zero


@dataclass(frozen=True)
class TechnicalSignal:
    sma_fast: float
    sma_slow: float
    momentum: float  # fractional change over MOMENTUM bars
    volatility: float  # stdev of one-bar log returns
    predicted_return: float  # fractional move expected over the horizon
    confidence: float


def signal_from(
    sma_fast: float, sma_slow: float, momentum: float, volatility: float, horizon_bars: float
) -> tuple[float, float]:
    """(predicted fractional return, confidence) from the four measures (see module doc)."""
    vol = max(volatility, _MIN_VOL)
    trend = sma_fast / sma_slow - 1
    trend_z = abs(trend) / (vol * math.sqrt(SLOW))
    momentum_z = abs(momentum) / (vol * math.sqrt(MOMENTUM))
    confidence = 1 - math.exp(-(trend_z + momentum_z) / 2)
    if trend * momentum < 0:
        confidence /= 2
    cap = MAX_SIGMAS * vol * math.sqrt(horizon_bars)
    predicted = max(-cap, min(cap, momentum / MOMENTUM * horizon_bars))
    return predicted, confidence


def technical_signal(prices: np.ndarray, horizon_bars: float) -> TechnicalSignal:
    """The signal at the last bar of `prices`; reads only the last SLOW + 1 bars."""
    if len(prices) < BARS_NEEDED:
        raise InsufficientBars(len(prices))
    window = np.asarray(prices[-BARS_NEEDED:], dtype=float)
    sma_fast = float(window[-FAST:].mean())
    sma_slow = float(window[-SLOW:].mean())
    momentum = float(window[-1] / window[-1 - MOMENTUM] - 1)
    volatility = float(np.diff(np.log(window))[-VOL_WINDOW:].std())
    predicted, confidence = signal_from(sma_fast, sma_slow, momentum, volatility, horizon_bars)
    return TechnicalSignal(sma_fast, sma_slow, momentum, volatility, predicted, confidence)


class InsufficientBars(ForecastError):
    def __init__(self, have: int):
        super().__init__(f"custom: needs {BARS_NEEDED} bars, got {have}", "insufficient_history")


@dataclass(frozen=True)
class TechnicalForecasts:
    """Per-bar forecasts over a whole series; NaN (direction 0) before bar SLOW."""

    predicted_return: np.ndarray
    predicted_price: np.ndarray
    confidence: np.ndarray
    direction: np.ndarray  # int8: +1 up, -1 down, 0 stable (same band as `direction_of`)


def technical_forecasts(prices: np.ndarray, horizon_bars: float) -> TechnicalForecasts:
    """Vectorised over a whole series: the forecast at every bar, each using only bars up to it.

    Equal to `technical_signal` on every prefix (a test proves it); used by backtests.
    """
    p = np.asarray(prices, dtype=float)
    n = len(p)
    predicted = np.full(n, np.nan)
    confidence = np.full(n, np.nan)
    if n >= BARS_NEEDED:
        csum = np.concatenate(([0.0], np.cumsum(p)))
        idx = np.arange(SLOW, n)
        sma_fast = (csum[idx + 1] - csum[idx + 1 - FAST]) / FAST
        sma_slow = (csum[idx + 1] - csum[idx + 1 - SLOW]) / SLOW
        momentum = p[idx] / p[idx - MOMENTUM] - 1
        log_returns = np.diff(np.log(p))
        windows = np.lib.stride_tricks.sliding_window_view(log_returns, VOL_WINDOW)
        # Bar i's volatility uses the VOL_WINDOW returns ending at bar i (returns i-50 .. i-1).
        # In chunks: the windows are a view, but their std materialises rows x VOL_WINDOW floats.
        rows = idx - VOL_WINDOW
        volatility = np.empty(len(rows))
        for start in range(0, len(rows), _STD_CHUNK):
            chunk = rows[start:start + _STD_CHUNK]
            volatility[start:start + len(chunk)] = windows[chunk].std(axis=1)
        volatility = np.maximum(volatility, _MIN_VOL)
        trend = sma_fast / sma_slow - 1
        trend_z = np.abs(trend) / (volatility * math.sqrt(SLOW))
        momentum_z = np.abs(momentum) / (volatility * math.sqrt(MOMENTUM))
        conf = 1 - np.exp(-(trend_z + momentum_z) / 2)
        confidence[idx] = np.where(trend * momentum < 0, conf / 2, conf)
        cap = MAX_SIGMAS * volatility * math.sqrt(horizon_bars)
        predicted[idx] = np.clip(momentum / MOMENTUM * horizon_bars, -cap, cap)
    predicted_price = p * (1 + predicted)
    move_pct = (predicted_price / p - 1) * 100  # exactly as ModelForecast.move_pct computes it
    direction = np.zeros(n, dtype=np.int8)
    direction[move_pct > STABLE_BAND_PCT] = 1
    direction[move_pct < -STABLE_BAND_PCT] = -1
    return TechnicalForecasts(predicted, predicted_price, confidence, direction)


@dataclass
class TechnicalModel(HistoryNeededAlias):
    """The `custom` model: pure numpy over the last SLOW + 1 bars."""

    name: str = "custom"
    history_needed: int = BARS_NEEDED

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
        """Forecast `horizon_minutes` after the newest bar."""
        horizon_bars = horizon_minutes * 60 / history.bar_seconds
        signal = technical_signal(history.prices, horizon_bars)
        current = history.last_price
        return ModelForecast(
            model=self.name,
            predicted_price=current * (1 + signal.predicted_return),
            confidence=signal.confidence,
            current_price=current,
            detail={
                "sma_fast": signal.sma_fast,
                "sma_slow": signal.sma_slow,
                "momentum": signal.momentum,
                "volatility": signal.volatility,
            },
        )
