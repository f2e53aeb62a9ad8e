import numpy as np
import pytest

from btc_trader.domain.prediction.chronos import (
    ChronosResponseError,
    chronos_request,
    horizon_steps,
    parse_chronos_response,
)
from btc_trader.domain.prediction.model import ForecastError, PriceHistory
from tests.conftest import load_fixture


def test_request_follows_the_jumpstart_contract():
    history = PriceHistory(np.arange(600) * 60, np.linspace(100, 200, 600), 60)
    body = chronos_request(history, 12)
    assert body["parameters"] == {"prediction_length": 12, "quantile_levels": [0.1, 0.5, 0.9]}
    assert len(body["inputs"][0]["target"]) == 512 and body["inputs"][0]["target"][-1] == 200.0
    with pytest.raises(ForecastError, match="needs 30 bars"):
        chronos_request(history.tail(10), 12)


def test_documented_response_median_and_band():
    body = load_fixture("sagemaker_chronos_response.json")  # values are the doc's, not BTC prices
    # The current price is chosen within the shared move bound of the doc's median (+4.1 %).
    forecast = parse_chronos_response(body, current_price=1.45, steps=5)
    assert forecast.predicted_price == 1.51
    assert forecast.detail == {"q10": -0.45, "q50": 1.51, "q90": 4.56}
    assert forecast.confidence == pytest.approx(0.06 / (0.06 + (4.56 + 0.45) / 2))


def test_confidence_is_high_when_the_move_clears_the_band():
    body = {"predictions": [{"mean": [105.0], "0.1": [104.0], "0.5": [105.0], "0.9": [106.0]}]}
    assert parse_chronos_response(body, 100.0, 1).confidence == pytest.approx(5 / 6)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"error": "boom"}, "lacks predictions"),
        ({"predictions": []}, "lacks predictions"),
        ({"predictions": [{"mean": [1], "0.5": [1], "0.9": [1]}]}, "lacks predictions"),
        ({"predictions": [{"0.1": [1], "0.5": [1], "0.9": [1]}]}, "3 steps needed|has 1 steps"),
        ({"predictions": [{"0.1": [3, 3, 3], "0.5": [2, 2, 2], "0.9": [1, 1, 1]}]}, "out of order"),
        ({"predictions": [{"0.1": ["x"] * 3, "0.5": [2] * 3, "0.9": [3] * 3}]}, "not numbers"),
        ({"predictions": [{"0.1": [-2] * 3, "0.5": [-1] * 3, "0.9": [3] * 3}]}, "finite and positive"),
    ],
)
def test_malformed_responses(body, reason):
    with pytest.raises(ChronosResponseError, match=reason) as raised:
        parse_chronos_response(body, 100.0, 3)
    assert raised.value.code == "malformed_response" and isinstance(raised.value, ForecastError)


def test_flat_median_has_no_confidence():
    body = {"predictions": [{"mean": [100.0], "0.1": [99.0], "0.5": [100.0], "0.9": [101.0]}]}
    assert parse_chronos_response(body, 100.0, 1).confidence == 0.0


def test_horizon_steps():
    assert horizon_steps(60, 300) == 12
    assert horizon_steps(1, 300) == 1
