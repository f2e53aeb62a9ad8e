"""Bounded, paginated reads of price history: only the bars the enabled models need.

The seed read all 43,200 one-minute items of 30 days, whole, in one unpaginated query (so it
silently stopped at DynamoDB's 1 MB page). Here one query covers just the window the models
need (plus slack for gaps), newest first, projects only `timestamp` and `price`, follows every
page and stops at a hard item cap. The newest item's source divergence is one extra one-key Query
of one attribute, so it does not widen every item of the window.

Note on cost: DynamoDB bills a Query by the full size of the items it reads, whatever the
projection; the projection only shrinks what crosses the network. The saving that counts is
reading a few hundred items instead of 43,200, and `ReadStats` reports both the returned bytes
and the consumed read capacity so neither is mistaken for the other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from btc_trader.adapters.aws_clients import LazyClient
from btc_trader.domain.prediction.model import HistorySlice, InsufficientHistoryError, PriceHistory
from btc_trader.storage_schema import PRICES

# Read this much more than the bars strictly need, so a few missing slots do not starve a model.
WINDOW_SLACK = 1.5
# Carry the last price across at most this many empty bars; a longer hole means no history.
MAX_FILLED_BARS = 3
# Collected snapshots and backfilled 1-minute candles share the table: at most two items per
# minute in normal operation. Reading stops beyond this many per minute of window.
MAX_ITEMS_PER_MINUTE = 2

_SYMBOL, _TS = PRICES.hash_key.name, PRICES.range_key.name


@dataclass
class ReadStats:
    items: int = 0
    bytes: int = 0  # size of the projected items returned (what crossed the network)
    pages: int = 0
    capacity_units: float = 0.0  # read capacity DynamoDB reported as consumed (full item sizes)
    truncated: bool = False  # the item cap stopped the read (the newest items were kept)


def resample_last(timestamps: np.ndarray, prices: np.ndarray, bar_seconds: int, end: int) -> PriceHistory:
    """Bars closing at `end`, `end - bar`, ...: each bar's price is its last observation.

    Bar k covers (end - (k+1)*bar, end - k*bar]. An empty bar carries the previous bar's price
    for up to MAX_FILLED_BARS bars; history older than a longer hole is not used.
    """
    if len(timestamps) == 0:
        return PriceHistory(np.array([], dtype=np.int64), np.array([], dtype=float), bar_seconds)
    buckets = ((end - timestamps) // bar_seconds).astype(np.int64)
    count = int(buckets.max()) + 1
    by_bucket = np.full(count, np.nan)
    order = np.argsort(timestamps, kind="stable")  # oldest first, so the newest write wins
    by_bucket[buckets[order]] = prices[order]
    series = by_bucket[::-1]  # oldest bar first
    filled = series.copy()
    last, run = np.nan, 0
    for j, value in enumerate(series):
        if np.isnan(value):
            run += 1
            if run <= MAX_FILLED_BARS:
                filled[j] = last
        else:
            last, run = value, 0
    holes = np.flatnonzero(np.isnan(filled))
    first = int(holes[-1]) + 1 if len(holes) else 0
    times = end - (count - 1 - np.arange(first, count)) * bar_seconds
    return PriceHistory(times.astype(np.int64), filled[first:], bar_seconds)


class DynamoDBPriceHistory(LazyClient):
    """Reads recent prices of a symbol as evenly spaced bars."""

    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        self.table_name = table_name
        self._client = client
        self.last_read = ReadStats()

    def load(self, symbol: str, at: int, bars: int, bar_seconds: int, min_bars: int = 1) -> HistorySlice:
        """Up to `bars` newest bars at or before `at`, with the newest price's time and divergence.

        Raises InsufficientHistoryError (have/need) when fewer than `min_bars` bars exist; pass
        `min_bars=bars` to refuse anything short of the full request.
        """
        if bars < 1 or bar_seconds < 1 or not 1 <= min_bars <= bars:
            raise ValueError(f"need 1 <= min_bars <= bars and bar_seconds >= 1, got {min_bars}, {bars}, {bar_seconds}")
        window_s = int(bars * bar_seconds * WINDOW_SLACK)
        start = at - window_s
        max_items = MAX_ITEMS_PER_MINUTE * (window_s // 60 + 1)
        stats = ReadStats()
        times: list[int] = []
        prices: list[float] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#symbol = :symbol AND #ts BETWEEN :start AND :at",
            "ProjectionExpression": "#ts, price",
            "ExpressionAttributeNames": {"#symbol": _SYMBOL, "#ts": _TS},
            "ExpressionAttributeValues": {
                ":symbol": {"S": symbol}, ":start": {"N": str(start)}, ":at": {"N": str(at)},
            },
            "ScanIndexForward": False,  # newest first: if the cap stops us, the old end is lost
            "ReturnConsumedCapacity": "TOTAL",
        }
        # Pages by hand so each request asks for at most the items still allowed (a paginator
        # cannot shrink Limit as it goes).
        while True:
            page = self.client.query(**request, Limit=max_items - stats.items)
            stats.pages += 1
            stats.capacity_units += float((page.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0))
            for item in page.get("Items", []):
                stats.items += 1
                stats.bytes += _item_bytes(item)
                times.append(int(item[_TS]["N"]))
                prices.append(float(item["price"]["N"]))
            if "LastEvaluatedKey" not in page:
                break
            if stats.items >= max_items:
                stats.truncated = True
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if not times:
            self.last_read = stats
            raise InsufficientHistoryError(
                0, min_bars, f"no prices for {symbol} in the {window_s // 60} minutes before {at}; {bars} bars requested"
            )
        newest = times[0]
        divergence = self._divergence(symbol, newest, stats)
        self.last_read = stats
        resampled = resample_last(np.array(times), np.array(prices), bar_seconds, end=at)
        history = replace(resampled, symbol=symbol, newest_price_time=newest).tail(bars)
        if len(history) < min_bars:
            raise InsufficientHistoryError(len(history), min_bars, f"{bar_seconds // 60}-minute bars of {symbol}")
        return HistorySlice(history, newest, divergence)

    def _divergence(self, symbol: str, timestamp: int, stats: ReadStats) -> float | None:
        """Venue disagreement stored with the newest price (None for backfilled candles)."""
        # A one-key Query rather than GetItem: the predictor's role holds dynamodb:Query only.
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#symbol = :symbol AND #ts = :ts",
            ProjectionExpression="divergence_bps",
            ExpressionAttributeNames={"#symbol": _SYMBOL, "#ts": _TS},
            ExpressionAttributeValues={":symbol": {"S": symbol}, ":ts": {"N": str(timestamp)}},
            ReturnConsumedCapacity="TOTAL",
        )
        stats.capacity_units += float((response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0))
        items = response.get("Items") or [{}]
        value = items[0].get("divergence_bps")
        return float(value["N"]) if value and "N" in value else None

    def price_at(self, symbol: str, at: int, tolerance_s: int) -> tuple[int, float] | None:
        """The newest price at or before `at`, if one is within `tolerance_s` of it."""
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#symbol = :symbol AND #ts BETWEEN :start AND :at",
            ProjectionExpression="#ts, price",
            ExpressionAttributeNames={"#symbol": _SYMBOL, "#ts": _TS},
            ExpressionAttributeValues={
                ":symbol": {"S": symbol}, ":start": {"N": str(at - tolerance_s)}, ":at": {"N": str(at)},
            },
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        if not items:
            return None
        return int(items[0][_TS]["N"]), float(items[0]["price"]["N"])


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size rule: attribute names plus values (numbers ~ digits / 2 + 1)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "N" in value:
            size += len(value["N"].lstrip("-").replace(".", "")) // 2 + 1
        elif "S" in value:
            size += len(value["S"].encode())
        elif "BOOL" in value or "NULL" in value:
            size += 1
        elif "M" in value:
            size += 3 + _item_bytes(value["M"])
        elif "L" in value:
            size += 3 + sum(_item_bytes({"": v}) + 1 for v in value["L"])
    return size
