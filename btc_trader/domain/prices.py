"""Aggregating quotes from several venues into one trustworthy price.

Pure: every time is passed in. A venue's quote is checked on its own (finite, positive, fresh),
then against the others: the median of the valid quotes is the reference, quotes further than
`max_divergence_bps` from it are outliers (a de-pegged stablecoin pair, a frozen venue), and the
stored price is the median of what remains. Every rejected source keeps its reason.

Plausibility is always relative, never a hard-coded asset price: a quote is judged against
the other venues (the median) and, when the store has one, against the last stored price of
the symbol (a quote that is a multiple of it, up or down, is a broken feed, not a market move).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Exchange clocks and ours disagree a little; anything further in the future is a bad timestamp.
MAX_CLOCK_SKEW_S = 120
# What a DynamoDB number can hold (1E-130 .. 9.99E+125): a price outside can never be stored.
MIN_STORABLE_PRICE = 1e-130
MAX_STORABLE_PRICE = 9.9e125
# A quote more than this factor away from the last stored price (within the window) is not a
# market move: the worst crashes of BTC (-50 % in March 2020) took more than a day.
MAX_JUMP_FACTOR = 2.0
LAST_PRICE_WINDOW_S = 86_400


@dataclass(frozen=True, slots=True)
class StoredPrice:
    """The last price the store holds for a symbol before a collection, and when it was taken."""

    price: float
    timestamp: int


@dataclass(frozen=True, slots=True)
class SourceQuote:
    """One venue's last price for a symbol, as it reported it."""

    source: str
    symbol: str
    price: float
    observed_at: int  # UTC epoch seconds of the venue's own timestamp
    volume_24h: float | None = None
    change_24h_pct: float | None = None


@dataclass(frozen=True, slots=True)
class SourceRejection:
    """A source that gave no usable quote, and why."""

    source: str
    reason: str


class InsufficientSourcesError(RuntimeError):
    """Too few valid sources to trust a price; nothing may be stored as if it were good."""

    def __init__(self, symbol: str, have: int, need: int, rejected: Mapping[str, str]):
        self.symbol = symbol
        self.have = have
        self.need = need
        self.rejected = dict(rejected)
        detail = "; ".join(f"{source}: {reason}" for source, reason in sorted(self.rejected.items()))
        super().__init__(
            f"{symbol}: {have} valid price source(s), at least {need} required"
            + (f" (rejected: {detail})" if detail else "")
        )


@dataclass(frozen=True)
class PriceSnapshot:
    """The aggregated price of a symbol at one collection time, with its evidence."""

    symbol: str
    timestamp: int
    price: float
    source_prices: dict[str, float]
    sources_used: tuple[str, ...]
    sources_rejected: dict[str, str]
    divergence_bps: float
    spread_bps: float
    volume_24h: float | None = None
    change_24h_pct: float | None = None
    quote_times: dict[str, int] = field(default_factory=dict)


def bps_from(value: float, reference: float) -> float:
    """Signed distance of `value` from `reference` in basis points."""
    return (value - reference) / reference * 10_000


def check_quote(quote: SourceQuote, *, at: int, max_staleness_s: int) -> str | None:
    """Why a quote is unusable on its own, or None when it is fine."""
    if isinstance(quote.price, bool) or not isinstance(quote.price, float | int):
        return f"price is not a number ({quote.price!r})"
    try:
        finite = math.isfinite(quote.price)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        return f"price is not a finite number ({quote.price!r:.40})"
    if quote.price <= 0:
        return f"price must be positive, got {quote.price}"
    if not MIN_STORABLE_PRICE <= quote.price <= MAX_STORABLE_PRICE:
        return f"price {quote.price!r} is outside what can be stored"
    if quote.volume_24h is not None and not (math.isfinite(quote.volume_24h) and quote.volume_24h >= 0):
        return f"24 h volume must be finite and not negative, got {quote.volume_24h!r}"
    if quote.change_24h_pct is not None and not (
        math.isfinite(quote.change_24h_pct) and quote.change_24h_pct >= -100
    ):
        return f"24 h change must be finite and at least -100 %, got {quote.change_24h_pct!r}"
    age = at - quote.observed_at
    if age > max_staleness_s:
        return f"stale: quote is {age} s old (limit {max_staleness_s} s)"
    if age < -MAX_CLOCK_SKEW_S:
        return f"timestamp {-age} s in the future (clock skew limit {MAX_CLOCK_SKEW_S} s)"
    return None


