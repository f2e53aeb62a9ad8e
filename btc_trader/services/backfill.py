"""Use case: load history into the prices table so a new deployment can decide at once."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from btc_trader.domain.candles import Candle, check_series

SECONDS_PER_DAY = 86_400


def bar_length(candles: Sequence[Candle]) -> int:
    """The series' bar length in seconds (median spacing of its first bars)."""
    gaps = [b.timestamp - a.timestamp for a, b in zip(candles[:200], candles[1:201], strict=False)]
    return int(statistics.median(gaps)) if gaps else 60


class CandleStore(Protocol):
    def save_candles(
        self,
        symbol: str,
        candles: Sequence[Candle],
        *,
        source: str,
        bar_seconds: int = 60,
        expires_at_for: Callable[[int], int] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> int: ...


@dataclass(frozen=True)
class BackfillResult:
    symbol: str
    source: str
    bars: int  # written; bars whose slot held a collected price are skipped
    first: int | None
    last: int | None


def backfill(
    store: CandleStore,
    symbol: str,
    candles: Iterable[Candle],
    *,
    source: str,
    bar_seconds: int,
    retention_days: int,
    now: int,
    on_progress: Callable[[int], None] | None = None,
) -> BackfillResult:
    """Write bars; each expires `retention_days` after it was loaded (`now`).

    Expiring from the load time, not the bar's own time, keeps replayed history (e.g. March
    2023 candles loaded today) instead of having DynamoDB delete it on arrival.
    """
    expires_at = now + retention_days * SECONDS_PER_DAY
    bars = list(candles)
    check_series(bars, f"{source} ({symbol})")
    written = store.save_candles(
        symbol, bars, source=source, bar_seconds=bar_seconds,
        expires_at_for=lambda _t: expires_at, on_progress=on_progress,
    )
    return BackfillResult(
        symbol=symbol,
        source=source,
        bars=written,
        first=bars[0].timestamp if bars else None,
        last=bars[-1].timestamp if bars else None,
    )
