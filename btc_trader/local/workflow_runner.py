"""Execute the real trading state machine locally, its Lambda tasks run by the real handlers.

moto interprets the ASL (Choice, Retry, Catch, ResultPath, sns:publish); its docker-free Lambda
backend is patched so that each task calls our handler in-process, and an exception becomes a
Lambda "Unhandled" error exactly as in AWS, so Retry and Catch behave as deployed. moto's Retry
sleeps for real; the interval is skipped here (an internal API, pinned with moto's version and
guarded by a canary test).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3

Handler = Callable[[dict[str, Any]], Any]
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
LAMBDA_ROLE = "arn:aws:iam::123456789012:role/btc-trader-local"


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


@contextlib.contextmanager
def handlers_as_lambdas(handlers: dict[str, Handler]) -> Iterator[dict[str, str]]:
    """Register each handler as a Lambda function (name -> ARN) whose invocations run it."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.split(":function:")[-1].split(":")[0]
        handler = handlers[name]
        try:
            result = handler(json.loads(body) if body else {})
        except Exception as exc:  # becomes the task's error, matched by ErrorEquals
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        return json.dumps(result).encode()

    iam = boto3.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=LAMBDA_ROLE.split("/")[-1], AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                           "Action": "sts:AssumeRole"}],
        }))
    client = boto3.client("lambda")
    arns = {}
    for name in handlers:
        arns[name] = client.create_function(
            FunctionName=name, Runtime="python3.12", Role=LAMBDA_ROLE, Handler="handler.lambda_handler",
            Code={"ZipFile": _dummy_zip()},
        )["FunctionArn"]
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    # Replace the retrier's own reference to `time`, not `time.sleep` itself: patching the
    # function would turn every sleep in the process (pollers included) into a busy loop.
    with mock.patch.object(LambdaSimpleBackend, "invoke", invoke), mock.patch.object(
        retrier_decl, "time", SimpleNamespace(sleep=lambda _seconds: None)
    ):
        yield arns


def run_execution(state_machine_arn: str, payload: dict[str, Any], name: str, timeout_s: float = 60) -> dict[str, Any]:
    """Start an execution, wait for it to end, and return its description (status, output, error).

    moto runs executions on a background thread; nothing else may run meanwhile, because the
    handlers share this process's environment.
    """
    client = boto3.client("stepfunctions")
    execution = client.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    deadline = time.monotonic() + timeout_s
    while True:
        described = client.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {name} still running after {timeout_s:g} s")
        time.sleep(0.02)


def visited_states(execution_arn: str) -> list[str]:
    """The states an execution entered, in order."""
    history = boto3.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def failure_cause(execution_arn: str) -> str:
    """The first step failure of an execution, as "error: cause"."""
    history = boto3.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    for event in history:
        for key in ("lambdaFunctionFailedEventDetails", "taskFailedEventDetails"):
            details = event.get(key)
            if details and details.get("error") != "WorkflowFailed":
                return f"{details.get('error')}: {details.get('cause', '')}"
    return "unknown failure"
