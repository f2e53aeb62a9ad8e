"""`huggingface`: Amazon Chronos-Bolt on a SageMaker endpoint (JumpStart request/response)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from btc_trader.adapters.models import forecast_error, model_client_config
from btc_trader.domain.prediction.chronos import (
    ChronosResponseError,
    chronos_request,
    horizon_steps,
    parse_chronos_response,
)
from btc_trader.domain.prediction.model import (
    ForecastError,
    HistoryNeededAlias,
    ModelForecast,
    PriceHistory,
)

# Enough context for Chronos-Bolt to see a few daily cycles of 5-minute bars; its own
# context window is 512, and every extra bar is read from DynamoDB on each run.
CHRONOS_HISTORY_BARS = 256
# A serverless endpoint that has scaled to zero answers its first call only once a container
# has started: image, model archive, the start-up `pip install` of chronos-forecasting and the
# weights from the hub. SageMaker allows that 3 minutes (then 1 minute for the answer), longer
# than a trading run may wait. A read timeout is therefore not retried (the retry would find
# the same cold container and overrun the predictor's deadline); it is reported as what it
# most likely is. The call that timed out has still started the container.
SAGEMAKER_CALL_ATTEMPTS = 1


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

            config = model_client_config(self.timeout_s, attempts=SAGEMAKER_CALL_ATTEMPTS)
            self.client = boto3.client("sagemaker-runtime", config=config)
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
        except ReadTimeoutError:
            raise ForecastError(
                f"{self.name}: endpoint {self.endpoint_name} gave no answer within {self.timeout_s:g} s "
                "(huggingface.timeoutSeconds); a serverless endpoint's first call after it scaled to "
                "zero waits for a container to start (up to ~3 min), so this run goes on without "
                "Chronos; the next runs find the endpoint warm while it stays in use",
                "endpoint_timeout",
            ) from None
        except (ClientError, BotoCoreError) as exc:
            raise forecast_error(exc) from None
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's limit
            raise ChronosResponseError(f"endpoint returned non-JSON (or JSON nested too deeply): {raw[:120]!r}") from None
        return parse_chronos_response(parsed, history.last_price, steps, model=self.name)
