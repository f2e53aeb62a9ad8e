"""Bars for backtests: the `../shared/data` candle format, validated, resampled, gaps marked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from btc_trader.domain.candles import CandleError

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14_400, "1d": 86_400}
COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


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
    """Read, validate (sorted, unique, positive) and resample a candle file."""
    path = Path(path)
    if not path.is_file():
        raise CandleError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise CandleError(f"{path}: cannot read CSV ({exc})") from None
    if list(frame.columns[:6]) != COLUMNS:
        raise CandleError(f"{path}: expected columns {','.join(COLUMNS)}, got {','.join(map(str, frame.columns))}")
    column = frame["timestamp"]
    # ISO-8601 as in ../shared/data, or epoch seconds (as `read_candles` also accepts).
    if pd.api.types.is_numeric_dtype(column):
        times = pd.to_datetime(column, unit="s", utc=True, errors="coerce")
    else:
        times = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    if times.isna().any():
        row = int(times.isna().to_numpy().argmax()) + 2
        raise CandleError(f"{path}:{row}: unreadable timestamp {frame['timestamp'].iloc[row - 2]!r}")
    seconds = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy().astype(np.int64)
    values = frame[COLUMNS[1:]].to_numpy(dtype=float)
    steps = np.diff(seconds)
    if (steps < 0).any():
        row = int(np.argmax(steps < 0)) + 3
        raise CandleError(f"{path}:{row}: rows are not sorted by time")
    if (steps == 0).any():
        row = int(np.argmax(steps == 0)) + 3
        raise CandleError(f"{path}:{row}: duplicate bar at {frame['timestamp'].iloc[row - 2]}")
    bad = ~np.isfinite(values[:, :4]).all(axis=1) | (values[:, :4] <= 0).any(axis=1)
    if bad.any():
        row = int(np.argmax(bad)) + 2
        raise CandleError(f"{path}:{row}: prices must be finite and positive, got {values[row - 2, :4].tolist()}")
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
