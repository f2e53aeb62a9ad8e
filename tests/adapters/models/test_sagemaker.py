"""Chronos-Bolt on SageMaker with canned endpoint results."""

import io
import json

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from btc_trader.adapters.models.sagemaker import SageMakerChronosPredictor
from btc_trader.domain.prediction.model import ForecastError, PriceHistory

HISTORY = PriceHistory(np.arange(300) * 300, np.linspace(20_000, 20_300, 300), 300)


def body(payload: bytes) -> dict:
    return {"Body": StreamingBody(io.BytesIO(payload), len(payload)), "ContentType": "application/json"}


@pytest.fixture
def stubbed():
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield SageMakerChronosPredictor("btc-trader-dev-chronos-bolt", client=client), stubber


def test_valid_result(stubbed):
    predictor, stubber = stubbed
    steps = 12  # 60 minutes of 5-minute bars
    result = {"predictions": [{"mean": [20_350.0] * steps, "0.1": [20_250.0] * steps,
                               "0.5": [20_350.0] * steps, "0.9": [20_450.0] * steps}]}
    stubber.add_response("invoke_endpoint", body(json.dumps(result).encode()),
                         {"EndpointName": "btc-trader-dev-chronos-bolt", "ContentType": "application/json",
                          "Accept": "application/json", "Body": ANY})
    forecast = predictor.predict(HISTORY, 60)
    assert forecast.predicted_price == 20_350.0 and forecast.direction == "up"
    assert forecast.confidence == pytest.approx(50 / (50 + 100))


def test_malformed_result(stubbed):
    predictor, stubber = stubbed
    stubber.add_response("invoke_endpoint", body(b"<html>502</html>"))
    with pytest.raises(ForecastError, match="non-JSON"):
        predictor.predict(HISTORY, 60)
    stubber.add_response("invoke_endpoint", body(b'{"predictions": [{"mean": [1]}]}'))
    with pytest.raises(ForecastError, match="lacks predictions") as raised:
        predictor.predict(HISTORY, 60)
    assert raised.value.code == "malformed_response"


def test_error_status(stubbed):
    predictor, stubber = stubbed
    stubber.add_client_error("invoke_endpoint", service_error_code="ModelError",
                             service_message="Received server error (500) from primary", http_status_code=424)
    with pytest.raises(ForecastError, match="ModelError: Received server error") as raised:
        predictor.predict(HISTORY, 60)
    assert raised.value.code == "modelerror"


@pytest.fixture
def silent_endpoint():
    """A local HTTP endpoint that reads each request and never answers (a cold container)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    requests, stop, held = [], threading.Event(), []

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            requests.append(conn.recv(65536))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", requests
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_cold_endpoint_is_a_named_refusal_after_one_call_not_a_retry(silent_endpoint):
    url, requests = silent_endpoint
    predictor = SageMakerChronosPredictor("btc-trader-prod-chronos-bolt", timeout_s=0.5)
    client = predictor._client()
    assert client.meta.config.read_timeout == 0.5
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    predictor.client = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=url,
                                    config=client.meta.config)
    with pytest.raises(ForecastError, match=r"no answer within 0.5 s \(huggingface.timeoutSeconds\)") as raised:
        predictor.predict(HISTORY, 60)
    assert raised.value.code == "endpoint_timeout" and "scaled to zero" in str(raised.value)
    assert len(requests) == 1 and b"/endpoints/btc-trader-prod-chronos-bolt/invocations" in requests[0]
