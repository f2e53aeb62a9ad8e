"""The emulator process: moto's server, configured to run the stack's state machine for real.

`btc-trader local up` starts `python -m btc_trader.local.server --port N`. Compared with a bare
`moto_server` it

- executes Step Functions state machines (moto's ASL interpreter) instead of only storing them;
- sends every Lambda invocation (from the state machine or from any boto3 client) to the local
  Lambda server that `btc-trader local start-lambda` or `btc-trader local run` registers, the way
  Step Functions Local is pointed at `sam local start-lambda`. With no Lambda server running, an
  invocation fails with an error that says how to start one;
- skips the real sleep between a task's retries, so a Retry of the deployed definition does not
  stall a local run for seconds (an internal moto API, pinned with moto's version);
- names an execution started without a name with a generated id, as AWS does (the workflow reads
  `$$.Execution.Name` as its execution id; moto would pass null and refuse the next unnamed start);
- refuses the model services it cannot run (Bedrock, SageMaker runtime) with an error that names
  the fix, instead of moto's HTML "500 Internal Server Error" page or a canned reply;
- answers DynamoDB queries at the cost DynamoDB's have (`fast_query`), so `local run` is not bound
  by moto walking whole partitions;
- serves moto's app under waitress, with keep-alive connections and a bounded pool of threads,
  instead of werkzeug's development server (a new connection and thread per request), and cuts
  moto's per-request overhead without changing its answers (`serving`; `--serving moto` runs
  moto's own server, for the parity test and the benchmark). A Lambda invocation waiting for the
  local Lambda server never takes the pool's last threads: its handler's calls need them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
import uuid
from types import SimpleNamespace
from typing import Any

from btc_trader.local.lambda_registry import registered_lambda_server

INVOKE_TIMEOUT_S = 150  # above the workflow's 120 s task timeout


def _function_error(response_headers: dict[str, Any], error_type: str, message: str) -> bytes:
    response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def forward_invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                   response_headers: dict[str, Any]) -> bytes:
    """LambdaSimpleBackend.invoke, forwarded to the registered local Lambda server."""
    port = int(os.environ["MOTO_PORT"])
    server = registered_lambda_server(port)
    if server is None:
        return _function_error(
            response_headers, "LocalLambdaServerNotRunning",
            f"no local Lambda server serves the emulator on port {port}; start one with "
            f"`btc-trader local start-lambda --emulator-port {port}` (or use `btc-trader local run`)",
        )
    name = function_name.split(":function:")[-1].split(":")[0]
    payload = body.encode() if isinstance(body, str) else (body or b"{}")
    request = urllib.request.Request(
        f"{server.endpoint}/2015-03-31/functions/{name}/invocations", data=payload, method="POST",
        headers={"Content-Type": "application/json"},
    )
    from btc_trader.local import serving

    slots = serving.invoke_slots or contextlib.nullcontext()
    try:
        with slots, urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT_S) as response:
            error = response.headers.get("X-Amz-Function-Error")
            if error:
                response_headers["x-amz-function-error"] = error
            return response.read()
    except urllib.error.HTTPError as exc:  # the Lambda server refused the request itself
        return _function_error(response_headers, "LocalLambdaServerError", exc.read().decode(errors="replace"))
    except OSError as exc:
        return _function_error(response_headers, "LocalLambdaServerUnreachable",
                               f"the local Lambda server at {server.endpoint} did not answer: {exc}")


MODEL_NEEDS_AWS = ("{service} needs AWS: the local emulator cannot run this model; run offline with "
                   "`--models custom`, or call AWS with your own credentials with `--real-models`")


def _refuse_model_call(service: str) -> Any:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.core.exceptions import JsonRESTError

        raise JsonRESTError("ModelNeedsAWSException", MODEL_NEEDS_AWS.format(service=service))

    return refuse


def configure_moto() -> None:
    """Make moto execute state machines and route Lambda invocations to the local handlers."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from btc_trader.local import fast_query

    default_user_config["lambda"] = {"use_docker": False}
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    LambdaSimpleBackend.invoke = forward_invoke
    retrier_decl.time = SimpleNamespace(sleep=lambda _seconds: None)
    fast_query.install()
    from moto.bedrockruntime.responses import BedrockRuntimeResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    for operation in ("converse", "converse_stream", "invoke_model"):
        setattr(BedrockRuntimeResponse, operation, _refuse_model_call("Bedrock"))
    for operation in ("invoke_endpoint", "invoke_endpoint_async"):
        setattr(SageMakerRuntimeResponse, operation, _refuse_model_call("SageMaker"))
    start_execution = StepFunctionsParserBackend.start_execution
    if not getattr(start_execution, "names_unnamed", False):
        def start_named_execution(self: Any, state_machine_arn: str, name: str | None = None, *args: Any,
                                  **kwargs: Any) -> Any:
            return start_execution(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

        start_named_execution.names_unnamed = True  # type: ignore[attr-defined]
        StepFunctionsParserBackend.start_execution = start_named_execution


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="btc-trader's local AWS emulator (moto server)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serving", choices=["fast", "routed", "waitress", "moto"], default="fast",
                        help="fast (default): waitress, routing remembered, DynamoDB's JSON calls straight to "
                             "moto's handler; routed: without the latter; waitress: moto's app as is under "
                             "waitress; moto: moto's own server (werkzeug's, a connection and a thread per "
                             "request). All but fast are for parity tests and benchmarks")
    args = parser.parse_args(argv)
    # moto's state machine calls Lambda through its own server's port.
    os.environ["MOTO_PORT"] = str(args.port)
    configure_moto()
    # One access-log line per request cost ~7% of the emulator's time during `local run` and grew
    # its log file by thousands of lines a minute; errors are still logged.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.serving == "moto":
        from moto.server import main as moto_main

        moto_main(["-H", args.host, "-p", str(args.port)])
        return
    from btc_trader.local import serving

    # As moto's server: Ctrl-C (`local down` sends SIGINT to the process group) or SIGTERM exits
    # at once; the pool's threads are daemons and do not hold the exit.
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    serving.serve(args.host, args.port, args.serving)


def _exit_now(signum: int, frame: Any) -> None:
    sys.exit(0)


if __name__ == "__main__":
    main()
