"""Bedrock Converse through botocore's Stubber, with the documented response shape."""

import copy

import boto3
import numpy as np
import pytest
from botocore.stub import ANY, Stubber

from btc_trader.adapters.models.bedrock import BedrockConversePredictor
from btc_trader.domain.prediction.model import ForecastError, PriceHistory
from tests.conftest import load_fixture

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
HISTORY = PriceHistory(np.arange(60) * 300, np.linspace(20_000, 20_100, 60), 300)


def reply(text: str, stop: str = "end_turn") -> dict:
    body = copy.deepcopy(load_fixture("bedrock_converse_response.json"))
    body["output"]["message"]["content"] = [{"text": text}]
    body["stopReason"] = stop
    body["usage"] = {"inputTokens": 812, "outputTokens": 64, "totalTokens": 876}
    return body


@pytest.fixture
def stubbed():
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield BedrockConversePredictor(MODEL, max_tokens=300, client=client), stubber


def expect(stubber, response):
    response = {**response, "ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": 200, "HTTPHeaders": {},
                                                 "RetryAttempts": 0}}
    stubber.add_response(
        "converse", response,
        {"modelId": MODEL, "messages": ANY, "inferenceConfig": {"maxTokens": 300, "temperature": 0.0}},
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"predicted_price": 20150, "direction": "up", "confidence": 0.6, "reasoning": "trend"}',
        '```json\n{"predicted_price": 20150, "direction": "up", "confidence": 0.6, "reasoning": "trend"}\n```',
        'Based on the series, here is my answer: {"predicted_price": 20150, "direction": "up", "confidence": 0.6}',
    ],
)
def test_valid_json_in_any_wrapping(stubbed, text):
    predictor, stubber = stubbed
    expect(stubber, reply(text))
    forecast = predictor.predict(HISTORY, 60)
    assert forecast.predicted_price == 20150 and forecast.direction == "up" and forecast.confidence == 0.6
    assert (predictor.last_usage.input_tokens, predictor.last_usage.output_tokens) == (812, 64)


def test_documented_fixture_text_is_not_a_forecast(stubbed):
    predictor, stubber = stubbed
    # The documented body: prose cut off by max_tokens ("Hello! How are you doing today? How can").
    expect(stubber, load_fixture("bedrock_converse_response.json"))
    with pytest.raises(ForecastError, match="cut off at maxTokens"):
        predictor.predict(HISTORY, 60)
    body = load_fixture("bedrock_converse_response.json")
    body["stopReason"] = "end_turn"
    expect(stubber, body)
    with pytest.raises(ForecastError, match="no JSON object"):
        predictor.predict(HISTORY, 60)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("The price will probably rise.", "no JSON object"),
        ('{"predicted_price": "soon", "direction": "up", "confidence": 0.6}', "not a number"),
        ('{"predicted_price": Infinity, "direction": "up", "confidence": 0.6}', "not finite"),
        ('{"predicted_price": -20150, "direction": "down", "confidence": 0.6}', "must be positive"),
        ('{"predicted_price": 90000, "direction": "up", "confidence": 0.6}', "sane bound"),
        ('{"predicted_price": 20150, "direction": "up", "confidence": 7}', "0..1"),
    ],
)
def test_invalid_replies_fail_the_model_not_the_run(stubbed, text, reason):
    predictor, stubber = stubbed
    expect(stubber, reply(text))
    with pytest.raises(ForecastError, match=reason):
        predictor.predict(HISTORY, 60)
    assert predictor.last_usage.output_tokens == 64, "tokens spent on a rejected reply still count"


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("ThrottlingException", 429, "Too many requests, please wait before trying again."),
        ("ValidationException", 400, "The provided model identifier is invalid."),
        ("AccessDeniedException", 403, "You don't have access to the model with the specified model ID."),
    ],
)
def test_service_errors_are_reasons(stubbed, code, status, message):
    predictor, stubber = stubbed
    stubber.add_client_error("converse", service_error_code=code, service_message=message, http_status_code=status)
    with pytest.raises(ForecastError, match=f"{code}: {message[:20]}") as raised:
        predictor.predict(HISTORY, 60)
    assert raised.value.code == code.lower()
    assert predictor.last_usage.input_tokens == 0


def test_the_client_is_bounded():
    predictor = BedrockConversePredictor(MODEL, timeout_s=7)
    config = predictor._client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (3, 7)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    with pytest.raises(ValueError, match="bedrock.modelId"):
        BedrockConversePredictor("")


def test_non_text_blocks_are_skipped_and_cut_off_replies_named(stubbed):
    predictor, stubber = stubbed
    body = reply("")
    body["output"]["message"]["content"] = [
        {"reasoningContent": {"reasoningText": {"text": "thinking"}}},
        {"text": '{"predicted_price": 20100.0, "direction": "stable", "confidence": 0.3}'},
    ]
    expect(stubber, body)
    assert predictor.predict(HISTORY, 60).direction == "stable"
    expect(stubber, reply('{"predicted_price": 201', stop="max_tokens"))
    with pytest.raises(ForecastError, match="cut off at maxTokens"):
        predictor.predict(HISTORY, 60)
