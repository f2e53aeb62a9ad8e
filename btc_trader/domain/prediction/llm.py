"""The LLM model's prompt and the strict reading of its reply (pure; the adapter calls Bedrock).

A reply is believed only when it validates: one JSON object (bare, fenced, or with prose around
it; two different forecast objects are ambiguous), finite positive numbers, a direction of
up/down/stable, confidence in 0..1, a predicted move within the bound every model shares
(`MAX_MOVE_PCT`, or a stricter `max_move_pct`), and a stated direction that does not contradict
the predicted price. Anything else raises `LlmReplyError` whose `code` names the
failure kind and whose message gives the detail; nothing here can crash on a bad reply.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from btc_trader.domain.prediction.model import (
    DIRECTIONS,
    MAX_MOVE_PCT,
    STABLE_BAND_PCT,
    ForecastError,
    ModelForecast,
    PriceHistory,
    direction_of,
)

PROMPT_BARS = 48
REQUIRED_FIELDS = ("predicted_price", "direction", "confidence")
# "stable" is believed for a move up to twice the stable band; beyond that it contradicts the price.
STABLE_TOLERANCE_PCT = 2 * STABLE_BAND_PCT
# maxTokens is at most 4000 (stack settings): a reply far longer is not an answer to the prompt.
MAX_REPLY_CHARS = 64_000

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


class LlmReplyError(ForecastError):
    """The model answered, but not with a usable forecast."""


@dataclass(frozen=True)
class ConverseReply:
    """What a Converse response says: its text, why it stopped, and the tokens it cost."""

    text: str
    stop_reason: str | None
    input_tokens: int
    output_tokens: int


def read_converse_response(response: Any) -> ConverseReply:
    """The text blocks of a Converse response, joined, and its usage; never raises.

    Other blocks (reasoning, tool use) are skipped; a response of the wrong shape has no text.
    Token counts that are not whole non-negative numbers count as 0: a garbled `usage` must not
    throw away a valid forecast.
    """
    body = response if isinstance(response, dict) else {}
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    texts = [b["text"] for b in blocks or () if isinstance(b, dict) and isinstance(b.get("text"), str)] \
        if isinstance(blocks, list) else []
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    stop = body.get("stopReason")
    return ConverseReply(
        text="\n".join(texts),
        stop_reason=stop if isinstance(stop, str) else None,
        input_tokens=_tokens(usage.get("inputTokens")),
        output_tokens=_tokens(usage.get("outputTokens")),
    )


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9 else 0


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
    """The one forecast object of a reply, bare, fenced or embedded in prose.

    Every `{` is tried with a real JSON decoder, so braces inside strings and text around the
    object do not confuse it. The same object repeated (in a fence and again in prose) is one
    answer; two different objects that both look like forecasts are an ambiguous reply, never
    "the first one wins".
    """
    if not isinstance(text, str) or not text.strip():
        raise LlmReplyError("empty reply", "empty_reply")
    if len(text) > MAX_REPLY_CHARS:
        raise LlmReplyError(f"reply of {len(text)} characters is longer than any forecast ({MAX_REPLY_CHARS})", "too_long")
    objects = _json_objects(text)
    forecasts: list[dict[str, Any]] = []
    for value in objects:
        if any(k in value for k in REQUIRED_FIELDS) and value not in forecasts:
            forecasts.append(value)
    if len(forecasts) > 1:
        raise LlmReplyError(
            f"{len(forecasts)} different forecast objects in one reply; which one is meant is unknown", "ambiguous_reply"
        )
    if forecasts:
        return forecasts[0]
    if objects:
        return objects[0]  # an object without the fields: reported as missing fields
    raise LlmReplyError(f"no JSON object in the reply: {text[:120]!r}", "no_json")


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The top-level JSON objects in `text`, fenced ones first (an object's inner objects not repeated)."""
    fences = [m.span(1) for m in _FENCE.finditer(text)]
    found: list[tuple[bool, int, dict[str, Any]]] = []
    start = text.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested past the decoder's limit
            value, end = None, start + 1
        if isinstance(value, dict):
            found.append((not any(a <= start < b for a, b in fences), start, value))
        else:
            end = start + 1
        start = text.find("{", end)
    return [value for _, _, value in sorted(found, key=lambda f: f[:2])]


def _finite(value: Any, name: str) -> float:
    # bool is an int in Python; a "true" price is a reply error, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LlmReplyError(f"{name} is not a number: {_preview(value)}", "not_a_number")
    if isinstance(value, str):
        word = value.strip().lstrip("+-").lower()
        if word in {"nan", "inf", "infinity"}:
            raise LlmReplyError(f"{name} is not finite: {value[:40]!r}", "not_finite")
        if not _DECIMAL.fullmatch(value.strip()):
            raise LlmReplyError(f"{name} is not a number: {value[:40]!r}", "not_a_number")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer hundreds of digits long
        raise LlmReplyError(f"{name} is not a representable number: {_preview(value)}", "not_a_number") from None
    if not math.isfinite(number):
        raise LlmReplyError(f"{name} is not finite: {_preview(value)}", "not_finite")
    return number


def _preview(value: Any) -> str:
    try:
        return reprlib.repr(value)[:120]
    except (RecursionError, ValueError):
        return f"<unprintable {type(value).__name__}>"


def parse_llm_forecast(
    text: str, current_price: float, max_move_pct: float = MAX_MOVE_PCT, model: str = "bedrock"
) -> ModelForecast:
    """A validated forecast from the reply, or LlmReplyError saying what was wrong."""
    if not (isinstance(current_price, float | int) and math.isfinite(current_price) and current_price > 0):
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
    stated = data["direction"]
    direction = stated.strip().lower() if isinstance(stated, str) else None
    if direction not in DIRECTIONS:
        raise LlmReplyError(f"direction must be up, down or stable, got {_preview(stated)}", "bad_direction")
    move = (predicted / current_price - 1) * 100
    bound = min(max_move_pct, MAX_MOVE_PCT)
    if not abs(move) <= bound:
        raise LlmReplyError(f"predicted move {move:+.2f}% exceeds the sane bound of ±{bound:g}%", "implausible_move")
    implied = direction_of(move)
    # Next to the stable band, a stated direction is a nuance (the price decides, the
    # disagreement is kept); "up" for a fall, or "stable" for a real move, is a contradiction.
    nuance = "stable" in (implied, direction) and abs(move) <= STABLE_TOLERANCE_PCT
    if implied != direction and not (implied == "stable" or nuance):
        raise LlmReplyError(
            f"direction {direction!r} contradicts the predicted price ({move:+.3f}%)", "direction_contradiction"
        )
    reasoning = data.get("reasoning", "")
    detail: dict[str, float | str] = {
        "reasoning": (reasoning if isinstance(reasoning, str) else _preview(reasoning))[:500],
        "stated_direction": direction,
    }
    if implied != direction:
        detail["direction_flag"] = f"stated {direction}, price implies {implied}"
    return ModelForecast(
        model=model, predicted_price=predicted, confidence=confidence, current_price=current_price, detail=detail
    )
