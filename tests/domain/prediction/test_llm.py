import numpy as np
import pytest

from btc_trader.domain.prediction.llm import build_prompt, extract_json, parse_llm_forecast
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
    ],
)
def test_valid_replies_in_every_wrapping(reply):
    forecast = parse_llm_forecast(reply, current_price=20_000.0)
    assert forecast.predicted_price == 20100.5
    assert forecast.confidence == 0.62
    assert forecast.direction == "up"
    assert forecast.detail["reasoning"] == "higher lows"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("I think it goes up.", "no JSON object"),
        ('{"direction": "up", "confidence": 0.5}', "lacks predicted_price"),
        ('{"predicted_price": "NaN", "direction": "up", "confidence": 0.5}', "not finite"),
        ('{"predicted_price": -3, "direction": "down", "confidence": 0.5}', "must be positive"),
        ('{"predicted_price": "abc", "direction": "up", "confidence": 0.5}', "not a number"),
        ('{"predicted_price": 20100, "direction": "sideways", "confidence": 0.5}', "direction must be"),
        ('{"predicted_price": 20100, "direction": "up", "confidence": 1.5}', "confidence must be in 0..1"),
        ('{"predicted_price": 20100, "direction": "up", "confidence": true}', "not a number"),
        ('{"predicted_price": 40000, "direction": "up", "confidence": 0.9}', "exceeds the sane bound"),
        ('{"predicted_price": 19000, "direction": "up", "confidence": 0.9}', "contradicts"),
    ],
)
def test_invalid_replies_are_reasons_not_crashes(reply, reason):
    with pytest.raises(ForecastError, match=reason):
        parse_llm_forecast(reply, current_price=20_000.0)


def test_prompt_holds_prices_returns_and_the_contract():
    history = PriceHistory(np.arange(100) * 300, np.linspace(20_000, 20_500, 100), 300)
    prompt = build_prompt(history, 60)
    assert "20500.00" in prompt and "every 5 minutes" in prompt
    assert '"predicted_price"' in prompt and "60 minutes" in prompt
    assert prompt.count(",") > 90  # 48 prices and 47 returns


def test_extract_json_prefers_the_fenced_object():
    assert extract_json('{"a": 1} ```json\n{"b": 2}\n```') == {"b": 2}
