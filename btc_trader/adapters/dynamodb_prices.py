"""DynamoDB prices table: one item per symbol and collection time (see storage_schema.PRICES).

Item attributes (read by the predictor and the CLI): `symbol` S, `timestamp` N (epoch s),
`price` N, `kind` ("collected" | "backfill"), `expires_at` N (TTL); collected items add
`sources` (source -> price), `sources_used`, `sources_rejected` (source -> reason),
`divergence_bps`, `spread_bps` and, where venues give them, `volume_24h`, `change_24h_pct`;
backfilled candles add `open`, `high`, `low`, `volume` and `source`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from btc_trader.adapters.aws_clients import LazyClient
from btc_trader.adapters.dynamodb_codec import deserialize as _deserialize
from btc_trader.adapters.dynamodb_codec import serialize as _serialize
from btc_trader.adapters.dynamodb_codec import to_decimal
from btc_trader.domain.candles import Candle
from btc_trader.domain.prices import PriceSnapshot
from btc_trader.storage_schema import PRICES, TTL_ATTRIBUTE

BATCH_SIZE = 25  # BatchWriteItem's limit


def snapshot_item(snapshot: PriceSnapshot, *, expires_at: int) -> dict[str, Any]:
    """The stored form of an aggregated price."""
    return {
        PRICES.hash_key.name: snapshot.symbol,
        PRICES.range_key.name: snapshot.timestamp,
        "kind": "collected",
        "price": to_decimal(snapshot.price),
        "sources": {k: to_decimal(v) for k, v in snapshot.source_prices.items()},
        "sources_used": list(snapshot.sources_used),
        "sources_rejected": dict(snapshot.sources_rejected),
        "divergence_bps": to_decimal(round(snapshot.divergence_bps, 4)),
        "spread_bps": to_decimal(round(snapshot.spread_bps, 4)),
        "volume_24h": None if snapshot.volume_24h is None else to_decimal(snapshot.volume_24h),
        "change_24h_pct": None if snapshot.change_24h_pct is None else to_decimal(snapshot.change_24h_pct),
        TTL_ATTRIBUTE: expires_at,
    }


def candle_item(
    symbol: str, candle: Candle, *, source: str, expires_at: int | None, bar_seconds: int
) -> dict[str, Any]:
    """The stored form of a backfilled bar.

    Keyed at the bar's close time with price = close, so a backfilled item means what a
    collected one means: the price at that moment.
    """
    return {
        PRICES.hash_key.name: symbol,
        PRICES.range_key.name: candle.timestamp + bar_seconds,
        "kind": "backfill",
        "source": source,
        "price": to_decimal(candle.close),
        "open": to_decimal(candle.open),
        "high": to_decimal(candle.high),
        "low": to_decimal(candle.low),
        "volume": to_decimal(candle.volume),
        TTL_ATTRIBUTE: expires_at,
    }


class DynamoDBPriceRepository(LazyClient):
    """Writes and reads price items; a conditional put makes re-delivery a no-op."""

    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        self.table_name = table_name
        self._client = client

    def save_snapshot(self, snapshot: PriceSnapshot, *, expires_at: int) -> bool:
        """Store the snapshot unless its slot is taken; False means it was already stored."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_serialize(snapshot_item(snapshot, expires_at=expires_at)),
                ConditionExpression="attribute_not_exists(#symbol)",
                ExpressionAttributeNames={"#symbol": PRICES.hash_key.name},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def latest(self, symbol: str) -> dict[str, Any] | None:
        """The newest stored item of `symbol` (collected or backfilled), deserialised, or None."""
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#symbol = :symbol",
            ExpressionAttributeNames={"#symbol": PRICES.hash_key.name},
            ExpressionAttributeValues=_serialize({":symbol": symbol}),
            ScanIndexForward=False, Limit=1,
        )
        items = response.get("Items", [])
        return _deserialize(items[0]) if items else None

    def get(self, symbol: str, timestamp: int) -> dict[str, Any] | None:
        """The stored item of one slot, deserialised, or None."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key=_serialize({PRICES.hash_key.name: symbol, PRICES.range_key.name: timestamp}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else _deserialize(item)

    def save_candles(
        self,
        symbol: str,
        candles: Sequence[Candle],
        *,
        source: str,
        bar_seconds: int = 60,
        expires_at_for: Callable[[int], int] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Batch-write bars; idempotent (a rerun overwrites its own items).

        Slots that already hold a collected price are skipped: live evidence wins over history.
        """
        if not candles:
            return 0
        taken = self.collected_timestamps(
            symbol, candles[0].timestamp + bar_seconds, candles[-1].timestamp + bar_seconds
        )
        candles = [c for c in candles if c.timestamp + bar_seconds not in taken]
        written = 0
        for start in range(0, len(candles), BATCH_SIZE):
            chunk = candles[start : start + BATCH_SIZE]
            requests = [
                {
                    "PutRequest": {
                        "Item": _serialize(
                            candle_item(
                                symbol, c, source=source, bar_seconds=bar_seconds,
                                expires_at=expires_at_for(c.timestamp) if expires_at_for else None,
                            )
                        )
                    }
                }
                for c in chunk
            ]
            self._write_batch(requests)
            written += len(chunk)
            if on_progress:
                on_progress(len(chunk))
        return written

    def collected_timestamps(self, symbol: str, start: int, end: int) -> set[int]:
        """Times in [start, end] that hold a collected (not backfilled) price."""
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="#symbol = :symbol AND #ts BETWEEN :start AND :end",
            FilterExpression="#kind = :collected",
            ProjectionExpression="#ts",
            ExpressionAttributeNames={"#symbol": PRICES.hash_key.name, "#ts": PRICES.range_key.name, "#kind": "kind"},
            ExpressionAttributeValues=_serialize(
                {":symbol": symbol, ":start": start, ":end": end, ":collected": "collected"}
            ),
        )
        return {int(item[PRICES.range_key.name]["N"]) for page in pages for item in page.get("Items", [])}

    def _write_batch(self, requests: list[dict[str, Any]], max_rounds: int = 8) -> None:
        pending = {self.table_name: requests}
        for _ in range(max_rounds):
            response = self.client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
        raise RuntimeError(
            f"DynamoDB left {len(pending.get(self.table_name, []))} items unprocessed "
            f"in {self.table_name} after {max_rounds} rounds"
        )