def check_against_last(quote: SourceQuote, last: StoredPrice | None, *, at: int) -> str | None:
    """Why a quote is implausible next to the last stored price, or None (also with no last)."""
    if last is None or not 0 <= at - last.timestamp <= LAST_PRICE_WINDOW_S or last.price <= 0:
        return None
    ratio = quote.price / last.price
    if ratio > MAX_JUMP_FACTOR or ratio < 1 / MAX_JUMP_FACTOR:
        return (
            f"implausible: {ratio:.3g}x the last stored price {last.price:.8g} "
            f"({at - last.timestamp} s earlier; limit {MAX_JUMP_FACTOR:g}x either way)"
        )
    return None


def aggregate_quotes(
    quotes: Iterable[SourceQuote],
    rejections: Iterable[SourceRejection] = (),
    *,
    symbol: str,
    at: int,
    max_divergence_bps: float,
    max_staleness_s: int,
    min_sources: int,
    last: StoredPrice | None = None,
) -> PriceSnapshot:
    """Median of the valid, non-outlier quotes; raises InsufficientSourcesError below min_sources.

    `last` is the newest stored price before `at` (when the store has one); quotes a multiple
    away from it are rejected before the median is taken.
    """
    rejected: dict[str, str] = {r.source: r.reason for r in rejections}
    valid: list[SourceQuote] = []
    for quote in quotes:
        if quote.symbol != symbol:
            rejected[quote.source] = f"quote is for {quote.symbol}, expected {symbol}"
            continue
        problem = check_quote(quote, at=at, max_staleness_s=max_staleness_s) or check_against_last(
            quote, last, at=at
        )
        if problem:
            rejected[quote.source] = problem
        else:
            valid.append(quote)

    if len(valid) < min_sources:
        raise InsufficientSourcesError(symbol, len(valid), min_sources, rejected)

    reference = statistics.median(q.price for q in valid)
    used: list[SourceQuote] = []
    for quote in valid:
        distance = bps_from(quote.price, reference)
        if abs(distance) > max_divergence_bps:
            rejected[quote.source] = (
                f"outlier: {distance:+.0f} bps from the median {reference:.2f} "
                f"(limit {max_divergence_bps:.0f} bps)"
            )
        else:
            used.append(quote)

    if len(used) < min_sources:
        raise InsufficientSourcesError(symbol, len(used), min_sources, rejected)

    prices = [q.price for q in used]
    price = statistics.median(prices)
    volumes = [q.volume_24h for q in used if q.volume_24h is not None]
    changes = [q.change_24h_pct for q in used if q.change_24h_pct is not None]
    return PriceSnapshot(
        symbol=symbol,
        timestamp=at,
        price=price,
        source_prices={q.source: q.price for q in valid},
        sources_used=tuple(sorted(q.source for q in used)),
        sources_rejected=dict(sorted(rejected.items())),
        divergence_bps=max(abs(bps_from(p, price)) for p in prices),
        spread_bps=(max(prices) - min(prices)) / price * 10_000,
        # Venues quote 24 h volume in different units and windows; the median is a robust summary.
        volume_24h=statistics.median(volumes) if volumes else None,
        change_24h_pct=statistics.median(changes) if changes else None,
        quote_times={q.source: q.observed_at for q in valid},
    )


def collection_time(event_time: int) -> int:
    """The collection slot of an event: its time floored to the minute (epoch seconds).

    A re-delivered scheduled event carries the same time, so it maps to the same slot and the
    store's conditional write turns it into a no-op.
    """
    return event_time - event_time % 60
