"""OHLCV bars: the unit of price history across backfill, replay and backtests.

The candle-file rules live here, once, for every reader (the backtest loader, the replay and
backfill reader): the header is exactly `timestamp,open,high,low,close,volume` (any case), a row
has exactly six fields, numbers are plain decimals (no thousands separators, no NaN or
infinity), a timestamp is ISO-8601 (a zone-less one is UTC, as is a bare date) or epoch
seconds (values past year 5138 are taken as milliseconds) between 1970 and 2100, prices are
positive, volume is not negative, high and low bracket open and close, and bars strictly
increase in time. Standard library only: the collector's Lambda bundle replays files with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# An epoch value above this is in milliseconds: as seconds it would be after the year 5138.
EPOCH_MS_FROM = 100_000_000_000
# Epoch seconds are the storage unit everywhere: before 1970 is impossible, after 2100 a typo
# (candle files, venue times, handler events and the command line share this bound).
MAX_EPOCH_S = 4_102_444_800  # 2100-01-01


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


def check_header(fields: Sequence[str], where: str) -> None:
    """Raise CandleError unless the header is exactly the six candle columns (any case, any padding)."""
    names = tuple(field.strip().lower() for field in fields)
    if names != CANDLE_COLUMNS:
        shown = ",".join(fields)[:120] or "nothing"
        raise CandleError(f"{where}: expected columns {','.join(CANDLE_COLUMNS)}, got {shown}")


def parse_candle_timestamp(text: str) -> int:
    """Epoch seconds from ISO-8601 (zone-less = UTC) or epoch seconds/milliseconds; ValueError if not."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        value = int(text)
        seconds = value // 1000 if value >= EPOCH_MS_FROM else value
    else:
        if not text.isascii() or len(text) > 40:
            raise ValueError(f"unreadable timestamp {text[:40]!r}")
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
        if seconds != int(seconds):
            raise ValueError(f"timestamp {text!r} is not on a whole second")
        seconds = int(seconds)
    if not 0 <= seconds < MAX_EPOCH_S:
        raise ValueError(f"timestamp {text[:40]!r} is not between 1970 and 2100")
    return seconds


def _decimal(text: str, column: str) -> float:
    # float() also reads "1_000", "NaN", "inf" and non-ASCII digits; a candle file means none of them.
    if "_" in text or not text.isascii():
        raise ValueError(f"{column} {text[:40]!r} is not a plain decimal number")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {text[:40]!r} is not a number (no thousands separators)") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} {text[:40]!r} is not finite")
    return value


def candle_from_fields(fields: Sequence[str], where: str) -> Candle:
    """One validated bar from a row's six text fields; CandleError names `where` and the rule."""
    if len(fields) != len(CANDLE_COLUMNS):
        raise CandleError(f"{where}: unreadable row: expected {len(CANDLE_COLUMNS)} fields, got {len(fields)}: {list(fields)[:8]!r:.120}")
    # Fast path for the common, valid row (files hold tens of thousands); any doubt takes the
    # field-by-field path below, which names the problem. `0 < x < inf` is False for NaN too.
    numbers = "".join(fields[1:])
    if "_" not in numbers and numbers.isascii():
        try:
            timestamp = parse_candle_timestamp(fields[0])
            o, h, low, c, v = (float(f) for f in fields[1:])
        except (ValueError, OverflowError):
            pass
        else:
            if (0 < low <= min(o, c) and max(o, c) <= h < math.inf and 0 <= v < math.inf):
                return Candle(timestamp, o, h, low, c, v)
    try:
        candle = Candle(
            parse_candle_timestamp(fields[0]), _decimal(fields[1], "open"), _decimal(fields[2], "high"),
            _decimal(fields[3], "low"), _decimal(fields[4], "close"), _decimal(fields[5], "volume"),
        )
    except (ValueError, OverflowError) as exc:
        raise CandleError(f"{where}: {exc}") from None
    return candle.validate(where)


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
