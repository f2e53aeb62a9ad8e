"""The emulator process: moto's server, configured to run the stack's state machine for real.

`btc-trader local up` starts `python -m btc_trader.local.server --port N`. Compared with a bare
`moto_server` it

- executes Step Functions state machines (moto's ASL interpreter) instead of only storing them;
- sends every Lambda invocation (from the state machine or from any boto3 client) to the local
  Lambda server that `btc-trader local start-lambda` or `btc-trader local run` registers, the way
  Step Functions Local is pointed at `sam local start-lambda`. With no Lambda server running, an
  invocation fails with an error that says how to start one;
- skips the real sleep between a task's retries, so a Retry of the deployed definition does not
  stall a local run for seconds (an internal moto API, pinned with moto's version).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
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
    try:
        with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT_S) as response:
            error = response.headers.get("X-Amz-Function-Error")
            if error:
                response_headers["x-amz-function-error"] = error
            return response.read()
    except urllib.error.HTTPError as exc:  # the Lambda server refused the request itself
        return _function_error(response_headers, "LocalLambdaServerError", exc.read().decode(errors="replace"))
    except OSError as exc:
        return _function_error(response_headers, "LocalLambdaServerUnreachable",
                               f"the local Lambda server at {server.endpoint} did not answer: {exc}")


def configure_moto() -> None:
    """Make moto execute state machines and route Lambda invocations to the local handlers."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    default_user_config["lambda"] = {"use_docker": False}
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    LambdaSimpleBackend.invoke = forward_invoke
    retrier_decl.time = SimpleNamespace(sleep=lambda _seconds: None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="btc-trader's local AWS emulator (moto server)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # moto's state machine calls Lambda through its own server's port.
    os.environ["MOTO_PORT"] = str(args.port)
    configure_moto()
    from moto.server import main as moto_main

    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
