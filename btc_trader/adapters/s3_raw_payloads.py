"""Raw source payloads in S3, kept as evidence for every stored price."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from btc_trader.adapters.aws_clients import LazyClient


class S3RawPayloadStore(LazyClient):
    """One JSON object per symbol and collection slot, at a key derived from both.

    The key is deterministic, so a retried run overwrites the same object instead of adding a
    second one (and the bucket's versioning keeps the earlier attempt).
    """

    service = "s3"

    def __init__(self, bucket: str, prefix: str = "raw/prices/", client: Any | None = None):
        self.bucket = bucket
        self.prefix = prefix
        self._client = client

    def key_for(self, symbol: str, timestamp: int) -> str:
        when = datetime.fromtimestamp(timestamp, UTC)
        return f"{self.prefix}{symbol}/{when:%Y/%m/%d}/{timestamp}.json"

    def put(self, symbol: str, timestamp: int, payload: dict[str, Any]) -> str:
        """Store the payload and return its key."""
        key = self.key_for(symbol, timestamp)
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(payload, sort_keys=True, default=str).encode(),
            ContentType="application/json",
        )
        return key
