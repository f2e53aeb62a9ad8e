"""`huggingface`: Amazon Chronos-Bolt on a SageMaker endpoint (JumpStart request/response)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from btc_trader.adapters.models import forecast_error, model_client_config
from btc_trader.domain.prediction.chronos import (
    ChronosResponseError,
    chronos_request,
    horizon_steps,
    parse_chronos_response,
)
from btc_trader.domain.prediction.model import HistoryNeededAlias, ModelForecast, PriceHistory

# Enough context for Chronos-Bolt to see a few daily cycles of 5-minute bars; its own
# context window is 512, and every extra bar is read from DynamoDB on each run.
CHRONOS_HISTORY_BARS = 256


@dataclass
class SageMakerChronosPredictor(HistoryNeededAlias):
    endpoint_name: str
    timeout_s: float = 20
    client: Any | None = None
    name: str = "huggingface"
    history_needed: int = CHRONOS_HISTORY_BARS

    def __post_init__(self) -> None:
        if not self.endpoint_name:
            raise ValueError("huggingface: endpoint name is empty (stack key btc-trader:huggingface.endpointName)")

    def _client(self) -> Any:
        if self.client is None:
            import boto3

            self.client = boto3.client("sagemaker-runtime", config=model_client_config(self.timeout_s))
        return self.client

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
        """Forecast through one InvokeEndpoint call; any failure raises ForecastError."""
        steps = horizon_steps(horizon_minutes, history.bar_seconds)
        body = chronos_request(history, steps)
        try:
            response = self._client().invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(body).encode(),
            )
            raw = response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise forecast_error(exc) from None
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's limit
            raise ChronosResponseError(f"endpoint returned non-JSON (or JSON nested too deeply): {raw[:120]!r}") from None
        return parse_chronos_response(parsed, history.last_price, steps, model=self.name)
