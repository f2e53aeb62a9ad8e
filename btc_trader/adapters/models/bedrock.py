"""`bedrock`: an LLM on Amazon Bedrock through the Converse API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from btc_trader.adapters.models import forecast_error, model_client_config
from btc_trader.domain.prediction.llm import (
    MAX_MOVE_PCT,
    PROMPT_BARS,
    build_prompt,
    parse_llm_forecast,
    read_converse_response,
)
from btc_trader.domain.prediction.model import (
    ForecastError,
    HistoryNeededAlias,
    ModelForecast,
    PriceHistory,
)


@dataclass
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class BedrockConversePredictor(HistoryNeededAlias):
    """Asks the model for strict JSON and believes only what validates.

    `last_usage` holds the token counts of the latest call, also when its reply was rejected
    (the tokens were spent either way); the predictor turns them into metrics.
    """

    model_id: str
    max_tokens: int = 400
    timeout_s: float = 20
    max_move_pct: float = MAX_MOVE_PCT
    client: Any | None = None
    name: str = "bedrock"
    history_needed: int = PROMPT_BARS
    last_usage: TokenUsage = field(default_factory=TokenUsage)

    def __post_init__(self) -> None:
        if not self.model_id:
            raise ValueError("bedrock: model id is empty (stack key btc-trader:bedrock.modelId)")
        if self.max_tokens < 1:
            raise ValueError(f"bedrock: maxTokens must be positive, got {self.max_tokens}")

    def _client(self) -> Any:
        if self.client is None:
            import boto3

            self.client = boto3.client("bedrock-runtime", config=model_client_config(self.timeout_s))
        return self.client

    def predict(self, history: PriceHistory, horizon_minutes: int) -> ModelForecast:
        """Forecast through one Converse call; any failure raises ForecastError with the reason."""
        self.last_usage = TokenUsage()
        prompt = build_prompt(history, horizon_minutes, bars=self.history_needed)
        try:
            response = self._client().converse(
                modelId=self.model_id,
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                inferenceConfig={"maxTokens": self.max_tokens, "temperature": 0.0},
            )
        except (ClientError, BotoCoreError) as exc:
            raise forecast_error(exc) from None
        reply = read_converse_response(response)
        self.last_usage = TokenUsage(reply.input_tokens, reply.output_tokens)
        text, stop = reply.text, reply.stop_reason
        if not text:
            raise ForecastError(f"no text in the reply (stopReason {stop})", "empty_reply")
        if stop == "max_tokens" and "}" not in text:
            raise ForecastError("reply cut off at maxTokens before the JSON closed", "truncated_reply")
        return parse_llm_forecast(text, history.last_price, max_move_pct=self.max_move_pct, model=self.name)


def reply_text(response: dict[str, Any]) -> str:
    """The text blocks of a Converse reply, joined; other blocks (reasoning, tool use) skipped."""
    return read_converse_response(response).text
