"""Use case: collect one symbol's price from every source and store it in every sink.

Sinks are written in a fixed order, the prices item last: its presence is the commit marker.
A re-delivered event finds the item and does nothing; a run that failed half-way left no item,
so its retry fetches again and rewrites the earlier sinks in place (deterministic S3 key,
upserted Timestream record) before committing. Nothing is ever stored twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from btc_trader.adapters.price_sources.base import PriceSource
from btc_trader.adapters.price_sources.registry import FetchHook, call_directly, fetch_all
from btc_trader.domain.prices import PriceSnapshot, StoredPrice, aggregate_quotes, collection_time

SECONDS_PER_DAY = 86_400


class PriceStore(Protocol):
    def get(self, symbol: str, timestamp: int) -> dict[str, Any] | None: ...

    def save_snapshot(self, snapshot: PriceSnapshot, *, expires_at: int) -> bool: ...


class RawPayloadStore(Protocol):
    def put(self, symbol: str, timestamp: int, payload: dict[str, Any]) -> str: ...


class SnapshotSink(Protocol):
    def write(self, snapshot: PriceSnapshot) -> None: ...


@dataclass(frozen=True)
class CollectionLimits:
    min_sources: int
    max_divergence_bps: float
    max_staleness_s: int
    ttl_days: int
    # Collection interval: where the previous collections' slots are (the last stored price).
    interval_s: int = 60
    # How many earlier slots are looked at for that price (point reads: the collector may only GetItem).
    last_price_slots: int = 3


@dataclass
class CollectionOutcome:
    """What one symbol's collection did; the handler logs, meters and returns it."""

    symbol: str
    timestamp: int
    status: Literal["stored", "already_collected"]
    price: float
    sources: dict[str, float]
    sources_used: list[str]
    sources_rejected: dict[str, str]
    divergence_bps: float
    spread_bps: float
    raw_key: str | None = None
    sinks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class PriceCollectionService:
    def __init__(
        self,
        sources: Sequence[PriceSource],
        prices: PriceStore,
        raw_payloads: RawPayloadStore,
        limits: CollectionLimits,
        timestream: SnapshotSink | None = None,
        fetch_hook: FetchHook = call_directly,
    ):
        self.sources = list(sources)
        self.prices = prices
        self.raw_payloads = raw_payloads
        self.limits = limits
        self.timestream = timestream
        self.fetch_hook = fetch_hook

    def collect(self, symbol: str, event_time: int) -> CollectionOutcome:
        """Collect and store `symbol` for the slot of `event_time` (epoch s)."""
        slot = collection_time(event_time)
        existing = self.prices.get(symbol, slot)
        if existing is not None:
            return _outcome_from_item(symbol, slot, existing)

        fetched, rejections = fetch_all(self.sources, symbol, slot, hook=self.fetch_hook)
        snapshot = aggregate_quotes(
            (f.quote for f in fetched),
            rejections,
            symbol=symbol,
            at=slot,
            max_divergence_bps=self.limits.max_divergence_bps,
            max_staleness_s=self.limits.max_staleness_s,
            min_sources=self.limits.min_sources,
            last=self._last_stored(symbol, slot),
        )
        sinks: list[str] = []
        raw_key = self.raw_payloads.put(
            symbol,
            slot,
            {
                "symbol": symbol,
                "timestamp": slot,
                "payloads": {f.quote.source: f.raw for f in fetched},
                "snapshot": asdict(snapshot),
            },
        )
        sinks.append("s3")
        if self.timestream is not None:
            self.timestream.write(snapshot)
            sinks.append("timestream")
        stored = self.prices.save_snapshot(
            snapshot, expires_at=slot + self.limits.ttl_days * SECONDS_PER_DAY
        )
        if stored:
            sinks.append("dynamodb")
        return CollectionOutcome(
            symbol=symbol,
            timestamp=slot,
            # A concurrent duplicate committed first: its item stands, ours is dropped.
            status="stored" if stored else "already_collected",
            price=snapshot.price,
            sources=snapshot.source_prices,
            sources_used=list(snapshot.sources_used),
            sources_rejected=snapshot.sources_rejected,
            divergence_bps=snapshot.divergence_bps,
            spread_bps=snapshot.spread_bps,
            raw_key=raw_key,
            sinks=sinks,
        )


    def _last_stored(self, symbol: str, slot: int) -> StoredPrice | None:
        """The newest stored price in the few slots before `slot` (None when there is none)."""
        for back in range(1, self.limits.last_price_slots + 1):
            timestamp = slot - back * self.limits.interval_s
            item = self.prices.get(symbol, timestamp)
            if item is None:
                continue
            try:
                return StoredPrice(float(item["price"]), timestamp)
            except (KeyError, TypeError, ValueError):
                return None
        return None


def _outcome_from_item(symbol: str, slot: int, item: dict[str, Any]) -> CollectionOutcome:
    return CollectionOutcome(
        symbol=symbol,
        timestamp=slot,
        status="already_collected",
        price=float(item["price"]),
        sources={k: float(v) for k, v in (item.get("sources") or {}).items()},
        sources_used=list(item.get("sources_used") or []),
        sources_rejected=dict(item.get("sources_rejected") or {}),
        divergence_bps=float(item.get("divergence_bps", 0)),
        spread_bps=float(item.get("spread_bps", 0)),
    )
