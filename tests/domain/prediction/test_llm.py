import numpy as np
import pytest

from btc_trader.domain.prediction.llm import (
    LlmReplyError,
    build_prompt,
    extract_json,
    parse_llm_forecast,
)
from btc_trader.domain.prediction.model import ForecastError, PriceHistory

VALID = '{"predicted_price": 20100.5, "direction": "up", "confidence": 0.62, "reasoning": "higher lows"}'


@pytest.mark.parametrize(
    "reply",
    [
        VALID,
        f"```json\n{VALID}\n```",
        f"```\n{VALID}\n```",
        f"Here is my forecast based on the data:\n{VALID}\nLet me know if you need more.",
        f"Sure! {{not json}} then {VALID}",
        f"{VALID} I hope this helps {{you}}.",
        f"Answer:\n```JSON\n{VALID}\n```\nNote: prices are volatile.",
    ],
)
def test_valid_replies_in_every_wrapping(reply):
    forecast = parse_llm_forecast(reply, current_price=20_000.0)
    assert forecast.predicted_price == 20100.5
    assert forecast.confidence == 0.62
    assert forecast.direction == "up"
    assert forecast.detail["reasoning"] == "higher lows"


@pytest.mark.parametrize(
    ("reply", "code", "reason"),
    [
        ("I think it goes up.", "no_json", "no JSON object"),
        ("", "empty_reply", "empty reply"),
        ('[20100, "up", 0.5]', "no_json", "no JSON object"),
        ('{"direction": "up", "confidence": 0.5}', "missing_field", "lacks predicted_price"),
        ('{"predicted_price": "NaN", "direction": "up", "confidence": 0.5}', "not_finite", "not finite"),
        ('{"predicted_price": -3, "direction": "down", "confidence": 0.5}', "not_positive", "must be positive"),
        ('{"predicted_price": "abc", "direction": "up", "confidence": 0.5}', "not_a_number", "not a number"),
        ('{"predicted_price": 20100, "direction": "sideways", "confidence": 0.5}', "bad_direction", "direction must be"),
        ('{"predicted_price": 20100, "direction": "up", "confidence": 1.5}', "confidence_range", "confidence must be in 0..1"),
        ('{"predicted_price": 20100, "direction": "up", "confidence": true}', "not_a_number", "not a number"),
        ('{"predicted_price": 40000, "direction": "up", "confidence": 0.9}', "implausible_move", "exceeds the sane bound"),
        ('{"predicted_price": 19000, "direction": "up", "confidence": 0.9}', "direction_contradiction", "contradicts"),
    ],
)
def test_invalid_replies_are_reasons_not_crashes(reply, code, reason):
    with pytest.raises(LlmReplyError, match=reason) as raised:
        parse_llm_forecast(reply, current_price=20_000.0)
    assert raised.value.code == code
    assert isinstance(raised.value, ForecastError)


def test_the_move_bound_is_a_parameter():
    reply = '{"predicted_price": 21000, "direction": "up", "confidence": 0.9}'
    assert parse_llm_forecast(reply, 20_000.0, max_move_pct=10).predicted_price == 21_000
    with pytest.raises(LlmReplyError, match="±2%"):
        parse_llm_forecast(reply, 20_000.0, max_move_pct=2)


def test_braces_inside_strings_do_not_confuse_extraction():
    reply = 'Thoughts {draft}: {"predicted_price": 20010, "direction": "stable", "confidence": 0.2, "reasoning": "range {19900-20100}"} end'
    forecast = parse_llm_forecast(reply, 20_000.0)
    assert forecast.detail["reasoning"] == "range {19900-20100}"


def test_a_stated_direction_inside_the_stable_band_is_flagged_not_trusted():
    reply = '{"predicted_price": 20005, "direction": "up", "confidence": 0.7}'  # +0.025%: stable
    forecast = parse_llm_forecast(reply, 20_000.0)
    assert forecast.direction == "stable"
    assert forecast.detail["direction_flag"] == "stated up, price implies stable"


def test_prompt_holds_prices_returns_and_the_contract():
    history = PriceHistory(np.arange(100) * 300, np.linspace(20_000, 20_500, 100), 300)
    prompt = build_prompt(history, 60)
    assert "20500.00" in prompt and "every 5 minutes" in prompt
    assert '"predicted_price"' in prompt and "60 minutes" in prompt
    assert prompt.count(",") > 90  # 48 prices and 47 returns


def test_extract_json_prefers_the_fenced_object():
    assert extract_json('{"a": 1} ```json\n{"b": 2}\n```') == {"b": 2}
