"""`sam local invoke`, for this stack: run a function's built bundle with its deployed environment.

The bundle runs in a warm worker of the runtime's Python (btc_trader.local.workers), or in this
process with `--in-process`.

The environment comes from `btc_trader.stack.environment.function_environments`, the same builder the
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
from pathlib import Path
from typing import Any, TextIO

import boto3
from aws_lambda_powertools.utilities.parameters import base as parameters_base

from btc_trader.adapters.price_sources import replay_spec
from btc_trader.local.emulator import LOCAL_ACCOUNT, EmulatorState, aws_environment
from btc_trader.local.environ import patched_environ
from btc_trader.stack.environment import (
    ML_PREDICTOR,
    ORDER_RECONCILER,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
    TRADE_EXECUTOR,
    function_environments,
)
from btc_trader.stack.project import find_project_root
from btc_trader.stack.settings import load_stack_file_cached

# CLI name -> handler module. Grows with every function of the stack.
FUNCTIONS: dict[str, str] = {
    PRICE_COLLECTOR: "functions.price_collector",
    ML_PREDICTOR: "functions.ml_predictor",
    PREDICTION_EVALUATOR: "functions.prediction_evaluator",
    RISK_MANAGER: "functions.risk_manager",
    TRADE_EXECUTOR: "functions.trade_executor",
    ORDER_RECONCILER: "functions.order_reconciler",
}
# What each function is triggered by, for the default event of `local invoke`.
TRIGGERS = {PRICE_COLLECTOR: "schedule", ML_PREDICTOR: "workflow-input", PREDICTION_EVALUATOR: "schedule",
            RISK_MANAGER: "workflow-state", TRADE_EXECUTOR: "workflow-state", ORDER_RECONCILER: "schedule"}
MODELS = ("bedrock", "huggingface", "custom")


def function_role(names: Any, function: str) -> str | None:
    """The stack function a Lambda name or ARN (or role name) designates; None when none."""
    name = function.split(":function:")[-1].split(":")[0]
    return name if name in FUNCTIONS else next((role for role in FUNCTIONS if names.function(role) == name), None)


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


FREE_PREFIXES = ("POWERTOOLS_", "AWS_")  # may be added by an env-vars file; everything else must exist


def load_env_vars(path: str, names: Any) -> dict[str, dict[str, str]]:
    """An env-vars file, as `sam local invoke --env-vars` reads it: per-function overrides.

    `{"Parameters": {...}}` applies to every function; a function's key (`risk-manager` or its
    deployed name `btc-trader-dev-risk-manager`) applies to it. Values are strings.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvokeError(f"--env-vars: cannot read {path} ({exc.strerror})") from None
    except (ValueError, RecursionError) as exc:  # also not UTF-8, or nested past the parser's limit
        raise InvokeError(f"--env-vars {path}: malformed JSON ({exc or type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InvokeError(f"--env-vars {path}: expected an object like "
                          '{"Parameters": {"LOG_LEVEL": "DEBUG"}, "risk-manager": {...}}')
    by_deployed_name = {names.function(role): role for role in FUNCTIONS}
    overrides: dict[str, dict[str, str]] = {}
    for key, values in data.items():
        role = key if key in FUNCTIONS or key == "Parameters" else by_deployed_name.get(key)
        if role is None:
            raise InvokeError(f"--env-vars {path}: unknown function {key!r}; use Parameters or one of "
                              f"{', '.join(sorted(FUNCTIONS))}")
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise InvokeError(f"--env-vars {path}: {key} must map variable names to string values")
        overrides.setdefault(role, {}).update(values)
    return overrides


def _overridable(name: str, env: dict[str, str]) -> bool:
    return name in env or name.startswith(FREE_PREFIXES) or name == "LOG_LEVEL"


def apply_env_vars(function: str, env: dict[str, str], overrides: dict[str, dict[str, str]]) -> dict[str, str]:
    """`env` with the file's Parameters, then the function's own entries, applied.

    Parameters override only what a function has (as in SAM); a function's own entry naming a
    variable it does not have is a typo, refused with the list of its variables.
    """
    own = overrides.get(function, {})
    unknown = sorted(name for name in own if not _overridable(name, env))
    if unknown:
        raise InvokeError(f"--env-vars: {function} has no variable {', '.join(unknown)}; "
                          f"it has {', '.join(sorted(env))}")
    shared = {k: v for k, v in overrides.get("Parameters", {}).items() if _overridable(k, env)}
    return env | shared | own


