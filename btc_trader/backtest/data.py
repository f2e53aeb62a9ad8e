"""Bars for backtests: the `../shared/data` candle format, validated, resampled, gaps marked.

Files are read by `btc_trader.adapters.candle_files.read_candles`, the reader the replay and
backfill paths use, so a file the backtest accepts is a file they accept, and the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btc_trader.adapters.candle_files import read_candles
from btc_trader.domain.candles import CANDLE_COLUMNS, CandleError

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14_400, "1d": 86_400}
COLUMNS = list(CANDLE_COLUMNS)


@dataclass(frozen=True)
class Bars:
    """Evenly spaced bars (open times, UTC epoch s); `gap_before[i]` = bars missing before bar i."""

    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    gap_before: np.ndarray
    bar_seconds: int

    def __len__(self) -> int:
        return len(self.close)


def load_bars(path: str | Path, interval: str | None = None, start: int | None = None,
              end: int | None = None) -> Bars:
    """Read and validate a candle file (the one reader, `read_candles`), then window and resample it."""
    candles = read_candles(path)
    path = Path(path)
    seconds = np.fromiter((c.timestamp for c in candles), dtype=np.int64, count=len(candles))
    values = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in candles], dtype=float)
    mask = np.ones(len(seconds), dtype=bool)
    if start is not None:
        mask &= seconds >= start
    if end is not None:
        mask &= seconds < end
    seconds, values = seconds[mask], values[mask]
    if len(seconds) < 2:
        raise CandleError(f"{path}: fewer than 2 bars in the requested window")
    native = int(np.median(np.diff(seconds)))
    if interval and interval not in INTERVALS:
        raise CandleError(f"--interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    bar = INTERVALS[interval] if interval else native
    if bar < native or bar % native:
        raise CandleError(f"{path}: cannot resample {native} s bars to {bar} s")
    if bar != native:
        bucket = seconds - seconds % bar
        edges = np.flatnonzero(np.diff(bucket)) + 1
        starts = np.concatenate(([0], edges))
        ends = np.concatenate((edges, [len(bucket)])) - 1
        seconds = bucket[starts]
        values = np.column_stack([
            values[starts, 0], np.maximum.reduceat(values[:, 1], starts), np.minimum.reduceat(values[:, 2], starts),
            values[ends, 3], np.add.reduceat(values[:, 4], starts),
        ])
    gap = np.concatenate(([0], np.diff(seconds) // bar - 1)).astype(np.int64)
    return Bars(seconds, values[:, 0], values[:, 1], values[:, 2], values[:, 3], values[:, 4], gap, bar)
