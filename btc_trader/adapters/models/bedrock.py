"""`bedrock`: an LLM on Amazon Bedrock through the Converse API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from btc_trader.adapters.models import forecast_error
from btc_trader.domain.prediction.llm import build_prompt, parse_llm_forecast
from btc_trader.domain.prediction.model import ForecastError, ModelForecast, PriceHistory


@dataclass
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class BedrockConversePredictor:
    """Asks the model for strict JSON and believes only what validates."""

    model_id: str
    max_tokens: int = 400
    timeout_s: float = 20
    client: Any | None = None
    name: str = "bedrock"
    history_bars: int = 48
    last_usage: TokenUsage = field(default_factory=TokenUsage)

    def _client(self) -> Any:
        if self.client is None:
            import boto3

            self.client = boto3.client(
                "bedrock-runtime",
                config=Config(
                    connect_timeout=3,
                    read_timeout=self.timeout_s,
                    # Throttling is retried by botocore's standard mode; a slow model is not.
                    retries={"mode": "standard", "max_attempts": 2},
                ),
            )
        return self.client

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
        self.last_usage = TokenUsage()
        prompt = build_prompt(history, horizon_minutes)
        try:
            response = self._client().converse(
                modelId=self.model_id,
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                inferenceConfig={"maxTokens": self.max_tokens, "temperature": 0.0},
            )
        except (ClientError, BotoCoreError) as exc:
            raise forecast_error(exc) from None
        usage = response.get("usage") or {}
        self.last_usage = TokenUsage(int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0)))
        blocks = ((response.get("output") or {}).get("message") or {}).get("content") or []
        # Content is a list of blocks (text, reasoning, tool use...): read the text ones only.
        text = "\n".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))
        if not text:
            raise ForecastError(f"no text in the reply (stopReason {response.get('stopReason')})")
        if response.get("stopReason") == "max_tokens" and "}" not in text:
            raise ForecastError("reply cut off at maxTokens before the JSON closed")
        return parse_llm_forecast(text, history.last_price, model=self.name)
