"""Alerts to the stack's SNS topic (the one the alarms and the workflow's Alert step use)."""

from __future__ import annotations

from typing import Any

from btc_trader.adapters.aws_clients import LazyClient


class SnsAlertPublisher(LazyClient):
    service = "sns"

    def __init__(self, topic_arn: str, client: Any | None = None):
        self.topic_arn = topic_arn
        self._client = client

    def publish(self, subject: str, message: str) -> None:
        """Publish one alert; SNS subjects are at most 100 characters."""
        self.client.publish(TopicArn=self.topic_arn, Subject=subject[:100], Message=message)
