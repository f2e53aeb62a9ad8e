"""The LLM model's prompt and the strict reading of its reply (pure; the adapter calls Bedrock)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from btc_trader.domain.prediction.model import (
    STABLE_BAND_PCT,
    ForecastError,
    ModelForecast,
    PriceHistory,
    direction_of,
)

PROMPT_BARS = 48
# A forecast further than this from the current price is not believed, whatever it says.
MAX_MOVE_PCT = 10.0

_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL | re.IGNORECASE)


def build_prompt(history: PriceHistory, horizon_minutes: int) -> str:
    """Recent prices and returns, and the exact JSON expected back."""
    symbol = history.symbol or "the asset"
    recent = history.tail(min(PROMPT_BARS, len(history)))
    prices = recent.prices.astype(float)
    returns = np.diff(prices) / prices[:-1] * 100
    bar_minutes = history.bar_seconds // 60
    lines = ", ".join(f"{p:.2f}" for p in prices)
    changes = ", ".join(f"{r:+.3f}" for r in returns)
    return (
        f"You are a quantitative analyst. Forecast {symbol} {horizon_minutes} minutes after the last price.\n"
        f"Last {len(prices)} prices, one every {bar_minutes} minutes, oldest first:\n{lines}\n"
        f"Percent change between consecutive prices:\n{changes}\n"
        f"Current price: {prices[-1]:.2f}\n"
        "Reply with ONLY a JSON object, no prose, no code fence:\n"
        '{"predicted_price": <number>, "direction": "up"|"down"|"stable", '
        '"confidence": <number 0..1>, "reasoning": "<one sentence>"}\n'
        f'Use "stable" when the move is within {STABLE_BAND_PCT}%. Be calibrated: confidence is the '
        "probability that the direction is right."
    )


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in a reply: bare, fenced, or embedded in prose."""
    candidates: list[str] = []
    fenced = _FENCE.search(text)
    if fenced:
        candidates.append(fenced.group(1))
    stripped = text.strip()
    if stripped.startswith("{"):
        candidates.append(stripped)
    start = text.find("{")
    while start != -1:
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start : end + 1])
                    break
        start = text.find("{", start + 1)
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise ForecastError(f"no JSON object in the reply: {text[:120]!r}")


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ForecastError(f"{name} is not a number: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ForecastError(f"{name} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise ForecastError(f"{name} is not finite: {value!r}")
    return number


def parse_llm_forecast(
    text: str, current_price: float, model: str = "bedrock", max_move_pct: float = MAX_MOVE_PCT
) -> ModelForecast:
    """A validated forecast from the reply, or ForecastError saying what was wrong."""
    data = extract_json(text)
    missing = [k for k in ("predicted_price", "direction", "confidence") if k not in data]
    if missing:
        raise ForecastError(f"reply lacks {', '.join(missing)}")
    predicted = _finite(data["predicted_price"], "predicted_price")
    if predicted <= 0:
        raise ForecastError(f"predicted_price must be positive, got {predicted}")
    confidence = _finite(data["confidence"], "confidence")
    if not 0 <= confidence <= 1:
        raise ForecastError(f"confidence must be in 0..1, got {confidence}")
    direction = str(data["direction"]).strip().lower()
    if direction not in {"up", "down", "stable"}:
        raise ForecastError(f"direction must be up, down or stable, got {data['direction']!r}")
    move = (predicted / current_price - 1) * 100
    if abs(move) > max_move_pct:
        raise ForecastError(f"predicted move {move:+.2f}% exceeds the sane bound of ±{max_move_pct}%")
    implied = direction_of(move)
    if implied != direction and "stable" not in (implied, direction):
        raise ForecastError(f"direction {direction!r} contradicts the predicted price ({move:+.3f}%)")
    return ModelForecast(
        model=model,
        predicted_price=predicted,
        confidence=confidence,
        current_price=current_price,
        detail={"reasoning": str(data.get("reasoning", ""))[:500], "stated_direction": direction},
    )
