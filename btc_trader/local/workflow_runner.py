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
import zipfile
from collections.abc import Callable, Iterator
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

    client = boto3.client("lambda")
    arns = {}
    for name in handlers:
        arns[name] = client.create_function(
            FunctionName=name, Runtime="python3.12", Role=LAMBDA_ROLE, Handler="handler.lambda_handler",
            Code={"ZipFile": _dummy_zip()},
        )["FunctionArn"]
    with mock.patch.object(LambdaSimpleBackend, "invoke", invoke), mock.patch(
        "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time.sleep", lambda _s: None
    ):
        yield arns


def run_execution(state_machine_arn: str, payload: dict[str, Any], name: str) -> dict[str, Any]:
    """Start an execution and return its description (status, output, error)."""
    client = boto3.client("stepfunctions")
    execution = client.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    return client.describe_execution(executionArn=execution["executionArn"])


def visited_states(execution_arn: str) -> list[str]:
    """The states an execution entered, in order."""
    history = boto3.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
