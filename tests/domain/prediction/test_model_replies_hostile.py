"""Hostile model replies: an LLM's text, a Converse response, a Chronos body.

Each is a validated forecast within the move bound every model shares, or a ForecastError
with its code; nothing else may escape, and nothing out of bounds is ever believed.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btc_trader.domain.prediction.chronos import parse_chronos_response
from btc_trader.domain.prediction.llm import (
    STABLE_TOLERANCE_PCT,
    LlmReplyError,
    parse_llm_forecast,
    read_converse_response,
)
from btc_trader.domain.prediction.model import (
    MAX_MOVE_PCT,
    ForecastError,
    ModelForecast,
    direction_of,
)
from tests.conftest import load_fixture
from tests.hostile import HOSTILE_JSON_TEXTS, mutations

CURRENT = 20_000.0
VALID = {"predicted_price": 20_100.5, "direction": "up", "confidence": 0.62, "reasoning": "higher lows"}
EXAMPLES = settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
WRAPPINGS = st.sampled_from([
    "{}", "```json\n{}\n```", "Here is my forecast:\n{}\nThanks.", "Sure! {{draft}} then {}", "{} {{tail}}",
])


def _assert_believable(forecast: ModelForecast) -> None:
    assert math.isfinite(forecast.predicted_price) and forecast.predicted_price > 0
    assert 0 <= forecast.confidence <= 1
    assert abs(forecast.move_pct) <= MAX_MOVE_PCT


@EXAMPLES
@given(data=st.data(), wrapping=WRAPPINGS)
def test_llm_reply_broken_once_is_a_reason_or_a_believable_forecast(data, wrapping):
    reply = data.draw(mutations(VALID))
    try:
        text = wrapping.replace("{}", json.dumps(reply), 1) if "{}" in wrapping else wrapping
    except (ValueError, RecursionError):
        return
    try:
        forecast = parse_llm_forecast(text, CURRENT)
    except LlmReplyError as exc:
        assert exc.code and str(exc)
        return
    _assert_believable(forecast)
    assert forecast.predicted_price == float(reply["predicted_price"])
    stated = reply["direction"].strip().lower()
    if stated != forecast.direction:  # only next to the stable band
        assert abs(forecast.move_pct) <= STABLE_TOLERANCE_PCT


@settings(max_examples=40)
@given(text=st.one_of(HOSTILE_JSON_TEXTS, st.text(max_size=200)))
def test_llm_free_text_never_crashes(text):
    try:
        _assert_believable(parse_llm_forecast(text, CURRENT))
    except LlmReplyError as exc:
        assert exc.code


@settings(max_examples=40)
@given(first=st.floats(19_000, 21_000), second=st.floats(19_000, 21_000), glue=st.sampled_from([" ", "\nor\n"]))
def test_two_different_forecasts_are_ambiguous_never_first_wins(first, second, glue):
    one = {**VALID, "predicted_price": first, "direction": direction_of((first / CURRENT - 1) * 100)}
    two = {**VALID, "predicted_price": second, "direction": direction_of((second / CURRENT - 1) * 100)}
    text = json.dumps(one) + glue + json.dumps(two)
    if one == two:
        assert parse_llm_forecast(text, CURRENT).predicted_price == first
        return
    with pytest.raises(LlmReplyError) as caught:
        parse_llm_forecast(text, CURRENT)
    assert caught.value.code == "ambiguous_reply"


@pytest.mark.parametrize("move_pct", [0.5, 2.0, -2.0, 9.0])
def test_stable_with_a_real_move_is_a_contradiction(move_pct):
    reply = json.dumps({**VALID, "predicted_price": CURRENT * (1 + move_pct / 100), "direction": "stable"})
    with pytest.raises(LlmReplyError) as caught:
        parse_llm_forecast(reply, CURRENT)
    assert caught.value.code == "direction_contradiction"


def test_a_stricter_bound_than_the_shared_one_holds_but_a_looser_one_does_not():
    reply = json.dumps({**VALID, "predicted_price": CURRENT * 1.15})
    with pytest.raises(LlmReplyError, match="±10%"):
        parse_llm_forecast(reply, CURRENT, max_move_pct=50)


@EXAMPLES
@given(data=st.data())
def test_converse_response_broken_once_never_raises(data):
    body = load_fixture("bedrock_converse_response.json")
    body["usage"] = {"inputTokens": 812, "outputTokens": 64, "totalTokens": 876}
    reply = read_converse_response(data.draw(mutations(body)))
    assert isinstance(reply.text, str)
    assert isinstance(reply.input_tokens, int) and reply.input_tokens >= 0
    assert isinstance(reply.output_tokens, int) and reply.output_tokens >= 0


def test_garbled_usage_keeps_a_valid_forecast():
    response = {"output": {"message": {"content": [{"text": json.dumps(VALID)}]}},
                "usage": {"inputTokens": "lots", "outputTokens": None}, "stopReason": "end_turn"}
    reply = read_converse_response(response)
    assert (reply.input_tokens, reply.output_tokens) == (0, 0)
    assert parse_llm_forecast(reply.text, CURRENT).predicted_price == VALID["predicted_price"]


@pytest.mark.parametrize("response", [None, [], "text", 42, {"output": []}, {"output": {"message": "x"}},
                                      {"output": {"message": {"content": {"text": "x"}}}}])
def test_converse_response_of_the_wrong_shape_has_no_text(response):
    assert read_converse_response(response).text == ""


CHRONOS = {"predictions": [{"mean": [100.5, 101.0], "0.1": [99.0, 99.5], "0.5": [100.5, 101.0],
                            "0.9": [102.0, 103.0]}]}


@EXAMPLES
@given(data=st.data(), steps=st.sampled_from([1, 2]))
def test_chronos_body_broken_once_is_a_reason_or_a_believable_forecast(data, steps):
    body = data.draw(mutations(CHRONOS))
    try:
        forecast = parse_chronos_response(body, 100.0, steps)
    except ForecastError as exc:
        assert exc.code in {"malformed_response", "implausible_move"} and str(exc)
        return
    _assert_believable(forecast)
    values = [body["predictions"][0][q][steps - 1] for q in ("0.1", "0.5", "0.9")]
    assert all(type(v) in (int, float) for v in values), "booleans and strings are not numbers"
    assert values[0] <= values[1] <= values[2] and forecast.predicted_price == float(values[1])


@pytest.mark.parametrize("value", [True, "101", 10**400, float("nan"), 115.0, 85.0])
def test_chronos_booleans_strings_and_big_moves_are_refused(value):
    body = json.loads(json.dumps(CHRONOS))
    body["predictions"][0]["0.5"][0] = value
    body["predictions"][0]["0.9"][0] = 10**6 if value == 115.0 else body["predictions"][0]["0.9"][0]
    body["predictions"][0]["0.1"][0] = 1.0 if value == 85.0 else body["predictions"][0]["0.1"][0]
    with pytest.raises(ForecastError):
        parse_chronos_response(body, 100.0, 1)
