"""SageMaker inference script for Chronos-Bolt in the Hugging Face PyTorch inference container.

It serves the JumpStart Chronos contract that `btc_trader.adapters.models.sagemaker` speaks:
request  {"inputs": [{"target": [...]}, ...], "parameters": {"prediction_length": H,
          "quantile_levels": [0.1, 0.5, 0.9]}}
response {"predictions": [{"mean": [...], "0.1": [...], "0.5": [...], "0.9": [...]}, ...]}

The Hugging Face inference toolkit (2.6.0 in the 2.6.0-transformers4.51.3 CPU image) imports this
module from the archive's code/ directory and calls model_fn / input_fn / predict_fn / output_fn;
at start-up it has already installed code/requirements.txt (chronos-forecasting). The weights
come from the model directory when the archive carries them (config.json beside code/), else
from the Hugging Face Hub (`CHRONOS_MODEL_ID`, default amazon/chronos-bolt-small), downloaded once
per container. Not HF_MODEL_ID: that variable makes the toolkit bypass this script.
"""

from __future__ import annotations

import json
import os
from typing import Any

DEFAULT_QUANTILES = [0.1, 0.5, 0.9]
MAX_PREDICTION_LENGTH = 64  # Chronos-Bolt's trained horizon
MAX_SERIES = 1000
MIN_OBSERVATIONS = 5


class RequestError(ValueError):
    """The request breaks the contract; returned to the caller as a 4xx-style message."""


def parse_request(body: Any) -> tuple[list[list[float]], int, list[float]]:
    """Validate a request body into (series, prediction_length, quantile_levels)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise RequestError(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise RequestError('body must be {"inputs": [{"target": [...]}], "parameters": {...}}')
    if len(body["inputs"]) > MAX_SERIES:
        raise RequestError(f"at most {MAX_SERIES} series per request, got {len(body['inputs'])}")
    series = []
    for i, item in enumerate(body["inputs"]):
        target = item.get("target") if isinstance(item, dict) else None
        if not isinstance(target, list) or len(target) < MIN_OBSERVATIONS:
            raise RequestError(f"inputs[{i}].target must be a list of at least {MIN_OBSERVATIONS} numbers")
        try:
            series.append([float(v) for v in target])
        except (TypeError, ValueError):
            raise RequestError(f"inputs[{i}].target holds a non-number") from None
    parameters = body.get("parameters") or {}
    length = parameters.get("prediction_length", 1)
    if not isinstance(length, int) or not 1 <= length <= MAX_PREDICTION_LENGTH:
        raise RequestError(f"prediction_length must be 1..{MAX_PREDICTION_LENGTH}, got {length!r}")
    quantiles = parameters.get("quantile_levels", DEFAULT_QUANTILES)
    if not isinstance(quantiles, list) or not all(isinstance(q, float | int) and 0 < q < 1 for q in quantiles):
        raise RequestError(f"quantile_levels must be numbers in (0, 1), got {quantiles!r}")
    return series, length, [float(q) for q in quantiles]


def format_response(quantiles: list[float], values: Any, means: Any) -> dict[str, Any]:
    """values[s][h][q] and means[s][h] -> the JumpStart response body."""
    predictions = []
    for s in range(len(means)):
        entry = {"mean": [float(v) for v in means[s]]}
        for qi, q in enumerate(quantiles):
            entry[str(q)] = [float(values[s][h][qi]) for h in range(len(means[s]))]
        predictions.append(entry)
    return {"predictions": predictions}


DEFAULT_MODEL_ID = "amazon/chronos-bolt-small"


def model_source(model_dir: str, environ: Any = os.environ) -> str:
    """Weights shipped in the model directory win; otherwise the configured hub repository."""
    if os.path.isfile(os.path.join(model_dir, "config.json")):
        return model_dir
    return environ.get("CHRONOS_MODEL_ID") or DEFAULT_MODEL_ID


def model_fn(model_dir: str) -> Any:
    """Load the Chronos-Bolt pipeline once per container (CPU is enough for Bolt)."""
    import torch
    from chronos import BaseChronosPipeline

    return BaseChronosPipeline.from_pretrained(model_source(model_dir), device_map="cpu", torch_dtype=torch.float32)


def input_fn(request_body: Any, content_type: str = "application/json") -> Any:
    """The request body, JSON only, validated against the contract."""
    if content_type and "json" not in content_type:
        raise RequestError(f"content type must be application/json, got {content_type}")
    return parse_request(request_body)


def predict_fn(data: Any, pipeline: Any) -> dict[str, Any]:
    """Quantiles and mean over the horizon for every series of the request."""
    import torch

    series, length, quantiles = data
    context = [torch.tensor(s, dtype=torch.float32) for s in series]
    values, means = pipeline.predict_quantiles(context, prediction_length=length, quantile_levels=quantiles)
    return format_response(quantiles, values.tolist(), means.tolist())


def output_fn(prediction: dict[str, Any], accept: str = "application/json") -> str:
    """The response body as JSON."""
    return json.dumps(prediction)
