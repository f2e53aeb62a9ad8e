"""Key schemas of the stack's tables: the one definition infra, adapters and the emulator share.

Pulumi components build `aws.dynamodb.Table` from these specs, the local emulator creates the
same tables from them, and the DynamoDB adapters use the same attribute names, so a key can
never mean one thing in AWS and another on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AttributeType = Literal["S", "N", "B"]


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: AttributeType


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: KeyAttribute
    range_key: KeyAttribute | None = None


@dataclass(frozen=True)
class TableSpec:
    role: str  # the table's role in the stack, used for its physical name
    hash_key: KeyAttribute
    range_key: KeyAttribute | None = None
    ttl_attribute: str | None = None
    stream_view_type: str | None = None
    global_indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)

    def attributes(self) -> tuple[KeyAttribute, ...]:
        """Every attribute that appears in a key of the table or an index, once."""
        seen: dict[str, KeyAttribute] = {}
        keys = [self.hash_key, self.range_key]
        for index in self.global_indexes:
            keys += [index.hash_key, index.range_key]
        for key in keys:
            if key is not None:
                seen.setdefault(key.name, key)
        return tuple(seen.values())


TTL_ATTRIBUTE = "expires_at"

# One item per symbol and collection time (UTC epoch seconds): the aggregated price plus every
# source's quote. Backfilled candles share the table and key so readers see one history.
PRICES = TableSpec(
    role="prices",
    hash_key=KeyAttribute("symbol", "S"),
    range_key=KeyAttribute("timestamp", "N"),
    ttl_attribute=TTL_ATTRIBUTE,
    stream_view_type="NEW_AND_OLD_IMAGES",
)

# One item per symbol and prediction time: the ensemble and every model's output and weight.
PREDICTIONS = TableSpec(
    role="predictions",
    hash_key=KeyAttribute("symbol", "S"),
    range_key=KeyAttribute("timestamp", "N"),
    ttl_attribute=TTL_ATTRIBUTE,
)

# One item per scored forecast of one model (and of the persistence baseline), keyed by
# `series` = "<symbol>#<model>" so a model's newest scores are one bounded query.
PREDICTION_SCORES = TableSpec(
    role="prediction-scores",
    hash_key=KeyAttribute("series", "S"),
    range_key=KeyAttribute("timestamp", "N"),
    ttl_attribute=TTL_ATTRIBUTE,
)

# One item per order intent, keyed by its client order id (derived from the workflow execution),
# so a duplicate execution finds its trade; the index serves "recent trades of a symbol".
TRADES = TableSpec(
    role="trades",
    hash_key=KeyAttribute("trade_id", "S"),
    global_indexes=(IndexSpec("by_symbol_time", KeyAttribute("symbol", "S"), KeyAttribute("created_at", "N")),),
)

# The paper wallet and the risk manager's memory, one item per symbol, versioned; beside it the
# symbol's lease (`lease#<symbol>`: holder execution id, expires_at epoch s), taken at CheckRisk
# and deleted by the state machine when the execution ends.
TRADING_STATE = TableSpec(role="trading-state", hash_key=KeyAttribute("symbol", "S"))
LEASE_KEY_PREFIX = "lease#"

# Powertools Idempotency's table for the trade executor (its documented key schema).
IDEMPOTENCY = TableSpec(role="idempotency", hash_key=KeyAttribute("id", "S"), ttl_attribute="expiration")

TABLES: tuple[TableSpec, ...] = (PRICES, PREDICTIONS, PREDICTION_SCORES, TRADES, TRADING_STATE, IDEMPOTENCY)
