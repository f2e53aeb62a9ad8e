"""A persistent local AWS emulator (moto server on 127.0.0.1) holding the stack's resources.

`local up` starts it as a detached process and records where it runs in a state file; every
other local command finds it there, so what one command stores the next one reads, as in AWS.
Resources are created from the same settings, naming and table specs as the Pulumi components.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from btc_trader.local.environ import patched_environ
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file, stack_region
from btc_trader.storage_schema import TABLES, TRADING_STATE, TableSpec

DEFAULT_PORT = 4599  # away from LocalStack's 4566 and moto's 5000 (macOS AirPlay takes 5000)
LOCAL_ACCOUNT = "123456789012"  # moto's account
HOST = "127.0.0.1"  # never bind anything but loopback
START_TIMEOUT_S = 30


class EmulatorError(RuntimeError):
    """Something is wrong with the local emulator; the message says what and how to fix it."""


@dataclass(frozen=True)
class EmulatorState:
    port: int
    pid: int
    stack: str
    region: str
    started_at: str
    log_file: str

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.stack, LOCAL_ACCOUNT, self.region)


def state_dir() -> Path:
    """Where emulator state lives: $BTC_TRADER_HOME, else ~/.btc-trader."""
    return Path(os.environ.get("BTC_TRADER_HOME") or Path.home() / ".btc-trader")


def _state_file(port: int) -> Path:
    return state_dir() / f"emulator-{port}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _answers(port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def read_state(port: int) -> EmulatorState | None:
    path = _state_file(port)
    if not path.is_file():
        return None
    try:
        return EmulatorState(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise EmulatorError(f"state file {path} is unreadable ({exc}); delete it and run `btc-trader local up`") from None


def recorded_states() -> list[EmulatorState]:
    """Every emulator a state file mentions, newest first (alive or not)."""
    states = []
    for path in state_dir().glob("emulator-*.json"):
        with contextlib.suppress(EmulatorError, ValueError):
            port = int(path.stem.split("-", 1)[1])
            state = read_state(port)
            if state:
                states.append(state)
    return sorted(states, key=lambda s: s.started_at, reverse=True)


def is_running(state: EmulatorState) -> bool:
    return _alive(state.pid) and _answers(state.port)


def running_states() -> list[EmulatorState]:
    """Every emulator that is recorded and answering, newest first."""
    return [state for state in recorded_states() if is_running(state)]


def find_running(port: int | None = None, stack: str | None = None) -> EmulatorState:
    """The emulator a command talks to: every `btc-trader local ...` command resolves it here.

    With `port`, the one on that port. Without, the only one running; with several running it
    never guesses: it names them and asks for --port. With `stack`, the emulator must hold that
    stack (an unknown stack name is refused too).
    """
    if stack is not None:
        load_stack_file(stack)  # an unknown or invalid stack fails here with its own message
    if port:
        state = read_state(port)
        if state is None or not is_running(state):
            raise EmulatorError(f"no local emulator is running on port {port}; start one with "
                                f"`btc-trader local up --port {port}`")
    else:
        running = running_states()
        if not running:
            raise EmulatorError("no local emulator is running; start one with `btc-trader local up`")
        if len(running) > 1:
            listed = ", ".join(f"port {s.port} (stack {s.stack}, since {s.started_at})" for s in running)
            raise EmulatorError(f"{len(running)} local emulators are running: {listed}; "
                                "say which one with --port")
        state = running[0]
    if stack is not None and stack != state.stack:
        raise EmulatorError(f"the local emulator on port {state.port} holds stack {state.stack!r}, not {stack!r}; "
                            f"use --stack {state.stack}, or start one for {stack}: "
                            f"`btc-trader local up --stack {stack} --port <another port>`")
    return state


def find_running_or_none(port: int | None = None, stack: str | None = None) -> EmulatorState | None:
    """As `find_running`, but None when no emulator runs at all (the caller may start one).

    Every other problem (several running, the wrong stack, nothing on an explicit port) is
    still an error: a command never silently runs somewhere else than where it was pointed.
    """
    if not port and not running_states():
        if stack is not None:
            load_stack_file(stack)
        return None
    return find_running(port, stack)


def check_symbol(state: EmulatorState, symbol: str | None) -> str:
    """`symbol`, checked against the stack's symbols (default: the first one)."""
    symbols = load_stack_file(state.stack).symbols
    if symbol is None:
        return symbols[0]
    if symbol not in symbols:
        raise EmulatorError(f"stack {state.stack} does not trade {symbol}: its symbols are {', '.join(symbols)} "
                            f"(stack key btc-trader:symbols in Pulumi.{state.stack}.yaml)")
    return symbol


