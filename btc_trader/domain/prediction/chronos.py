"""Chronos-Bolt on SageMaker: the JumpStart request and the reading of its quantiles (pure)."""

from __future__ import annotations

import math
import reprlib
from typing import Any

from btc_trader.domain.prediction.model import (
    ForecastError,
    ModelForecast,
    PriceHistory,
    check_move,
)

QUANTILES = (0.1, 0.5, 0.9)
CONTEXT_BARS = 512  # Chronos-Bolt's context length; more is truncated by the model anyway
MIN_CONTEXT = 30  # the JumpStart notebook recommends 30+ observations (5 is the hard minimum)


class ChronosResponseError(ForecastError):
    """The endpoint answered with something that is not a usable Chronos forecast."""

    def __init__(self, message: str):
        super().__init__(message, "malformed_response")


def chronos_request(history: PriceHistory, prediction_length: int) -> dict[str, Any]:
    """`{"inputs":[{"target":[...]}],"parameters":{"prediction_length":H,"quantile_levels":[...]}}`."""
    if prediction_length < 1:
        raise ValueError(f"prediction_length must be at least 1, got {prediction_length}")
    if len(history) < MIN_CONTEXT:
        raise ForecastError(f"huggingface: needs {MIN_CONTEXT} bars, got {len(history)}", "insufficient_history")
    target = [round(float(p), 2) for p in history.prices[-CONTEXT_BARS:]]
    return {
        "inputs": [{"target": target}],
        "parameters": {"prediction_length": prediction_length, "quantile_levels": list(QUANTILES)},
    }


def horizon_steps(horizon_minutes: int, bar_seconds: int) -> int:
    """How many bars ahead the horizon is (at least one)."""
    return max(1, round(horizon_minutes * 60 / bar_seconds))


def parse_chronos_response(
    body: Any, current_price: float, steps: int, model: str = "huggingface"
) -> ModelForecast:
    """Median at the horizon is the forecast; the 10-90% band against the move is the doubt.

    confidence = |median - current| / (|median - current| + (q0.9 - q0.1) / 2): a move that
    clears the band is confident, a move buried inside a wide band is not, and a flat median
    (no move) has confidence 0. Malformed bodies raise ChronosResponseError with the reason; a
    median beyond the move bound every model shares raises ForecastError("implausible_move").
    """
    if not (isinstance(current_price, float | int) and math.isfinite(current_price) and current_price > 0):
        raise ForecastError(f"{model}: current price must be finite and positive, got {current_price!r}", "invalid_price")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive whole number, got {steps!r}")
    predictions = body.get("predictions") if isinstance(body, dict) else None
    prediction = predictions[0] if isinstance(predictions, list) and predictions else None
    if not isinstance(prediction, dict) or any(_key(q) not in prediction for q in QUANTILES):
        raise ChronosResponseError(f"response lacks predictions[0] with quantiles {QUANTILES}: {_preview(body)}")
    series = {q: prediction[_key(q)] for q in QUANTILES}
    for q, values in series.items():
        if not isinstance(values, list) or len(values) < steps:
            raise ChronosResponseError(f"quantile {q} has {len(values) if isinstance(values, list) else 'no'} steps, {steps} needed")
    low, median, high = (_number(series[q][steps - 1], q) for q in QUANTILES)
    if median <= 0:
        raise ChronosResponseError(f"quantiles not finite and positive: {low}, {median}, {high}")
    if not low <= median <= high:
        raise ChronosResponseError(f"quantiles out of order: {low} > {median} or {median} > {high}")
    check_move(model, median, current_price)
    move = abs(median - current_price)
    half_band = (high - low) / 2
    # Same as 1 / (1 + relative band / relative move) with both relative to the price.
    confidence = move / (move + half_band) if move + half_band > 0 else 0.0
    return ModelForecast(
        model=model,
        predicted_price=median,
        confidence=confidence,
        current_price=current_price,
        detail={"q10": low, "q50": median, "q90": high},
    )


def _number(value: Any, quantile: float) -> float:
    """A quantile value: a JSON number (not a boolean, not a string), finite as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ChronosResponseError(f"quantile {quantile} values are not numbers: {_preview(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ChronosResponseError(f"quantile {quantile} value does not fit a float") from None
    if not math.isfinite(number):
        raise ChronosResponseError(f"quantiles not finite and positive: quantile {quantile} is {number}")
    return number


def _preview(value: Any) -> str:
    try:
        return reprlib.repr(value)[:160]
    except (RecursionError, ValueError):
        return f"<unprintable {type(value).__name__}>"


def _key(quantile: float) -> str:
    return str(quantile)
