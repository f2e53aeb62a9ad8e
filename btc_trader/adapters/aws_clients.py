"""boto3 clients built one way: lazily, with botocore's standard retry mode and timeouts.

Clients are created on first use, not at import, so moto (tests) and the local emulator's
`AWS_ENDPOINT_URL` are in place before any client exists.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=3,
    read_timeout=10,
)


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client with the project's retry and timeout policy."""
    return boto3.client(service, config=RETRY_CONFIG, **kwargs)


class LazyClient:
    """Mixin: a boto3 client for `service`, built on first use unless one was injected."""

    service: str
    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client(self.service)
        return self._client
