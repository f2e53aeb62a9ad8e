"""The LLM model's prompt and the strict reading of its reply (pure; the adapter calls Bedrock).

A reply is believed only when it validates: one JSON object (bare, fenced, or with prose around
it), finite positive numbers, a direction of up/down/stable, confidence in 0..1, a predicted
move within `max_move_pct` of the current price, and a stated direction that does not
contradict the predicted price. Anything else raises `LlmReplyError` whose `code` names the
failure kind and whose message gives the detail; nothing here can crash on a bad reply.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from btc_trader.domain.prediction.model import (
    DIRECTIONS,
    STABLE_BAND_PCT,
    ForecastError,
    ModelForecast,
    PriceHistory,
    direction_of,
)

PROMPT_BARS = 48
# A forecast further than this from the current price is not believed, whatever it says.
MAX_MOVE_PCT = 10.0
REQUIRED_FIELDS = ("predicted_price", "direction", "confidence")

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


class LlmReplyError(ForecastError):
    """The model answered, but not with a usable forecast."""


def build_prompt(history: PriceHistory, horizon_minutes: int, bars: int = PROMPT_BARS) -> str:
    """Recent prices and returns, and the exact JSON expected back."""
    if len(history) < 2:
        raise ForecastError(f"bedrock: needs at least 2 bars for a prompt, got {len(history)}", "insufficient_history")
    symbol = history.symbol or "the asset"
    recent = history.tail(min(bars, len(history)))
    prices = recent.prices.astype(float)
    returns = np.diff(prices) / prices[:-1] * 100
    bar_minutes = history.bar_seconds / 60
    lines = ", ".join(f"{p:.2f}" for p in prices)
    changes = ", ".join(f"{r:+.3f}" for r in returns)
    return (
        f"You are a quantitative analyst. Forecast {symbol} {horizon_minutes} minutes after the last price.\n"
        f"Last {len(prices)} prices, one every {bar_minutes:g} minutes, oldest first:\n{lines}\n"
        f"Percent change between consecutive prices:\n{changes}\n"
        f"Current price: {prices[-1]:.2f}\n"
        "Reply with ONLY a JSON object, no prose, no code fence:\n"
        '{"predicted_price": <number>, "direction": "up"|"down"|"stable", '
        '"confidence": <number 0..1>, "reasoning": "<one sentence>"}\n'
        f'Use "stable" when the move is within {STABLE_BAND_PCT}%. Be calibrated: confidence is the '
        "probability that the direction is right."
    )


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in a reply: fenced first, else bare or embedded in prose.

    Each `{` is tried with a real JSON decoder, so braces inside strings and trailing text
    after the object do not confuse it.
    """
    if not isinstance(text, str) or not text.strip():
        raise LlmReplyError("empty reply", "empty_reply")
    regions = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for region in regions:
        start = region.find("{")
        while start != -1:
            try:
                value, _ = _DECODER.raw_decode(region, start)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                return value
            start = region.find("{", start + 1)
    raise LlmReplyError(f"no JSON object in the reply: {text[:120]!r}", "no_json")


def _finite(value: Any, name: str) -> float:
    # bool is an int in Python; a "true" price is a reply error, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LlmReplyError(f"{name} is not a number: {value!r}", "not_a_number")
    try:
        number = float(value)
    except ValueError:
        raise LlmReplyError(f"{name} is not a number: {value!r}", "not_a_number") from None
    if not math.isfinite(number):
        raise LlmReplyError(f"{name} is not finite: {value!r}", "not_finite")
    return number


def parse_llm_forecast(
    text: str, current_price: float, max_move_pct: float = MAX_MOVE_PCT, model: str = "bedrock"
) -> ModelForecast:
    """A validated forecast from the reply, or LlmReplyError saying what was wrong."""
    if not (math.isfinite(current_price) and current_price > 0):
        raise ForecastError(f"current price must be finite and positive, got {current_price}", "invalid_price")
    data = extract_json(text)
    missing = [k for k in REQUIRED_FIELDS if k not in data]
    if missing:
        raise LlmReplyError(f"reply lacks {', '.join(missing)}", "missing_field")
    predicted = _finite(data["predicted_price"], "predicted_price")
    if predicted <= 0:
        raise LlmReplyError(f"predicted_price must be positive, got {predicted}", "not_positive")
    confidence = _finite(data["confidence"], "confidence")
    if not 0 <= confidence <= 1:
        raise LlmReplyError(f"confidence must be in 0..1, got {confidence}", "confidence_range")
    direction = str(data["direction"]).strip().lower()
    if direction not in DIRECTIONS:
        raise LlmReplyError(f"direction must be up, down or stable, got {data['direction']!r}", "bad_direction")
    move = (predicted / current_price - 1) * 100
    if abs(move) > max_move_pct:
        raise LlmReplyError(
            f"predicted move {move:+.2f}% exceeds the sane bound of ±{max_move_pct:g}%", "implausible_move"
        )
    implied = direction_of(move)
    if implied != direction and "stable" not in (implied, direction):
        raise LlmReplyError(
            f"direction {direction!r} contradicts the predicted price ({move:+.3f}%)", "direction_contradiction"
        )
    detail: dict[str, float | str] = {"reasoning": str(data.get("reasoning", ""))[:500], "stated_direction": direction}
    if implied != direction:
        # "up" with a price inside the stable band (or the reverse) is a nuance, not a
        # contradiction: the price decides, and the disagreement is kept for the record.
        detail["direction_flag"] = f"stated {direction}, price implies {implied}"
    return ModelForecast(
        model=model, predicted_price=predicted, confidence=confidence, current_price=current_price, detail=detail
    )
