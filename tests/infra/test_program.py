"""The whole program (__main__.py) under mocks, and how code and dependencies are packaged."""

import runpy

import pytest

from tests.conftest import REPO_ROOT as PROJECT_ROOT
from tests.conftest import require_lambda_build
from tests.infra.harness import POWERTOOLS_LAYER, run_program


@pytest.fixture
def no_pip():
    """The program runs on `make build`'s output and never runs pip under test."""
    return require_lambda_build("dev")


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


def test_lambda_requirements_are_pinned():
    lines = [line for line in (PROJECT_ROOT / "requirements-lambda.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)


def test_global_indexes_use_key_schemas(no_pip):
    """pulumi-aws 7 deprecates an index's hash_key/range_key for key_schemas."""
    from btc_trader.storage_schema import TABLES

    mocks = run_program("prod", lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")))
    indexed = {t.inputs["name"]: t.inputs["globalSecondaryIndexes"]
               for t in mocks.of_type("aws:dynamodb/table:Table") if t.inputs.get("globalSecondaryIndexes")}
    expected = {f"btc-trader-prod-{spec.role}": spec for spec in TABLES if spec.global_indexes}
    assert set(indexed) == set(expected) and indexed
    for name, indexes in indexed.items():
        for index, spec in zip(indexes, expected[name].global_indexes, strict=True):
            assert "hashKey" not in index and "rangeKey" not in index
            keys = [(spec.hash_key.name, "HASH")] + ([(spec.range_key.name, "RANGE")] if spec.range_key else [])
            assert [(k["attributeName"], k["keyType"]) for k in index["keySchemas"]] == keys
