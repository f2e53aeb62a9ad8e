"""Price sources: one small adapter per venue behind the PriceSource port."""

from btc_trader.adapters.price_sources.base import (
    FetchedQuote,
    PriceSource,
    SourceError,
    build_session,
)
from btc_trader.adapters.price_sources.registry import (
    LIVE_SOURCES,
    build_sources,
    fetch_all,
    replay_spec,
)

__all__ = [
    "LIVE_SOURCES",
    "FetchedQuote",
    "PriceSource",
    "SourceError",
    "build_session",
    "build_sources",
    "fetch_all",
    "replay_spec",
]
