"""`sam local invoke`, for this stack: run a handler in-process with its deployed environment.

The environment comes from `components.runtime_env.function_environments`, the same builder the
Pulumi components use, pointed at the local emulator. Logs and EMF metrics go to stderr; the
handler's result is returned for the CLI to print on stdout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from btc_trader.adapters.price_sources import replay_spec
from btc_trader.local.emulator import LOCAL_ACCOUNT, EmulatorState, aws_environment
from btc_trader.local.environ import patched_environ
from components.runtime_env import (
    ML_PREDICTOR,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
    TRADE_EXECUTOR,
    function_environments,
)
from components.settings import load_stack_file

# CLI name -> handler module. Grows with every function of the stack.
FUNCTIONS: dict[str, str] = {
    PRICE_COLLECTOR: "functions.price_collector",
    ML_PREDICTOR: "functions.ml_predictor",
    PREDICTION_EVALUATOR: "functions.prediction_evaluator",
    RISK_MANAGER: "functions.risk_manager",
    TRADE_EXECUTOR: "functions.trade_executor",
}
# What each function is triggered by, for the default event of `local invoke`.
TRIGGERS = {PRICE_COLLECTOR: "schedule", ML_PREDICTOR: "workflow-input", PREDICTION_EVALUATOR: "schedule",
            RISK_MANAGER: "workflow-state", TRADE_EXECUTOR: "workflow-state"}
MODELS = ("bedrock", "huggingface", "custom")


class InvokeError(ValueError):
    """The invocation cannot start (unknown function, bad event, bad replay)."""


@dataclass
class LocalContext:
    """The parts of the Lambda context that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def scheduled_event(at: datetime, region: str, rule: str = "local") -> dict[str, Any]:
    """An EventBridge scheduled event whose `time` is `at` (the run's clock)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{LOCAL_ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def workflow_input(at: datetime, symbol: str, execution_id: str | None = None) -> dict[str, Any]:
    """The trading workflow's input, as the state machine builds it for each execution."""
    return {
        "symbol": symbol,
        "execution_id": execution_id or f"local-{uuid.uuid4()}",
        "requested_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def default_event(function: str, at: datetime, region: str, symbol: str) -> dict[str, Any]:
    """What triggers `function` in the deployed stack, at time `at`."""
    if TRIGGERS.get(function) == "workflow-input":
        return workflow_input(at, symbol)
    if TRIGGERS.get(function) == "workflow-state":
        raise InvokeError(f"{function} is a step of the trading workflow: pass the workflow state with "
                          "--event FILE (the output of the previous step), or run the whole workflow with "
                          "`btc-trader local run`")
    return scheduled_event(at, region)


def parse_models(text: str) -> list[str]:
    """`--models custom,bedrock` -> a validated list."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if not models or unknown:
        raise InvokeError(f"--models takes a comma-separated subset of {', '.join(MODELS)}, got {text!r}")
    return models


def parse_replays(pairs: list[str]) -> list[str]:
    """`NAME=FILE` arguments -> replay source specs, checking each file exists."""
    specs = []
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise InvokeError(f"--replay must look like NAME=FILE, got {pair!r}")
        if not os.path.isfile(path):
            raise InvokeError(f"--replay {name}: file {path} not found")
        specs.append(replay_spec(name, path))
    return specs


def function_environment(
    function: str, state: EmulatorState, replays: list[str] | None = None, models: list[str] | None = None
) -> dict[str, str]:
    """The environment the deployed function gets, for the emulator's stack, with overrides."""
    if function not in FUNCTIONS:
        raise InvokeError(f"unknown function {function!r}; known: {', '.join(sorted(FUNCTIONS))}")
    env = dict(function_environments(load_stack_file(state.stack), state.names)[function])
    if replays:
        if function != PRICE_COLLECTOR:
            raise InvokeError("--replay applies to price-collector only")
        env["BTC_TRADER_PRICE_SOURCES"] = json.dumps(replays, separators=(",", ":"))
    if models:
        if "BTC_TRADER_ML_MODELS" not in env:
            raise InvokeError(f"--models applies to {ML_PREDICTOR} and {PREDICTION_EVALUATOR} only")
        env["BTC_TRADER_ML_MODELS"] = json.dumps(models, separators=(",", ":"))
        settings = load_stack_file(state.stack)
        env["BTC_TRADER_MODEL_WEIGHTS"] = json.dumps({m: settings.model_weights.get(m, 1.0) for m in models})
        if "bedrock" in models:
            env["BTC_TRADER_BEDROCK_MODEL_ID"] = settings.bedrock.model_id
        if "huggingface" in models:
            env["BTC_TRADER_SAGEMAKER_ENDPOINT"] = settings.huggingface.endpoint_name
    return env


_ENV_SEEN: dict[str, dict[str, str]] = {}


def run_handler(function: str, event: dict[str, Any], env: dict[str, str], region: str,
                account: str = LOCAL_ACCOUNT, memory_mb: int = 256) -> Any:
    """Call a function's handler in this process with its environment; exceptions propagate.

    Handlers build their clients once per container from the environment; when this
    function's environment changed since its last call, that is a new container (cold start).
    """
    env = {**env, "POWERTOOLS_TRACE_DISABLED": "true"}  # no X-Ray daemon locally
    name = f"btc-trader-local-{function}"
    context = LocalContext(name, memory_mb, f"arn:aws:lambda:{region}:{account}:function:{name}", str(uuid.uuid4()))
    with patched_environ(env), contextlib.redirect_stdout(sys.stderr):
        # Imported with its environment in place: Powertools reads it at import.
        module = importlib.import_module(FUNCTIONS[function])
        if _ENV_SEEN.get(function) != env:
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
            _ENV_SEEN[function] = env
        # Powertools binds its log stream at import; logs belong on stderr, stdout to results.
        logger = getattr(module, "logger", None)
        if logger is not None:
            logger.registered_handler.stream = sys.stderr  # assigned: setStream() flushes a maybe-closed stream
        return module.lambda_handler(event, context)


def invoke(
    function: str,
    event: dict[str, Any],
    state: EmulatorState,
    replays: list[str] | None = None,
    models: list[str] | None = None,
    real_models: bool = False,
) -> dict[str, Any]:
    """Run the handler against the emulator; returns its result or a Lambda-style error body.

    `real_models` sends Bedrock and SageMaker calls to AWS (your credentials) while storage
    stays on the emulator.
    """
    env = function_environment(function, state, replays, models)
    real = ("bedrock-runtime", "sagemaker-runtime") if real_models else ()
    memory = load_stack_file(state.stack).lambda_settings.memory_mb
    with aws_environment(state, real):
        try:
            return {"ok": True, "result": run_handler(function, event, env, state.region, memory_mb=memory)}
        except Exception as exc:  # reported the way Lambda reports an unhandled error
            return {"ok": False, "result": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}
