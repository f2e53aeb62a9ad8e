"""Opt-in Timestream sink (Timestream for LiveAnalytics takes no new customers since 2025-06-20)."""

from __future__ import annotations

import time
from typing import Any

from btc_trader.adapters.aws_clients import LazyClient
from btc_trader.domain.prices import PriceSnapshot


class TimestreamPriceWriter(LazyClient):
    """One multi-measure record per snapshot, upserted.

    A retried run may carry fresher quotes than the attempt that failed; writing with a higher
    `Version` makes Timestream replace the earlier record, so every sink ends up holding the
    same (last) attempt and nothing is duplicated.
    """

    service = "timestream-write"

    def __init__(self, database: str, table: str, client: Any | None = None):
        self.database = database
        self.table = table
        self._client = client


    def write(self, snapshot: PriceSnapshot) -> None:
        measures = [
            {"Name": "price", "Value": repr(snapshot.price), "Type": "DOUBLE"},
            {"Name": "divergence_bps", "Value": repr(snapshot.divergence_bps), "Type": "DOUBLE"},
            {"Name": "spread_bps", "Value": repr(snapshot.spread_bps), "Type": "DOUBLE"},
            {"Name": "sources_used", "Value": str(len(snapshot.sources_used)), "Type": "BIGINT"},
        ]
        record = {
            "Dimensions": [{"Name": "symbol", "Value": snapshot.symbol}],
            "MeasureName": "price_snapshot",
            "MeasureValueType": "MULTI",
            "MeasureValues": measures,
            "Time": str(snapshot.timestamp),
            "TimeUnit": "SECONDS",
            "Version": time.time_ns() // 1_000_000,
        }
        self.client.write_records(DatabaseName=self.database, TableName=self.table, Records=[record])
