"""Source ids -> source objects, and fetching them all in parallel.

A spec is a live source id (`coingecko`, `binance`, `binanceus`, `coinbase`, `kraken`) or
`replay:NAME=PATH` (a candle file served as source NAME; `btc-trader local invoke --replay`).
Adding a venue is one adapter class and one entry in LIVE_SOURCES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from btc_trader.adapters.price_sources.base import FetchedQuote, PriceSource, SourceError
from btc_trader.adapters.price_sources.binance import BinanceSource, binance_us
from btc_trader.adapters.price_sources.coinbase import CoinbaseSource
from btc_trader.adapters.price_sources.coingecko import CoinGeckoSource
from btc_trader.adapters.price_sources.kraken import KrakenSource
from btc_trader.adapters.price_sources.replay import ReplayPriceSource
from btc_trader.domain.prices import SourceRejection

REPLAY_PREFIX = "replay:"

LIVE_SOURCES: dict[str, Callable[[requests.Session, float], PriceSource]] = {
    "coingecko": CoinGeckoSource,
    "binance": BinanceSource,
    "binanceus": binance_us,
    "coinbase": CoinbaseSource,
    "kraken": KrakenSource,
}

# Called around each source fetch (the handler traces there); the default just calls it.
FetchHook = Callable[[str, Callable[[], FetchedQuote]], FetchedQuote]


def call_directly(name: str, fetch: Callable[[], FetchedQuote]) -> FetchedQuote:
    return fetch()


def replay_spec(name: str, path: str | Path) -> str:
    """The spec string for a replay source."""
    return f"{REPLAY_PREFIX}{name}={Path(path).resolve()}"


def build_sources(specs: Sequence[str], *, session: requests.Session, timeout_s: float) -> list[PriceSource]:
    """Instantiate the sources named by `specs`; raise ValueError naming any unknown one."""
    sources: list[PriceSource] = []
    for spec in specs:
        if spec.startswith(REPLAY_PREFIX):
            name, sep, path = spec[len(REPLAY_PREFIX):].partition("=")
            if not sep or not name or not path:
                raise ValueError(f"replay source must look like replay:NAME=PATH, got {spec!r}")
            sources.append(ReplayPriceSource(name, Path(path)))
        elif spec in LIVE_SOURCES:
            sources.append(LIVE_SOURCES[spec](session, timeout_s))
        else:
            raise ValueError(
                f"unknown price source {spec!r}: use one of {sorted(LIVE_SOURCES)} or replay:NAME=PATH"
            )
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"price source names must be unique, repeated: {duplicates}")
    return sources


def fetch_all(
    sources: Sequence[PriceSource], symbol: str, at: int, *, hook: FetchHook = call_directly
) -> tuple[list[FetchedQuote], list[SourceRejection]]:
    """Fetch every source in parallel; a failing source becomes a rejection, never an exception."""

    def one(source: PriceSource) -> FetchedQuote | SourceRejection:
        try:
            return hook(source.name, lambda: source.fetch(symbol, at))
        except SourceError as exc:
            return SourceRejection(source.name, exc.reason)
        except Exception as exc:  # a bug in one adapter must not take the other venues down
            return SourceRejection(source.name, f"unexpected {type(exc).__name__}: {exc}")

    if not sources:
        return [], []
    if len(sources) == 1:  # nothing to overlap: a thread would only add its start and join
        outcomes = [one(sources[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="price-source") as pool:
            outcomes = list(pool.map(one, sources))
    quotes = [o for o in outcomes if isinstance(o, FetchedQuote)]
    rejections = [o for o in outcomes if isinstance(o, SourceRejection)]
    return quotes, rejections
