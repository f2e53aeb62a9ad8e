"""Fields every handler event shares, validated at the boundary (pydantic).

A time must be an ISO-8601 string that carries a zone (`Z` or an offset): a zone-less time
would be read in the Lambda's local zone, so it is refused, not guessed. It must also be a
possible time for stored data (1970 .. 2100, epoch seconds are the storage unit). A symbol is
`BASE-QUOTE` in capitals, as the stack's settings allow, so a blank or huge one never reaches
DynamoDB; whether it is one of the stack's configured symbols is checked by the handler, which
knows them (`require_configured`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from btc_trader.domain.candles import MAX_EPOCH_S

MIN_EPOCH_S = 0
SYMBOL_PATTERN = r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$"
MAX_EVENT_SYMBOLS = 50


class UnknownSymbolError(ValueError):
    """An event names a symbol the stack does not trade; nothing is read or written for it."""


def parse_event_time(value: Any) -> datetime:
    """An ISO-8601 time with a zone, as an aware UTC datetime; ValueError says what is wrong."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40:
            raise ValueError(f"must be an ISO-8601 time like 2023-03-11T12:00:00Z, got {value[:40]!r}")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"must be an ISO-8601 time like 2023-03-11T12:00:00Z, got {value!r}") from None
    else:
        raise ValueError(f"must be an ISO-8601 time string like 2023-03-11T12:00:00Z, got {type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"must carry a timezone (Z or +hh:mm), got {value!s:.40}: a zone-less time is ambiguous")
    try:
        seconds = parsed.timestamp()
    except (OverflowError, ValueError):
        seconds = float("nan")
    if not MIN_EPOCH_S <= seconds < MAX_EPOCH_S:
        raise ValueError(f"must be between 1970 and 2100, got {value!s:.40}")
    return parsed.astimezone(UTC)


def _iso_text(value: Any) -> str:
    return parse_event_time(value).isoformat().replace("+00:00", "Z")


def _unique(symbols: list[str] | None) -> list[str] | None:
    if symbols is not None:
        repeated = sorted({s for s in symbols if symbols.count(s) > 1})
        if repeated:
            raise ValueError(f"must not repeat a symbol, repeated: {repeated}")
    return symbols


# A zone-aware time, as a UTC datetime (scheduled events' `time`).
EventTime = Annotated[datetime, BeforeValidator(parse_event_time)]
# The same rules, kept as normalised ISO text ending in Z (the workflow's `requested_at`).
EventTimeText = Annotated[str, BeforeValidator(_iso_text)]
EventSymbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN, max_length=21)]
# An event's optional symbol list: absent means every configured symbol; present must say which.
EventSymbols = Annotated[list[EventSymbol], AfterValidator(_unique)]


def require_configured(requested: Sequence[str] | None, configured: Iterable[str]) -> list[str]:
    """The symbols to work on: the configured ones, or the requested ones if all are configured."""
    allowed = list(configured)
    if requested is None:
        return allowed
    unknown = [s for s in requested if s not in allowed]
    if unknown:
        raise UnknownSymbolError(f"symbols {unknown} are not configured for this stack (configured: {allowed})")
    return list(requested)


class CollectionEvent(BaseModel):
    """The price collector's event: an EventBridge scheduled event, or `{"time": ..., "symbols": [...]}`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    time: EventTime
    detail_type: str | None = Field(None, alias="detail-type", max_length=128)
    # Absent: every configured symbol. Present: some of them (an empty list is an error, not "all").
    symbols: EventSymbols | None = Field(None, min_length=1, max_length=MAX_EVENT_SYMBOLS)


class EvaluationEvent(BaseModel):
    """The evaluator's event: a scheduled event (its `time` is the clock), optionally some symbols."""

    model_config = ConfigDict(extra="ignore")

    time: EventTime
    # Absent: every configured symbol. Present: some of them (an empty list is an error, not "all").
    symbols: EventSymbols | None = Field(None, min_length=1, max_length=MAX_EVENT_SYMBOLS)