def function_environment(
    function: str, state: EmulatorState, replays: list[str] | None = None, models: list[str] | None = None,
    env_vars: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """The environment the deployed function gets, for the emulator's stack, with overrides."""
    if function not in FUNCTIONS:
        raise InvokeError(f"unknown function {function!r}; known: {', '.join(sorted(FUNCTIONS))}")
    settings = load_stack_file_cached(state.stack)
    env = dict(function_environments(settings, state.names)[function])
    if replays:
        if function != PRICE_COLLECTOR:
            raise InvokeError("--replay applies to price-collector only")
        env["BTC_TRADER_PRICE_SOURCES"] = json.dumps(replays, separators=(",", ":"))
    if models:
        if "BTC_TRADER_ML_MODELS" not in env:
            raise InvokeError(f"--models applies to {ML_PREDICTOR} and {PREDICTION_EVALUATOR} only")
        env["BTC_TRADER_ML_MODELS"] = json.dumps(models, separators=(",", ":"))
        env["BTC_TRADER_MODEL_WEIGHTS"] = json.dumps({m: settings.model_weights.get(m, 1.0) for m in models})
        if "bedrock" in models:
            env["BTC_TRADER_BEDROCK_MODEL_ID"] = settings.bedrock.model_id
        if "huggingface" in models:
            env["BTC_TRADER_SAGEMAKER_ENDPOINT"] = settings.huggingface.endpoint_name
    return apply_env_vars(function, env, env_vars or {})


_ENV_SEEN: dict[str, dict[str, str]] = {}


def import_handler_module(function: str) -> Any:
    """A function's handler module from the checkout's `functions/` (the wheel ships only the library)."""
    if "functions" not in sys.modules:
        root = str(find_project_root())
        if root not in sys.path:
            sys.path.insert(0, root)
    return importlib.import_module(FUNCTIONS[function])


def _container(function: str, env: dict[str, str], region: str, account: str,
               memory_mb: int | None, timeout_s: int | None) -> tuple[dict[str, str], str, str, int, int]:
    """What the function's container sees (its variables, where AWS is, Lambda's own), its name,
    ARN, memory and timeout (the stack's unless given)."""
    from btc_trader.stack.naming import ResourceNames

    stack = env.get("BTC_TRADER_STACK", "dev")
    if memory_mb is None or timeout_s is None:
        lambda_settings = load_stack_file_cached(stack).lambda_settings
        memory_mb = memory_mb or lambda_settings.memory_mb
        timeout_s = timeout_s or lambda_settings.timeout_seconds
    name = ResourceNames(stack, account, region).function(function)
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    container = {**env, "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
                 **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
                 "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
                 "AWS_REGION": os.environ.get("AWS_REGION", region), "TZ": ":UTC", "LANG": "en_US.UTF-8",
                 **{k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}}
    return container, name, arn, memory_mb, timeout_s


def prewarm(environments: dict[str, dict[str, str]], region: str, account: str = LOCAL_ACCOUNT) -> None:
    """Start every function's worker now, so their cold starts overlap instead of queueing."""
    from btc_trader.build import BuildError
    from btc_trader.local import workers

    pool = workers.shared_pool()
    if pool is None:
        return
    for function, env in environments.items():
        container, name, arn, memory_mb, timeout_s = _container(function, env, region, account, None, None)
        try:
            pool.worker(function, container, name, arn, memory_mb, timeout_s)
        except BuildError as exc:
            workers.fall_back(str(exc))
            return


def run_handler(function: str, event: dict[str, Any], env: dict[str, str], region: str,
                account: str = LOCAL_ACCOUNT, memory_mb: int | None = None, log_stream: TextIO | None = None,
                timeout_s: int | None = None) -> Any:
    """Run a function's handler with its environment; its exceptions propagate under their own name.

    By default it runs the built bundle in a warm worker of the runtime's Python (as Lambda runs
    what `pulumi up` uploads); with `--in-process`, or when that interpreter or the build is
    missing, in this process. Memory and timeout are the stack's unless given. Logs, EMF metrics
    and the START/END/REPORT lines go to `log_stream` (default: stderr); stdout stays for results.
    """
    from btc_trader.build import BuildError
    from btc_trader.local import workers

    log_stream = log_stream or sys.stderr
    container, name, arn, memory_mb, timeout_s = _container(function, env, region, account, memory_mb, timeout_s)
    request_id = str(uuid.uuid4())
    pool = workers.shared_pool()
    if pool is not None:
        try:
            worker = pool.worker(function, container, name, arn, memory_mb, timeout_s)
        except BuildError as exc:
            workers.fall_back(str(exc))
        else:
            outcome = pool.invoke(worker, event, request_id, log_stream)
            if not outcome.ok:
                raise workers.handler_error(outcome.result)
            return outcome.result
    env = {**env, "POWERTOOLS_TRACE_DISABLED": "true"}
    return _run_in_process(function, event, env, name, arn, memory_mb, request_id, log_stream)


def _run_in_process(function: str, event: dict[str, Any], env: dict[str, str], name: str, arn: str,
                    memory_mb: int, request_id: str, log_stream: TextIO) -> Any:
    """The handler in this process (the development venv), one container per environment."""
    import resource
    import time

    context = LocalContext(name, memory_mb, arn, request_id)
    with patched_environ(env), contextlib.redirect_stdout(log_stream):
        # Imported with its environment in place: Powertools reads it at import.
        module = import_handler_module(function)
        # Where AWS is (emulator endpoint, region, credentials) belongs to the container too: a
        # client cached for one emulator must never talk to the next one.
        container = {**env, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
        if _ENV_SEEN.get(function) != container:
            # boto3's default session caches the credentials it resolved first: a new container
            # must resolve them again (another emulator, another function's credentials).
            boto3.DEFAULT_SESSION = None
            # Powertools Parameters keeps one provider (and its client, with the endpoint it was
            # made for) per process: a Lambda container has its own, so a new one here must too.
            # Without this the risk manager reads the kill switch from a stopped emulator,
            # finds it unreadable, and (failing safe) never trades.
            parameters_base.DEFAULT_PROVIDERS.clear()
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
            _ENV_SEEN[function] = container
        # Powertools binds its log stream at import; logs belong on stderr, stdout to results.
        logger = getattr(module, "logger", None)
        if logger is not None:
            logger.registered_handler.stream = log_stream  # assigned: setStream() flushes a maybe-closed stream
        log_stream.write(f"START RequestId: {request_id} Version: $LATEST\n")
        started = time.perf_counter()
        try:
            return module.lambda_handler(event, context)
        finally:
            duration = (time.perf_counter() - started) * 1000
            used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            log_stream.write(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: "
                             f"{duration:.2f} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {used} MB "
                             "(in-process: the whole venv)\n")


def invoke(
    function: str,
    event: dict[str, Any],
    state: EmulatorState,
    replays: list[str] | None = None,
    models: list[str] | None = None,
    real_models: bool = False,
    env_vars: dict[str, dict[str, str]] | None = None,
    echo: TextIO | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the handler against the emulator; returns its result or a Lambda-style error body.

    `real_models` sends Bedrock and SageMaker calls to AWS (your credentials) while storage
    stays on the emulator. Logs go to the function's local log file (and to `echo`). `env`, when
    given, is the complete environment (a run's own), instead of the stack's.
    """
    from btc_trader.local.logs import handler_log, log_handler_error

    if env is None:
        env = function_environment(function, state, replays, models, env_vars)
    elif env_vars:
        env = apply_env_vars(function, env, env_vars)
    real = ("bedrock-runtime", "sagemaker-runtime") if real_models else ()
    lambda_settings = load_stack_file_cached(state.stack).lambda_settings
    with aws_environment(state, real), handler_log(state.stack, function, echo) as log:
        try:
            return {"ok": True, "result": run_handler(function, event, env, state.region,
                                                      memory_mb=lambda_settings.memory_mb, log_stream=log,
                                                      timeout_s=lambda_settings.timeout_seconds)}
        except Exception as exc:  # reported the way Lambda reports an unhandled error
            error_type = getattr(exc, "error_type", type(exc).__name__)  # the worker's, e.g. ValueError
            log_handler_error(log, function, exc)  # and logged as its runtime logs it, traceback included
            return {"ok": False, "result": {"errorType": error_type, "errorMessage": str(exc)}}
