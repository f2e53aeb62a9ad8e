"""`huggingface`: Amazon Chronos-Bolt on a SageMaker endpoint (JumpStart request/response)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from btc_trader.adapters.models import forecast_error
from btc_trader.domain.prediction.chronos import (
    chronos_request,
    horizon_steps,
    parse_chronos_response,
)
from btc_trader.domain.prediction.model import ForecastError, ModelForecast, PriceHistory


@dataclass
class SageMakerChronosPredictor:
    endpoint_name: str
    timeout_s: float = 20
    client: Any | None = None
    name: str = "huggingface"
    history_bars: int = 256

    def _client(self) -> Any:
        if self.client is None:
            import boto3

            self.client = boto3.client(
                "sagemaker-runtime",
                config=Config(connect_timeout=3, read_timeout=self.timeout_s,
                              retries={"mode": "standard", "max_attempts": 2}),
            )
        return self.client

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
        steps = horizon_steps(horizon_minutes, history.bar_seconds)
        body = chronos_request(history, steps)
        try:
            response = self._client().invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(body).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise forecast_error(exc) from None
        raw = response["Body"].read()
        try:
            parsed = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ForecastError(f"endpoint returned non-JSON: {raw[:120]!r}") from None
        return parse_chronos_response(parsed, history.last_price, steps, model=self.name)
