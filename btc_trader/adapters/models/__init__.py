"""Model adapters: each wraps one AWS model service behind the PricePredictor port."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from btc_trader.domain.prediction.model import ForecastError


def forecast_error(exc: ClientError | BotoCoreError) -> ForecastError:
    """A failed model call as a reason: the service's error code and a short message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = " ".join(str(error.get("Message", "")).split())[:200]
        return ForecastError(f"{error.get('Code', 'ClientError')}: {message}".strip())
    return ForecastError(f"{type(exc).__name__}: {exc}")
