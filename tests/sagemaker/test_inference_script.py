"""The SageMaker inference script's contract handling (the model itself needs torch)."""

import importlib.util
import json

import pytest

from tests.conftest import REPO_ROOT as PROJECT_ROOT
from tests.conftest import load_fixture

spec = importlib.util.spec_from_file_location("chronos_inference", PROJECT_ROOT / "sagemaker/chronos/code/inference.py")
inference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(inference)


def test_documented_minimal_request_parses():
    request = load_fixture("sagemaker_chronos_request_minimal.json")
    series, length, quantiles = inference.input_fn(json.dumps(request), "application/json")
    assert len(series) == 1 and len(series[0]) == 20
    assert length == 10 and quantiles == [0.1, 0.5, 0.9]


def test_our_client_request_round_trips_to_the_documented_response_shape():
    import numpy as np

    from btc_trader.domain.prediction.chronos import chronos_request, parse_chronos_response
    from btc_trader.domain.prediction.model import PriceHistory

    body = chronos_request(PriceHistory(np.arange(40), np.linspace(100, 110, 40), 60), 3)
    series, length, quantiles = inference.parse_request(body)
    values = [[[109.0, 110.0, 111.0]] * length for _ in series]
    means = [[110.0] * length for _ in series]
    response = json.loads(inference.output_fn(inference.format_response(quantiles, values, means)))
    assert set(response["predictions"][0]) == set(load_fixture("sagemaker_chronos_response_minimal.json")["predictions"][0])
    assert parse_chronos_response(response, 110.0, 3).predicted_price == 110.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{nope", "not JSON"),
        ({"instances": []}, "body must be"),
        ({"inputs": [{"target": [1, 2]}]}, "at least 5"),
        ({"inputs": [{"target": [1, 2, 3, 4, "x"]}]}, "non-number"),
        ({"inputs": [{"target": [1, 2, 3, 4, 5]}], "parameters": {"prediction_length": 500}}, "prediction_length"),
        ({"inputs": [{"target": [1, 2, 3, 4, 5]}], "parameters": {"quantile_levels": [1.5]}}, "quantile_levels"),
    ],
)
def test_bad_requests_are_named(body, message):
    with pytest.raises(inference.RequestError, match=message):
        inference.parse_request(body if isinstance(body, str) else json.dumps(body))