@contextlib.contextmanager
def run_lock(state: EmulatorState, what: str = "local run") -> Iterator[None]:
    """Hold the emulator for one run: a second run on the same emulator is refused, not mixed in.

    Two runs on one emulator would share its wallet, its Lambda server registration and its
    executions. The lock is an flock on a file per emulator, so it is released when the holder
    exits, however it exits.
    """
    import fcntl

    path = state_dir() / f"emulator-{state.port}.run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise EmulatorError(f"the local emulator on port {state.port} is busy: {holder}; one run at a time "
                                "per emulator: wait for it to finish (or stop it with Ctrl-C), or start a "
                                "second emulator with `btc-trader local up --port <another port>` and pass "
                                "--port to this run") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what} (pid {os.getpid()}) since {datetime.now(UTC).isoformat(timespec='seconds')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def start(stack: str = "dev", port: int = DEFAULT_PORT) -> tuple[EmulatorState, bool]:
    """Start (or find) the emulator for `stack` on `port`; returns (state, started_now)."""
    if not 1 <= port <= 65535:  # checked before anything starts: nothing to clean up
        raise EmulatorError(f"port must be from 1 to 65535, got {port}; choose another with --port")
    existing = read_state(port)
    if existing and is_running(existing):
        if existing.stack != stack:
            raise EmulatorError(
                f"an emulator for stack {existing.stack!r} already runs on port {port}; "
                f"stop it with `btc-trader local down --port {port}` or use another --port"
            )
        provision(existing)
        return existing, False
    if _answers(port):
        raise EmulatorError(f"port {port} is in use by another program; choose another with --port")
    load_stack_file(stack)  # an invalid stack fails here, before anything starts
    state_dir().mkdir(parents=True, exist_ok=True)
    log_file = state_dir() / f"emulator-{port}.log"
    process = spawn_server(port, log_file)
    state = EmulatorState(
        port=port,
        pid=process.pid,
        stack=stack,
        region=stack_region(stack),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        log_file=str(log_file),
    )
    wait_until_serving(process, port, log_file)
    _state_file(port).write_text(json.dumps(asdict(state), indent=2))
    try:
        provision(state)
    except BaseException:  # a half-provisioned emulator is not left running or recorded
        stop(port)
        raise
    return state, True


def spawn_server(port: int, log_file: Path, serving: str | None = None) -> subprocess.Popen[bytes]:
    """The emulator's server process on `port`, its output appended to `log_file`.

    Not recorded anywhere: `start` records the one `local up` starts; benchmarks and tests that
    compare serving modes (`serving`: see `btc_trader.local.serving`) spawn theirs here.
    """
    command = [sys.executable, "-m", "btc_trader.local.server", "--host", HOST, "--port", str(port)]
    if serving is not None:
        command += ["--serving", serving]
    with log_file.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # outlives the command that started it, like a daemon


def wait_until_serving(process: subprocess.Popen[bytes], port: int, log_file: Path,
                       timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait for the spawned server to answer; when it exits or times out, kill it and say why."""
    deadline = time.monotonic() + timeout_s
    while not _answers(port, 0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            tail = log_file.read_text(errors="replace")[-400:] if log_file.exists() else ""
            raise EmulatorError(f"the emulator did not start on port {port}: {tail.strip() or 'no output'}")
        time.sleep(0.1)


def stop(port: int = DEFAULT_PORT) -> EmulatorState | None:
    """Stop the emulator on `port`; returns what was stopped, None when nothing ran."""
    state = read_state(port)
    if state is None:
        return None
    if _alive(state.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGINT)  # the server exits at once on Ctrl-C (server.py)
        deadline = time.monotonic() + 5
        while _alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(state.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state.pid, signal.SIGKILL)
    _state_file(port).unlink(missing_ok=True)
    if not any(other.stack == state.stack for other in running_states()):
        # What the stopped emulator's functions logged is history now, never shown as current.
        from btc_trader.local.logs import archive_logs

        archive_logs(state.stack)
    return state


# Model services the emulator cannot run; `real_services` sends them to AWS instead.
REAL_SERVICE_ENDPOINTS = {
    "bedrock-runtime": "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "sagemaker-runtime": "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
}


@contextlib.contextmanager
def aws_environment(state: EmulatorState, real_services: tuple[str, ...] = ()) -> Iterator[None]:
    """Point boto3 in this process at the emulator (and restore the environment after).

    With `real_services`, those services go to AWS with your own credentials (profile or env),
    while storage stays on the emulator: it accepts any credentials and never leaves 127.0.0.1.
    """
    values: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": state.endpoint, "AWS_DEFAULT_REGION": state.region, "AWS_REGION": state.region,
    }
    for service, variable in REAL_SERVICE_ENDPOINTS.items():
        values[variable] = f"https://{service}.{state.region}.amazonaws.com" if service in real_services else None
    if not real_services:
        values |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_SESSION_TOKEN": "testing", "AWS_PROFILE": None}
    with patched_environ(values):
        yield


def _client(state: EmulatorState, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=state.endpoint,
        region_name=state.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_table(client: Any, spec: TableSpec, name: str) -> None:
    """Create a table exactly as the spec (keys, indexes, TTL, stream); no-op if it exists."""
    keys = [{"AttributeName": spec.hash_key.name, "KeyType": "HASH"}]
    if spec.range_key:
        keys.append({"AttributeName": spec.range_key.name, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [{"AttributeName": a.name, "AttributeType": a.type} for a in spec.attributes()],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.stream_view_type:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}
    if spec.global_indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.hash_key.name, "KeyType": "HASH"}]
                + ([{"AttributeName": index.range_key.name, "KeyType": "RANGE"}] if index.range_key else []),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.global_indexes
        ]
    try:
        client.create_table(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


LOCAL_ROLE = "btc-trader-local"
# Stands in for the exchange keys; local runs are paper only, so it is never used to trade.
SECRET_PLACEHOLDER = '{"apiKey": "local-placeholder", "secret": "local-placeholder"}'


def _ignore(exc: ClientError, *codes: str) -> None:
    if exc.response["Error"]["Code"] not in codes:
        raise exc


def _placeholder_code() -> bytes:
    from btc_trader.local.workflow_runner import _dummy_zip

    return _dummy_zip()


def provision(state: EmulatorState) -> dict[str, list[str]]:
    """Create every resource of the stack (idempotent; updates functions and the state machine).

    The same settings, naming, table specs, environments and state-machine definition as the
    Pulumi components; the functions' code is a placeholder because invocations are served by
    the local Lambda server (`local start-lambda`, `local run`), which runs the real handlers.
    """
    from btc_trader.stack.environment import function_environments, kill_switch_parameter
    from btc_trader.workflow import definition_json

    settings = load_stack_file(state.stack)
    names = state.names
    dynamodb = _client(state, "dynamodb")
    for spec in TABLES:
        create_table(dynamodb, spec, names.table(spec.role))
    s3 = _client(state, "s3")
    bucket_args: dict[str, Any] = {"Bucket": names.raw_bucket}
    if state.region != "us-east-1":
        bucket_args["CreateBucketConfiguration"] = {"LocationConstraint": state.region}
    try:
        s3.create_bucket(**bucket_args)
    except ClientError as exc:
        _ignore(exc, "BucketAlreadyOwnedByYou", "BucketAlreadyExists")
    s3.put_bucket_versioning(Bucket=names.raw_bucket, VersioningConfiguration={"Status": "Enabled"})
    topic_arn = _client(state, "sns").create_topic(Name=names.alerts_topic)["TopicArn"]
    ssm = _client(state, "ssm")
    try:  # the operator owns the value once created, as in the stack (ignore_changes)
        ssm.put_parameter(Name=kill_switch_parameter(names), Value="off", Type="String",
                          Description='Set to "on" to stop all trading at the next run, without a deploy')
    except ClientError as exc:
        _ignore(exc, "ParameterAlreadyExists")
    if settings.exchange.secret_name:
        try:  # never overwrite a value the user stored
            _client(state, "secretsmanager").create_secret(Name=settings.exchange.secret_name,
                                                           SecretString=SECRET_PLACEHOLDER)
        except ClientError as exc:
            _ignore(exc, "ResourceExistsException")
    if settings.timestream.enabled:
        timestream = _client(state, "timestream-write")
        try:
            timestream.create_database(DatabaseName=names.timestream_database)
        except ClientError as exc:
            _ignore(exc, "ConflictException")
        try:
            timestream.create_table(DatabaseName=names.timestream_database, TableName=names.timestream_table)
        except ClientError as exc:
            _ignore(exc, "ConflictException")
    role_arn = _local_role(state)
    lambda_client = _client(state, "lambda")
    arns = {}
    for role, environment in function_environments(settings, names).items():
        config = {"FunctionName": names.function(role), "Role": role_arn, "Handler": "handler.lambda_handler",
                  "Runtime": settings.lambda_settings.python_runtime,
                  "MemorySize": settings.lambda_settings.memory_mb, "Timeout": settings.lambda_settings.timeout_seconds,
                  "Environment": {"Variables": environment}}
        try:
            arns[role] = lambda_client.create_function(**config, Code={"ZipFile": _placeholder_code()})["FunctionArn"]
        except ClientError as exc:
            _ignore(exc, "ResourceConflictException")
            arns[role] = lambda_client.update_function_configuration(**config)["FunctionArn"]
    from btc_trader.stack.environment import ML_PREDICTOR, RISK_MANAGER, TRADE_EXECUTOR

    definition = definition_json(arns[ML_PREDICTOR], arns[RISK_MANAGER], arns[TRADE_EXECUTOR], topic_arn,
                                 state_table=names.table(TRADING_STATE.role),
                                 lambda_timeout_s=settings.lambda_settings.timeout_seconds)
    sfn = _client(state, "stepfunctions")
    existing = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == names.state_machine]
    if existing:
        sfn.update_state_machine(stateMachineArn=existing[0], definition=definition)
    else:
        sfn.create_state_machine(name=names.state_machine, definition=definition, roleArn=role_arn)
    return resources(state)


def _local_role(state: EmulatorState) -> str:
    iam = _client(state, "iam")
    try:
        return iam.get_role(RoleName=LOCAL_ROLE)["Role"]["Arn"]
    except ClientError as exc:
        _ignore(exc, "NoSuchEntity")
    return iam.create_role(RoleName=LOCAL_ROLE, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                       "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]


def state_machine_arn(state: EmulatorState) -> str:
    return f"arn:aws:states:{state.region}:{LOCAL_ACCOUNT}:stateMachine:{state.names.state_machine}"


def resources(state: EmulatorState) -> dict[str, list[str]]:
    """What the emulator holds, by kind."""
    secrets = _client(state, "secretsmanager").list_secrets()["SecretList"]
    return {
        "tables": sorted(_client(state, "dynamodb").list_tables()["TableNames"]),
        "buckets": sorted(b["Name"] for b in _client(state, "s3").list_buckets()["Buckets"]),
        "topics": sorted(t["TopicArn"] for t in _client(state, "sns").list_topics()["Topics"]),
        "functions": sorted(f["FunctionName"] for f in _client(state, "lambda").list_functions()["Functions"]),
        "state machines": sorted(m["name"] for m in _client(state, "stepfunctions").list_state_machines()["stateMachines"]),
        "parameters": sorted(p["Name"] for p in _client(state, "ssm").describe_parameters()["Parameters"]),
        "secrets": sorted(s["Name"] for s in secrets),
    }
