"""`sam local start-lambda`, for this stack: the Lambda Invoke API on 127.0.0.1.

boto3 clients (`endpoint_url=http://127.0.0.1:PORT`) and the emulator's state machine invoke
the stack's functions by name; each invocation runs the function's built bundle in its warm
worker of the runtime's Python (btc_trader.local.workers; in this process with --in-process) with
the deployed environment, against the emulator, one at a time. A handler exception is returned as Lambda returns it:
status 200 with `X-Amz-Function-Error: Unhandled` and an `errorType`/`errorMessage` body.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TextIO

from btc_trader.local import lambda_registry
from btc_trader.local.emulator import HOST, EmulatorError, EmulatorState
from btc_trader.local.invoke import FUNCTIONS, InvokeError, function_role, invoke

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


class LocalLambdaServer:
    """Serves the stack's functions; `start()` in a thread, or `serve_forever()` in the foreground."""

    def __init__(self, state: EmulatorState, port: int = 0, env_vars: dict[str, dict[str, str]] | None = None,
                 environments: dict[str, dict[str, str]] | None = None, real_models: bool = False,
                 echo: TextIO | None = None) -> None:
        self.state = state
        self.env_vars = env_vars or {}
        self.environments = environments or {}  # a run's complete environments (replay, offline models)
        self.real_models = real_models
        self.echo = echo
        self.invocations = 0
        self._previous: lambda_registry.LambdaServerRecord | None = None
        self._thread: threading.Thread | None = None
        try:
            self.httpd = HTTPServer((HOST, port), self._handler_class())
        except OSError as exc:
            raise EmulatorError(f"cannot serve the Lambda API on {HOST}:{port} ({exc.strerror}); "
                                "choose another --port") from None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def role_of(self, name: str) -> str | None:
        return function_role(self.state.names, name)

    def run(self, role: str, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
        return invoke(role, event, self.state, real_models=self.real_models, env_vars=self.env_vars,
                      echo=self.echo, env=self.environments.get(role))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                if server.echo is not None:
                    server.echo.write(f"lambda api: {format % args}\n")

            def _reply(self, status: int, body: Any, function_error: str | None = None,
                       error_type: str | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error_type:  # how boto3 names the exception it raises
                    self.send_header("X-Amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(payload)))
                if function_error:
                    self.send_header("X-Amz-Function-Error", function_error)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                match = _INVOKE_PATH.match(self.path.split("?")[0])
                role = server.role_of(match["name"]) if match else None
                if role is None:
                    known = ", ".join(sorted(FUNCTIONS))
                    self._reply(404, {"Type": "User", "message": f"Function not found: {self.path} (known: {known})"},
                                error_type="ResourceNotFoundException")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(body) if body else {}
                except ValueError as exc:
                    self._reply(400, {"Type": "User", "message": f"the payload is not JSON: {exc}"},
                                error_type="InvalidRequestContentException")
                    return
                try:
                    outcome = server.run(role, event)
                except InvokeError as exc:
                    self._reply(400, {"Type": "User", "message": str(exc)}, error_type="InvalidParameterValueException")
                    return
                if self.headers.get("X-Amz-Invocation-Type") == "Event":
                    self._reply(202, {})
                    return
                self._reply(200, outcome["result"], None if outcome["ok"] else "Unhandled")

        return Handler

    def register(self) -> None:
        """Make the emulator send its Lambda invocations (the state machine's tasks) here."""
        self._previous = lambda_registry.register(self.state.port, self.port)

    def start(self) -> LocalLambdaServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="local-lambda", daemon=True)
        self._thread.start()
        self.register()
        return self

    def serve_forever(self) -> None:
        self.register()
        try:
            self.httpd.serve_forever()
        finally:
            self.close()

    def close(self) -> None:
        lambda_registry.unregister(self.state.port, self.port, self._previous)
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()

    def __enter__(self) -> LocalLambdaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def echo_stream(quiet: bool) -> TextIO | None:
    return None if quiet else sys.stderr
