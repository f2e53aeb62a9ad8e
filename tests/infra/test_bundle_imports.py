"""Import what ships: each function's bundle in the runtime's Python with only Lambda's path.

For dev, prod and each option set of the IAM test, every function's bundle (unzipped from the
build's zip), the built layer, a Powertools layer stand-in and boto3 are the only things on the
path of an interpreter of the runtime's version started with -I -S (no site-packages, no
PYTHON* variables); every module the handler can reach is imported, including those imported
inside functions (the live executor's ccxt), with the environment the stack gives the function.
"""

from __future__ import annotations

import json
import os

import pytest

from btc_trader.build.runtime import (
    import_bundle,
    missing_providers,
    runtime_python,
    wheel_tag_problems,
)
from btc_trader.stack.environment import function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_with_overrides
from tests.conftest import require_lambda_build
from tests.infra.test_iam_policies import VARIANTS

ACCOUNT, REGION = "123456789012", "us-east-1"


def lambda_environment(variables: dict[str, str], function_name: str, memory_mb: int) -> dict[str, str]:
    """What Lambda adds to the function's own variables (no credentials of this machine)."""
    return {**variables, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb), "LANG": "en_US.UTF-8", "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin"}


@pytest.fixture(scope="module")
def interpreter():
    python = runtime_python("python3.12")
    if python is None:
        message = ("no python3.12 interpreter (pyenv install 3.12, or set BTC_TRADER_PYTHON_3_12): "
                   "the bundles cannot be imported as Lambda imports them")
        if os.environ.get("BTC_TRADER_REQUIRE_RUNTIME"):  # CI: this test must run, never skip
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_reachable_module_imports_from_what_ships(variant, interpreter):
    stack, overrides = VARIANTS[variant]
    settings = load_stack_with_overrides(stack, {k.removeprefix("btc-trader:"): json.dumps(v)
                                                 for k, v in overrides.items()})
    output = require_lambda_build(stack)
    assert output.runtime == settings.lambda_settings.python_runtime
    names = ResourceNames(stack, ACCOUNT, REGION)
    environments = function_environments(settings, names)
    assert set(environments) <= set(output.functions), "a function of the stack has no bundle"
    problems = []
    for function, variables in sorted(environments.items()):
        bundle = output.functions[function]
        problems += missing_providers(output, bundle)
        env = lambda_environment(variables, names.function(function), settings.lambda_settings.memory_mb)
        result = import_bundle(output, function, env, interpreter)
        assert result.python.startswith("3.12."), result.python
        assert result.site_packages == [], "the interpreter must see no site-packages"
        problems += result.problems(output)
    assert problems == []


def test_a_missing_dependency_is_named_with_its_function_module_and_provider(interpreter, tmp_path):
    output = require_lambda_build("dev")
    bundle = output.functions["trade-executor"]
    # As the layer was before this build: no ccxt in it.
    stripped = type(output)(**{**output.__dict__, "functions": dict(output.functions)})
    stripped.layer_dir = str(tmp_path)
    (tmp_path / "python").mkdir()
    problems = missing_providers(stripped, bundle)
    assert any(p.startswith("trade-executor: ccxt (imported by btc_trader.adapters.exchange.ccxt_executor)")
               and "ccxt would provide it" in p for p in problems), problems
    result = import_bundle(stripped, "trade-executor", lambda_environment({}, "x", 256), interpreter,
                           modules=["ccxt"])
    (line,) = result.problems(stripped)
    assert line.startswith("trade-executor: import ccxt failed (ModuleNotFoundError: No module named 'ccxt')")


def test_shipped_wheels_run_on_amazon_linux_2023():
    """What arm64 gets instead of an import (it cannot run here); checked for every built target."""
    output = require_lambda_build("dev")
    assert wheel_tag_problems(output) == []
