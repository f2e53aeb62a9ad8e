"""`custom`: the seed's technical model (SMA(20) vs SMA(50) trend, 10-bar momentum), with a
confidence that is measured, not fixed.

The seed returned confidence 0.7 whatever the market did, which could never pass its own 0.75
gate. Here confidence is a signal-to-noise ratio: the trend gap and the momentum, each divided
by the noise a random walk would show over the same span (per-bar volatility x sqrt(bars)),
squashed into 0..1 with 1 - exp(-z). It is halved when trend and momentum disagree. A strong,
consistent trend in a quiet market is confident; the same gap in a wild market is not.

Predicted move: the momentum's per-bar drift carried over the horizon, capped at two standard
deviations of a random walk over that horizon (no model should promise more than the noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from btc_trader.domain.prediction.model import ForecastError, ModelForecast, PriceHistory

FAST, SLOW, MOMENTUM = 20, 50, 10
VOL_WINDOW = 50
MAX_SIGMAS = 2.0


@dataclass(frozen=True)
class TechnicalSignal:
    sma_fast: float
    sma_slow: float
    momentum: float  # fractional change over MOMENTUM bars
    volatility: float  # stdev of one-bar log returns
    predicted_return: float
    confidence: float


def signal_from(
    sma_fast: float, sma_slow: float, momentum: float, volatility: float, horizon_bars: float
) -> tuple[float, float]:
    """(predicted fractional return, confidence) from the four measures. Scalar version."""
    vol = max(volatility, 1e-9)
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
    """The signal at the last bar of `prices` (needs SLOW + 1 bars)."""
    if len(prices) < SLOW + 1:
        raise ForecastError(f"custom: needs {SLOW + 1} bars, got {len(prices)}")
    window = prices[-(SLOW + 1):].astype(float)
    sma_fast = float(window[-FAST:].mean())
    sma_slow = float(window[-SLOW:].mean())
    momentum = float(window[-1] / window[-1 - MOMENTUM] - 1)
    volatility = float(np.diff(np.log(window))[-VOL_WINDOW:].std())
    predicted, confidence = signal_from(sma_fast, sma_slow, momentum, volatility, horizon_bars)
    return TechnicalSignal(sma_fast, sma_slow, momentum, volatility, predicted, confidence)


def technical_signals(prices: np.ndarray, horizon_bars: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised over a whole series: (predicted returns, confidences) per bar; NaN before
    bar SLOW. Equal to `technical_signal` on every prefix (a test proves it); used by backtests."""
    p = prices.astype(float)
    n = len(p)
    predicted = np.full(n, np.nan)
    confidence = np.full(n, np.nan)
    if n < SLOW + 1:
        return predicted, confidence
    csum = np.concatenate(([0.0], np.cumsum(p)))
    idx = np.arange(SLOW, n)
    sma_fast = (csum[idx + 1] - csum[idx + 1 - FAST]) / FAST
    sma_slow = (csum[idx + 1] - csum[idx + 1 - SLOW]) / SLOW
    momentum = p[idx] / p[idx - MOMENTUM] - 1
    log_returns = np.diff(np.log(p))
    windows = np.lib.stride_tricks.sliding_window_view(log_returns, VOL_WINDOW)
    # Bar i's volatility uses the VOL_WINDOW returns ending at bar i.
    volatility = np.maximum(windows[idx - VOL_WINDOW].std(axis=1), 1e-9)
    trend = sma_fast / sma_slow - 1
    trend_z = np.abs(trend) / (volatility * math.sqrt(SLOW))
    momentum_z = np.abs(momentum) / (volatility * math.sqrt(MOMENTUM))
    conf = 1 - np.exp(-(trend_z + momentum_z) / 2)
    conf = np.where(trend * momentum < 0, conf / 2, conf)
    cap = MAX_SIGMAS * volatility * math.sqrt(horizon_bars)
    predicted[idx] = np.clip(momentum / MOMENTUM * horizon_bars, -cap, cap)
    confidence[idx] = conf
    return predicted, confidence


@dataclass
class TechnicalModel:
    """The `custom` model: pure numpy over the last SLOW + 1 bars."""

    name: str = "custom"
    history_bars: int = SLOW + 1

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
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
