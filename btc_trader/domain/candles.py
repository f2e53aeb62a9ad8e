"""OHLCV bars: the unit of price history across backfill, replay and backtests."""

from __future__ import annotations

import math
from dataclasses import dataclass


class CandleError(ValueError):
    """A bar or a series of bars breaks an invariant; the message says which and where."""


@dataclass(frozen=True, slots=True)
class Candle:
    """One bar. `timestamp` is the bar's open time in UTC epoch seconds; volume is base units."""

    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def validate(self, where: str = "") -> Candle:
        """Return self, or raise CandleError naming the broken rule."""
        prices = (self.open, self.high, self.low, self.close)
        at = f"{where}: " if where else ""
        if not all(math.isfinite(p) and p > 0 for p in prices):
            raise CandleError(f"{at}prices must be finite and positive, got {prices}")
        if not (math.isfinite(self.volume) and self.volume >= 0):
            raise CandleError(f"{at}volume must be finite and >= 0, got {self.volume}")
        if self.high < max(self.open, self.close) or self.low > min(self.open, self.close):
            raise CandleError(f"{at}high/low do not bracket open/close: {prices}")
        return self


def check_series(candles: list[Candle], source: str = "series") -> None:
    """Raise CandleError unless timestamps strictly increase (sorted, no duplicates)."""
    for previous, current in zip(candles, candles[1:], strict=False):
        if current.timestamp == previous.timestamp:
            raise CandleError(f"{source}: duplicate bar at timestamp {current.timestamp}")
        if current.timestamp < previous.timestamp:
            raise CandleError(
                f"{source}: rows are not sorted by time ({current.timestamp} after {previous.timestamp})"
            )


def latest_at_or_before(candles: list[Candle], at: int) -> Candle | None:
    """The newest bar whose open time is at or before `at` (binary search; candles sorted)."""
    lo, hi = 0, len(candles)
    while lo < hi:
        mid = (lo + hi) // 2
        if candles[mid].timestamp <= at:
            lo = mid + 1
        else:
            hi = mid
    return candles[lo - 1] if lo else None
