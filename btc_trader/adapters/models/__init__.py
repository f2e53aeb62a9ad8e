"""Model adapters: each wraps one AWS model service behind the PricePredictor port."""

from __future__ import annotations

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from btc_trader.domain.prediction.model import ForecastError

CONNECT_TIMEOUT_S = 3
# One retry at most: botocore's standard mode retries throttling and 5xx with backoff, but a
# model call that is slow once is slow again, and the predictor has its own overall deadline.
MODEL_CALL_ATTEMPTS = 2  # the first call and one retry (total, unlike `max_attempts`)


def model_client_config(read_timeout_s: float, attempts: int = MODEL_CALL_ATTEMPTS) -> Config:
    """botocore config for a model endpoint: bounded connect/read time, standard retries."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )


def forecast_error(exc: ClientError | BotoCoreError) -> ForecastError:
    """A failed model call as a reason: the service's error code and a short message.

    `code` is the lower-cased error code (streaming APIs spell them `throttlingException`, the
    others `ThrottlingException`), or the botocore exception's class name.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        name = str(error.get("Code") or "ClientError")
        message = " ".join(str(error.get("Message", "")).split())[:200]
        return ForecastError(f"{name}: {message}".strip().rstrip(":"), name.lower())
    return ForecastError(f"{type(exc).__name__}: {exc}", type(exc).__name__.lower())
