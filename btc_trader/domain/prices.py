"""Aggregating quotes from several venues into one trustworthy price.

Pure: every time is passed in. A venue's quote is checked on its own (finite, positive, fresh),
then against the others: the median of the valid quotes is the reference, quotes further than
`max_divergence_bps` from it are outliers (a de-pegged stablecoin pair, a frozen venue), and the
stored price is the median of what remains. Every rejected source keeps its reason.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Exchange clocks and ours disagree a little; anything further in the future is a bad timestamp.
MAX_CLOCK_SKEW_S = 120


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
    if not (isinstance(quote.price, float | int) and math.isfinite(quote.price)):
        return f"price is not a finite number ({quote.price!r})"
    if quote.price <= 0:
        return f"price must be positive, got {quote.price}"
    age = at - quote.observed_at
    if age > max_staleness_s:
        return f"stale: quote is {age} s old (limit {max_staleness_s} s)"
    if age < -MAX_CLOCK_SKEW_S:
        return f"timestamp {-age} s in the future (clock skew limit {MAX_CLOCK_SKEW_S} s)"
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
) -> PriceSnapshot:
    """Median of the valid, non-outlier quotes; raises InsufficientSourcesError below min_sources."""
    rejected: dict[str, str] = {r.source: r.reason for r in rejections}
    valid: list[SourceQuote] = []
    for quote in quotes:
        if quote.symbol != symbol:
            rejected[quote.source] = f"quote is for {quote.symbol}, expected {symbol}"
            continue
        problem = check_quote(quote, at=at, max_staleness_s=max_staleness_s)
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
