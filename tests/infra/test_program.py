"""The whole program (__main__.py) under mocks, and how code and dependencies are packaged."""

import runpy
import subprocess

import pytest

from btc_trader.stack.settings import LambdaSettings
from components import lambda_packaging
from tests.conftest import REPO_ROOT as PROJECT_ROOT
from tests.infra.harness import POWERTOOLS_LAYER, run_program


@pytest.fixture
def no_pip(monkeypatch, tmp_path):
    monkeypatch.setattr(lambda_packaging, "build_dependency_layer", lambda settings: tmp_path)
    return tmp_path


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_program_builds_every_component(no_pip, stack):
    mocks = run_program(stack, lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")))
    functions = {f.inputs["name"]: f.inputs for f in mocks.of_type("aws:lambda/function:Function")}
    roles = ("price-collector", "ml-predictor", "prediction-evaluator", "risk-manager", "trade-executor")
    assert set(functions) == {f"btc-trader-{stack}-{role}" for role in roles}
    function = functions[f"btc-trader-{stack}-price-collector"]
    layer = mocks.one("aws:lambda/layerVersion:LayerVersion").inputs
    assert layer["layerName"] == f"btc-trader-{stack}-dependencies"
    assert layer["compatibleRuntimes"] == ["python3.12"]
    assert function["layers"][0] == POWERTOOLS_LAYER
    (parameter,) = {args["name"] for token, args in mocks.calls if token == "aws:ssm/getParameter:getParameter"}
    assert parameter == "/aws/service/powertools/python/x86_64/python3.12/3.37.0"
    components = {r.type for r in mocks.resources if r.type.startswith("btc-trader:")}
    assert components == {"btc-trader:data:DataIngestion", "btc-trader:compute:PythonFunction",
                          "btc-trader:ml:MlPrediction", "btc-trader:trading:TradingEngine",
                          "btc-trader:monitoring:Monitoring"}
    assert all(f["layers"][0] == POWERTOOLS_LAYER for f in functions.values())


def test_function_code_holds_only_shipped_packages():
    archive = lambda_packaging.function_code()
    paths = set(archive.assets)
    assert "functions/price_collector.py" in paths
    assert "btc_trader/domain/prices.py" in paths
    assert not any(p.startswith(("tests/", "components/")) or "__pycache__" in p for p in paths)


def test_dependency_layer_targets_lambda_platform_and_is_cached(monkeypatch, tmp_path):
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text("requests==2.34.2\n")
    commands = []

    def fake_run(command, capture_output, text):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(lambda_packaging.subprocess, "run", fake_run)
    settings = LambdaSettings(architecture="arm64")
    first = lambda_packaging.build_dependency_layer(settings, requirements, tmp_path / "build")
    again = lambda_packaging.build_dependency_layer(settings, requirements, tmp_path / "build")
    assert first == again and len(commands) == 1, "an unchanged requirements file is not rebuilt"
    command = commands[0]
    assert command[command.index("--platform") + 1] == "manylinux2014_aarch64"
    assert command[command.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in command
    requirements.write_text("requests==2.34.2\nidna==3.18\n")
    lambda_packaging.build_dependency_layer(settings, requirements, tmp_path / "build")
    assert len(commands) == 2


def test_dependency_layer_failure_is_explained(monkeypatch, tmp_path):
    requirements = tmp_path / "r.txt"
    requirements.write_text("nope==0\n")
    monkeypatch.setattr(
        lambda_packaging.subprocess, "run",
        lambda command, capture_output, text: subprocess.CompletedProcess(command, 1, "", "No matching distribution"),
    )
    with pytest.raises(RuntimeError, match="No matching distribution"):
        lambda_packaging.build_dependency_layer(LambdaSettings(), requirements, tmp_path / "b")


def test_lambda_requirements_are_pinned():
    lines = [line for line in (PROJECT_ROOT / "requirements-lambda.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
