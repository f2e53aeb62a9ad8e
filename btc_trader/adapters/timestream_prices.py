"""Opt-in Timestream sink (Timestream for LiveAnalytics takes no new customers since 2025-06-20)."""

from __future__ import annotations

import time
from typing import Any

from btc_trader.adapters.aws_clients import client as aws_client
from btc_trader.domain.prices import PriceSnapshot


class TimestreamPriceWriter:
    """One multi-measure record per snapshot, upserted.

    A retried run may carry fresher quotes than the attempt that failed; writing with a higher
    `Version` makes Timestream replace the earlier record, so every sink ends up holding the
    same (last) attempt and nothing is duplicated.
    """

    def __init__(self, database: str, table: str, client: Any | None = None):
        self.database = database
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("timestream-write")
        return self._client

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
