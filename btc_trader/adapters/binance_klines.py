"""Historical candles from Binance's public klines endpoint (Binance and Binance.US).

Rows are 12-element arrays: [open time ms, open, high, low, close, volume, close time ms, ...]
with prices as strings, oldest first, at most 1000 per call; paging is by startTime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests

from btc_trader.adapters.price_sources.base import SourceError, get_json
from btc_trader.domain.candles import Candle, CandleError

MAX_LIMIT = 1000
INTERVAL_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
HOSTS = {"binance": "https://api.binance.com", "binanceus": "https://api.binance.us"}
QUOTE_ALIASES = {"binance": {"USD": "USDT"}, "binanceus": {}}


@dataclass
class BinanceKlinesClient:
    session: requests.Session
    exchange: str = "binance"
    timeout_s: float = 10
    quote_aliases: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.exchange not in HOSTS:
            raise ValueError(f"exchange must be one of {sorted(HOSTS)}, got {self.exchange!r}")
        self.quote_aliases = self.quote_aliases or QUOTE_ALIASES[self.exchange]

    def pair(self, symbol: str) -> str:
        base, _, quote = symbol.partition("-")
        return base + self.quote_aliases.get(quote, quote)

    def candles(
        self,
        symbol: str,
        start: int,
        end: int,
        interval: str = "1m",
        on_page: Callable[[int], None] | None = None,
    ) -> Iterator[Candle]:
        """Closed bars with open time in [start, end), oldest first (epoch seconds)."""
        if interval not in INTERVAL_SECONDS:
            raise ValueError(f"interval must be one of {sorted(INTERVAL_SECONDS)}, got {interval!r}")
        step = INTERVAL_SECONDS[interval]
        cursor = start
        url = f"{HOSTS[self.exchange]}/api/v3/klines"
        while cursor < end:
            rows = get_json(
                self.session, self.exchange, url,
                params={
                    "symbol": self.pair(symbol), "interval": interval,
                    "startTime": str(cursor * 1000), "endTime": str(end * 1000 - 1),
                    "limit": str(MAX_LIMIT),
                },
                timeout_s=self.timeout_s,
                fatal_statuses={451: "HTTP 451: Binance refuses this location; use --exchange binanceus"},
            )
            if not isinstance(rows, list):
                raise SourceError(self.exchange, f"klines: expected a list, got {str(rows)[:120]}")
            if not rows:
                return
            last_open = cursor
            for row in rows:
                candle = _candle(self.exchange, row)
                if candle.timestamp >= end:
                    return
                last_open = candle.timestamp
                yield candle
            if on_page:
                on_page(len(rows))
            cursor = last_open + step
            if len(rows) < MAX_LIMIT:
                return


def _candle(source: str, row: object) -> Candle:
    if not isinstance(row, list) or len(row) < 6:
        raise SourceError(source, f"klines: malformed row {row!r:.120}")
    try:
        candle = Candle(int(row[0]) // 1000, *(float(value) for value in row[1:6]))
        return candle.validate(f"{source} kline at {row[0]}")
    except (TypeError, ValueError, CandleError) as exc:
        raise SourceError(source, f"klines: bad row {row!r:.120} ({exc})") from None
