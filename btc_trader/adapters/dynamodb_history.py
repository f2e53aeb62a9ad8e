"""Bounded, paginated reads of price history: only the bars the enabled models need.

The seed read all 43,200 one-minute items of 30 days, whole, in one unpaginated query (so it
silently stopped at DynamoDB's 1 MB page). Here one query covers just the window the models
need (plus slack for gaps), projects only `timestamp` and `price`, and follows every page.
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


@dataclass
class ReadStats:
    items: int = 0
    bytes: int = 0
    pages: int = 0


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


    def load(self, symbol: str, at: int, bars: int, bar_seconds: int) -> HistorySlice:
        """Up to `bars` newest bars at or before `at`, with the newest price's time and divergence.

        Fewer bars come back when fewer exist; none at all raises InsufficientHistoryError.
        """
        start = at - int(bars * bar_seconds * WINDOW_SLACK)
        stats = ReadStats()
        times: list[int] = []
        prices: list[float] = []
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="#symbol = :symbol AND #ts BETWEEN :start AND :at",
            ProjectionExpression="#ts, price, divergence_bps",
            ExpressionAttributeNames={"#symbol": PRICES.hash_key.name, "#ts": PRICES.range_key.name},
            ExpressionAttributeValues={
                ":symbol": {"S": symbol}, ":start": {"N": str(start)}, ":at": {"N": str(at)},
            },
            ScanIndexForward=False,
        )
        divergence: float | None = None
        for page in pages:
            stats.pages += 1
            for item in page.get("Items", []):
                stats.items += 1
                stats.bytes += _item_bytes(item)
                if not times and "divergence_bps" in item:
                    divergence = float(item["divergence_bps"]["N"])
                times.append(int(item[PRICES.range_key.name]["N"]))
                prices.append(float(item["price"]["N"]))
        self.last_read = stats
        if not times:
            raise InsufficientHistoryError(0, bars, f"no prices for {symbol} in the last {(at - start) // 60} minutes")
        newest = times[0]
        history = replace(resample_last(np.array(times), np.array(prices), bar_seconds, end=at), symbol=symbol)
        return HistorySlice(history.tail(bars), newest, divergence)

    def price_at(self, symbol: str, at: int, tolerance_s: int) -> tuple[int, float] | None:
        """The newest price at or before `at`, if one is within `tolerance_s` of it."""
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#symbol = :symbol AND #ts BETWEEN :start AND :at",
            ProjectionExpression="#ts, price",
            ExpressionAttributeNames={"#symbol": PRICES.hash_key.name, "#ts": PRICES.range_key.name},
            ExpressionAttributeValues={
                ":symbol": {"S": symbol}, ":start": {"N": str(at - tolerance_s)}, ":at": {"N": str(at)},
            },
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        if not items:
            return None
        return int(items[0][PRICES.range_key.name]["N"]), float(items[0]["price"]["N"])


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers ~ digits / 2 + 1)."""
    size = 0
    for name, value in item.items():
        size += len(name)
        if "N" in value:
            size += len(value["N"].lstrip("-").replace(".", "")) // 2 + 1
        elif "S" in value:
            size += len(value["S"].encode())
    return size
