"""A price source that replays a candle file: reproducible, offline collection runs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from btc_trader.adapters.candle_files import read_candles
from btc_trader.adapters.price_sources.base import FetchedQuote, SourceError
from btc_trader.domain.candles import Candle, CandleError, latest_at_or_before
from btc_trader.domain.prices import SourceQuote


@lru_cache(maxsize=16)
def _load(path: str) -> tuple[list[Candle], int]:
    candles = read_candles(path)
    gaps = [b.timestamp - a.timestamp for a, b in zip(candles[:200], candles[1:201], strict=False)]
    bar_seconds = int(statistics.median(gaps)) if gaps else 60
    return candles, bar_seconds


@dataclass
class ReplayPriceSource:
    """Serves the close of the newest bar that had closed by `at` (no look-ahead)."""

    name: str
    path: Path

    def fetch(self, symbol: str, at: int) -> FetchedQuote:
        try:
            candles, bar_seconds = _load(str(self.path))
        except CandleError as exc:
            raise SourceError(self.name, f"replay file unusable: {exc}") from None
        bar = latest_at_or_before(candles, at - bar_seconds)
        if bar is None:
            raise SourceError(self.name, f"replay file {self.path.name} has no bar closed by {at}")
        return FetchedQuote(
            SourceQuote(
                source=self.name,
                symbol=symbol,
                price=bar.close,
                observed_at=bar.timestamp + bar_seconds,
            ),
            raw={
                "replay_file": self.path.name,
                "bar": {
                    "timestamp": bar.timestamp, "open": bar.open, "high": bar.high,
                    "low": bar.low, "close": bar.close, "volume": bar.volume,
                },
            },
        )
