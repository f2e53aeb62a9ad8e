"""The Chronos endpoint loads and answers, proven locally with the image's library versions.

Slow (a throwaway venv with torch and the serving stack), so outside the default run: `make
chronos-proof` sets BTC_TRADER_CHRONOS_PROOF=1 and CI runs it after `make test`. The venv lives
under build/chronos-proof/, keyed by a hash of its pinned requirements, and is reused while they
are unchanged. No network beyond the package index; the model is a tiny random Chronos-Bolt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from btc_trader.adapters.models.sagemaker import SageMakerChronosPredictor
from btc_trader.chronos_endpoint import CHRONOS_PACKAGE, IMAGE_LIBRARIES, inference_archive
from btc_trader.domain.prediction.chronos import (
    chronos_request,
    horizon_steps,
    parse_chronos_response,
)
from btc_trader.domain.prediction.model import PriceHistory
from tests.conftest import REPO_ROOT as PROJECT_ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("BTC_TRADER_CHRONOS_PROOF") != "1", reason="slow endpoint proof: run `make chronos-proof`"
)

CODE_DIR = PROJECT_ROOT / "sagemaker" / "chronos" / "code"
PROOF_REQUIREMENTS = PROJECT_ROOT / "sagemaker" / "chronos" / "proof-requirements.txt"
WORKER = Path(__file__).with_name("endpoint_worker.py")
TOOLKIT = "sagemaker-huggingface-inference-toolkit"
ENDPOINT = "btc-trader-proof-chronos-bolt"
PIP_TIMEOUT_S = 1800


def _run(args: list[str], timeout: float = PIP_TIMEOUT_S) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args[:4])} ... failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def venv_python() -> Path:
    """The image's serving libraries in a venv of their own, built once per pin set."""
    key = hashlib.sha256(PROOF_REQUIREMENTS.read_bytes() + f"{TOOLKIT}=={IMAGE_LIBRARIES[TOOLKIT]}".encode())
    key.update(sys.version.encode())
    root = PROJECT_ROOT / "build" / "chronos-proof" / f"venv-{key.hexdigest()[:12]}"
    python = root / "bin" / "python"
    stamp = root / ".installed"
    if not stamp.exists():
        _run([sys.executable, "-m", "venv", "--clear", str(root)])
        _run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        _run([str(python), "-m", "pip", "install", "--quiet", "-r", str(PROOF_REQUIREMENTS)])
        _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", f"{TOOLKIT}=={IMAGE_LIBRARIES[TOOLKIT]}"])
        stamp.write_text("ok\n")
    return python


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """The model archive `pulumi up` uploads, extracted as SageMaker extracts it to /opt/ml/model."""
    target = tmp_path / "model"
    with tarfile.open(fileobj=io.BytesIO(inference_archive(CODE_DIR)), mode="r:gz") as archive:
        archive.extractall(target, filter="data")
    return target


def _installed(python: Path) -> set[str]:
    frozen = _run([str(python), "-m", "pip", "freeze", "--all"], timeout=120)
    return {line.strip().lower() for line in frozen.splitlines() if line.strip()}


def test_start_up_install_adds_chronos_and_changes_nothing_of_the_image(venv_python, model_dir):
    subprocess.run([str(venv_python), "-m", "pip", "uninstall", "--yes", "--quiet", CHRONOS_PACKAGE],
                   capture_output=True, check=False)
    before = _installed(venv_python)
    _run([str(venv_python), str(WORKER), "install", str(model_dir)])
    after = _installed(venv_python)
    pinned = (model_dir / "code" / "requirements.txt").read_text().split()
    assert after - before == {p.lower() for p in pinned}, "the start-up install must add only chronos-forecasting"
    assert before - after == set(), "the start-up install replaced a library of the image"
    for name, version in IMAGE_LIBRARIES.items():
        if name != "torch":
            assert f"{name.lower().replace('_', '-')}=={version}" in {p.replace("_", "-") for p in after}


def _history(bars: int, bar_seconds: int, seed: int) -> PriceHistory:
    rng = np.random.default_rng(seed)
    prices = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.001, bars)))
    return PriceHistory(np.arange(bars) * bar_seconds, np.round(prices, 2), bar_seconds)


def test_worker_loads_the_script_and_answers_the_predictor(venv_python, model_dir, tmp_path):
    _run([str(venv_python), str(WORKER), "install", str(model_dir)])
    dev = _history(256, 300, seed=1)  # dev: 5-minute bars, 60-minute horizon -> 12 steps
    prod = _history(256, 60, seed=2)  # prod: 1-minute bars, 60-minute horizon -> 60 steps (past the
    # tiny model's trained 16, so the pipeline's autoregressive continuation runs too)
    dev_body = chronos_request(dev, horizon_steps(60, dev.bar_seconds))
    prod_body = chronos_request(prod, horizon_steps(60, prod.bar_seconds))
    bad_body = {"inputs": [{"target": [1.0, 2.0, 3.0, 4.0, 5.0]}], "parameters": {"prediction_length": 500}}
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps([dev_body, prod_body, bad_body]))
    out = tmp_path / "responses.json"
    _run([str(venv_python), str(WORKER), "serve", str(model_dir), str(requests), str(out)])
    served = json.loads(out.read_text())
    assert "model.safetensors" in served["model"]["files"] and served["model"]["parameters"] < 200_000
    dev_response, prod_response, bad_response = served["responses"]

    assert dev_response["code"] == 200, dev_response
    forecast = _through_predictor(dev, dev_body, dev_response["body"])
    # The head answers loc + (q - 0.5) * scale of the last context_length prices: proof that the
    # request's target reached the model and each quantile landed under its own key.
    context = np.asarray(dev_body["inputs"][0]["target"][-served["model"]["context_length"]:], dtype=np.float64)
    loc, scale = context.mean(), context.std()
    assert forecast.detail["q50"] == pytest.approx(loc, rel=1e-5)
    assert forecast.detail["q10"] == pytest.approx(loc - 0.4 * scale, rel=1e-5)
    assert forecast.detail["q90"] == pytest.approx(loc + 0.4 * scale, rel=1e-5)
    assert forecast.predicted_price == forecast.detail["q50"] and 0 <= forecast.confidence <= 1

    assert prod_response["code"] == 200, prod_response
    long_forecast = _through_predictor(prod, prod_body, prod_response["body"])
    assert len(json.loads(prod_response["body"])["predictions"][0]["0.5"]) == 60
    assert long_forecast.detail["q10"] <= long_forecast.detail["q50"] <= long_forecast.detail["q90"]

    assert bad_response["code"] == 400 and "prediction_length" in bad_response["message"], bad_response


def _through_predictor(history: PriceHistory, sent: dict, answered: str):
    """The project's SageMaker predictor sends exactly `sent` and reads the worker's answer."""
    payload = answered.encode()
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(payload), len(payload)), "ContentType": "application/json"},
            {"EndpointName": ENDPOINT, "ContentType": "application/json", "Accept": "application/json",
             "Body": json.dumps(sent).encode()},
        )
        forecast = SageMakerChronosPredictor(ENDPOINT, client=client).predict(history, 60)
    steps = horizon_steps(60, history.bar_seconds)
    assert forecast == parse_chronos_response(json.loads(answered), history.last_price, steps)
    return forecast
