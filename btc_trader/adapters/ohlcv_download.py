"""Public OHLCV candles from any ccxt exchange, into the candle-file format the tools read.

`fetch_ohlcv` pages from `since` forward; ccxt's own rate limiter (`enableRateLimit`) spaces the
calls as the exchange asks, and a rate-limit answer (429/418, DDoS protection) is waited out a
bounded number of times. The bar still forming at the end is dropped: a candle file holds
closed bars only. No keys are used; nothing but public market data is requested.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ccxt

from btc_trader.adapters.candle_files import EXPECTED_COLUMNS
from btc_trader.domain.candles import Candle, CandleError, check_series

PAGE_LIMIT = 1000  # the most bars per call most exchanges allow (Binance: 1000, Coinbase: 300)
RATE_LIMIT_RETRIES = 3
# Exchanges that list BTC against a dollar stablecoin rather than USD.
USD_STANDS_IN = ("USDT", "USDC")


class DownloadError(RuntimeError):
    """The download cannot be done; the message says why and what to do."""


def build_exchange(exchange_id: str) -> Any:
    """A keyless ccxt client of `exchange_id`, spot markets only."""
    if exchange_id not in ccxt.exchanges:
        import difflib

        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise DownloadError(f"--exchange: ccxt has no exchange {exchange_id!r}{hint}")
    return getattr(ccxt, exchange_id)({
        "enableRateLimit": True,
        "timeout": 15_000,
        # Spot market lists only: no derivatives endpoints, no wallet endpoints needing keys.
        "options": {"defaultType": "spot", "fetchMarkets": ["spot"], "fetchCurrencies": False},
    })


def market_symbol(exchange: Any, symbol: str) -> str:
    """`BTC-USD` -> the exchange's unified market, falling back from USD to a stablecoin."""
    base, sep, quote = symbol.upper().partition("-")
    if not sep or not base or not quote:
        raise DownloadError(f"--symbol must look like BASE-QUOTE (BTC-USD), got {symbol!r}")
    candidates = [f"{base}/{quote}"] + ([f"{base}/{q}" for q in USD_STANDS_IN] if quote == "USD" else [])
    for candidate in candidates:
        if candidate in exchange.markets:
            return candidate
    raise DownloadError(f"{exchange.id} lists no market {' or '.join(candidates)}")


def download_candles(exchange_id: str, symbol: str, timeframe: str, start: int, end: int,
                     exchange: Any | None = None, progress: Callable[[int], None] | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> tuple[list[Candle], str]:
    """Closed bars with open time in [start, end) (UTC epoch s), and the market they came from."""
    exchange = exchange or build_exchange(exchange_id)
    try:
        exchange.load_markets()
        if not exchange.has.get("fetchOHLCV"):
            raise DownloadError(f"{exchange_id} offers no OHLCV candles through ccxt")
        if exchange.timeframes and timeframe not in exchange.timeframes:
            raise DownloadError(f"--timeframe {timeframe!r} is not offered by {exchange_id}; it offers "
                                f"{', '.join(exchange.timeframes)}")
        market = market_symbol(exchange, symbol)
        bar_ms = exchange.parse_timeframe(timeframe) * 1000
        rows = _paginate(exchange, market, timeframe, start * 1000, end * 1000, bar_ms, progress, sleep)
    except ccxt.NetworkError as exc:
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            raise DownloadError(f"{exchange_id} kept refusing with a rate limit ({type(exc).__name__}); "
                                "wait a minute and retry, or ask for fewer --days") from None
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise DownloadError(
            f"cannot reach {exchange_id} ({type(exc).__name__}{': ' + detail if detail else ''}). Are you "
            "offline? `data download` needs the network; offline, use a candle file you have (e.g. "
            "../shared/data) or `btc-trader data synthetic`. From the US, Binance answers 451: use --exchange "
            "binanceus") from None
    except ccxt.ExchangeError as exc:
        raise DownloadError(f"{exchange_id} refused the request: {exc}") from None
    now_ms = exchange.milliseconds()
    closed = [r for r in rows if r[0] + bar_ms <= min(end * 1000, now_ms)]
    if not closed:
        raise DownloadError(f"{exchange_id} returned no closed {timeframe} bars of {market} in the window")
    candles = [Candle(int(r[0] // 1000), *(float(v) for v in r[1:6])).validate(f"{exchange_id} bar {r[0]}")
               for r in closed]
    check_series(candles, f"{exchange_id} {market}")
    return candles, market


def _paginate(exchange: Any, market: str, timeframe: str, since: int, until: int, bar_ms: int,
              progress: Callable[[int], None] | None, sleep: Callable[[float], None]) -> list[list[Any]]:
    rows: dict[int, list[Any]] = {}
    retries = 0
    while since < until:
        try:
            page = exchange.fetch_ohlcv(market, timeframe, since=since, limit=PAGE_LIMIT)
        except (ccxt.DDoSProtection, ccxt.RateLimitExceeded):
            retries += 1
            if retries > RATE_LIMIT_RETRIES:
                raise
            sleep(min(60.0, 2.0 ** retries))  # the limiter already spaces calls: this is a real refusal
            continue
        retries = 0
        fresh = [r for r in page if since <= r[0] < until and r[0] not in rows]
        for row in fresh:
            rows[row[0]] = row
        if not fresh:
            break  # the exchange has nothing newer (or ignores `since` and repeats itself)
        since = max(r[0] for r in fresh) + bar_ms
        if progress:
            progress(len(rows))
    return [rows[k] for k in sorted(rows)]


def write_candle_file(path: Path, candles: list[Candle]) -> Path:
    """Write `timestamp,open,high,low,close,volume` (ISO-8601 UTC), gzipped for a .gz name."""
    if not candles:
        raise CandleError(f"{path}: no candles to write")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPECTED_COLUMNS)
    for c in candles:
        stamp = datetime.fromtimestamp(c.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow([stamp, repr(c.open), repr(c.high), repr(c.low), repr(c.close), repr(c.volume)])
    path.parent.mkdir(parents=True, exist_ok=True)
    data = buffer.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path
