"""How the emulator serves HTTP: moto's own WSGI app under waitress, with less work per request.

moto's `moto_server` runs werkzeug's development server, which answers every request with
`Connection: close`: each of the ~29 storage calls of a `local run` decision cost a new TCP
connection on the client and a new thread in the emulator. Here the same app is served by
waitress (HTTP/1.1 keep-alive, a fixed pool of threads, 127.0.0.1 only), and costs that are
pure overhead are cut, without changing what moto answers (each was measured, and kept because
it paid: benchmarks/emulator_request_bench.py):

- routing: moto finds the backend for every request again (listing its own package directory on
  the way); `EmulatorApp` remembers the answer per routing key (everything moto's choice reads
  for a signed request), so each distinct key is resolved by moto once;
- DynamoDB's JSON protocol: a `DynamoDB_20120810.*` request goes straight to moto's own
  `DynamoHandler`, built and answered as moto's Flask view does (same handler, same response
  class, the same CORS header), without Flask's routing and request context;
- moto's per-request reflection: the list of a handler class's methods, and the keys each result
  member may sit under in moto's serializer, are computed once instead of on every request.

What werkzeug's server and moto's request handler give moto, and waitress alone would not, is
given here too: `RAW_URI` (S3 keys with encoded characters), S3 metadata headers whose names
contain underscores (both servers drop them; moto's handler restores them), response header
names spelled as moto spells them (waitress capitalizes them, and boto3 keeps the case of S3
metadata keys), and werkzeug's 500 page for an error moto does not handle. A parity test answers
one corpus of requests with this server and with moto's plain one (tests/local/test_serving.py).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from typing import Any

from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.task import WSGITask

POOL_THREADS = 8
# Pool threads never taken by a Lambda invocation forwarded to the local Lambda server: that
# invocation's handler calls back into the emulator, and needs a free thread to be answered.
INVOKE_RESERVED_THREADS = 2
# Kept-alive connections stay open until their client closes them or they idle this long. moto's
# Step Functions make a boto3 client per task and never close it, so connections pile up until
# those clients are collected; past waitress's default limit (100) new connections would wait.
CONNECTION_LIMIT = 1000
IDLE_CONNECTION_TIMEOUT_S = 60
ROUTE_CACHE_SIZE = 4096  # distinct routing keys remembered (S3 object paths are each a key)

DYNAMODB_TARGET = "DynamoDB_20120810."
# Carries the original spelling of preserved header names from the parser to the app; a client
# cannot send it (the parser drops any header of that name before setting its own).
_PRESERVED_NAMES_HEADER = "BTC_TRADER_PRESERVED_HEADER_NAMES"
# Signing services moto routes by the operation the request's method and URI name: not cached.
_URI_ROUTED_SERVICES = frozenset({"bedrock", "bedrock-agentcore"})


# A header line whose name starts x-amz-meta- and has an underscore: the only ones moto preserves.
_UNDERSCORED_METADATA = re.compile(rb"^x-amz-meta-[^:\r\n]*_[^:\r\n]*:", re.IGNORECASE | re.MULTILINE)


class _RequestParser(HTTPRequestParser):
    """waitress's parser, keeping S3 metadata headers with underscores as moto's handler does."""

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        self.headers.pop(_PRESERVED_NAMES_HEADER, None)
        if not _UNDERSCORED_METADATA.search(header_plus):
            return
        names: dict[str, str] = {}
        values: dict[str, list[str]] = {}
        for line in header_plus.split(b"\r\n")[1:]:
            raw_name, colon, raw_value = line.partition(b":")
            if not colon or b"_" not in raw_name:
                continue
            name = raw_name.decode("latin-1")
            if not should_preserve_original_header_name(name):
                continue
            key = environ_key_for_header(name)[len("HTTP_"):]
            if key in self.headers:  # a dashed header of the same WSGI name wins, as in moto
                continue
            names.setdefault(f"HTTP_{key}", name)
            values.setdefault(key, []).append(raw_value.strip(b" \t").decode("latin-1"))
        for key, key_values in values.items():
            self.headers[key] = ",".join(key_values)
        if names:
            self.headers[_PRESERVED_NAMES_HEADER] = json.dumps(names)


class _Task(WSGITask):
    """waitress's task, sending header names as moto spells them (waitress capitalizes them).

    Header names are case-insensitive, but a client keeps the spelling of the part after a
    prefix: boto3 reads S3's `x-amz-meta-source` as metadata key `source`, `X-Amz-Meta-Source`
    as `Source`.
    """

    def build_response_header(self) -> bytes:
        spelled: dict[str, str] = {}
        for name, _ in self.response_headers:
            spelled.setdefault("-".join(part.capitalize() for part in name.split("-")), name)
        first, *lines = super().build_response_header().decode("latin-1").split("\r\n")
        for index, line in enumerate(lines):
            name, colon, value = line.partition(":")
            if colon and name in spelled:
                lines[index] = f"{spelled[name]}:{value}"
        return "\r\n".join([first, *lines]).encode("latin-1")


class _Channel(HTTPChannel):
    parser_class = _RequestParser
    task_class = _Task


def _route_key(environ: dict[str, Any]) -> tuple[Any, ...] | None:
    """What moto's choice of backend reads from a signed request; None: let moto choose each time.

    Unsigned requests are routed by their body, and Bedrock's by the operation their URI names.
    """
    auth = environ.get("HTTP_AUTHORIZATION")
    if not auth:
        return None
    try:
        _, _, region, service, _ = auth.split(",")[0].split()[1].split("/")
    except (IndexError, ValueError):
        return None
    if service.lower() in _URI_ROUTED_SERVICES:
        return None
    path = environ.get("PATH_INFO") or ""
    if service == "s3":
        # Every object key is its own path: moto reads an S3 path only for these prefixes
        # (get_application, infer_service_region_host), so they stand for it in the key.
        path = (path.startswith("/moto-api") or path == "/favicon.ico",
                path.startswith(("/latest/meta-data/", "/latest/api/")), path.startswith("/v20180820/"))
    return (service, region, environ.get("REQUEST_METHOD"), path, environ.get("HTTP_X_AMZ_TARGET"),
            environ.get("HTTP_HOST"))


class EmulatorApp(DomainDispatcherApplication):
    """moto's server app, its routing remembered and DynamoDB's JSON calls sent to its handler."""

    def __init__(self, cache_routes: bool = True, direct_dynamodb: bool = True) -> None:
        super().__init__(create_backend_app)
        self.cache_routes = cache_routes
        self.direct_dynamodb = direct_dynamodb
        self._routes: dict[tuple[Any, ...], Any] = {}

    def get_application(self, environ: dict[str, Any]) -> Any:
        """moto's app for this request, resolved by moto once per routing key."""
        key = _route_key(environ) if self.cache_routes else None
        if key is None:
            return super().get_application(environ)
        app = self._routes.get(key)
        if app is None:
            app = super().get_application(environ)
            if len(self._routes) >= ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[key] = app
        return app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return self._answer(environ, start_response)
        except Exception:
            # As werkzeug's server answers an error moto did not handle: its HTML 500 page, and
            # the traceback in the emulator's log.
            from werkzeug.exceptions import InternalServerError

            print(f"Error on request:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            return InternalServerError()(environ, start_response)

    def _answer(self, environ: dict[str, Any], start_response: Any) -> Any:
        # What werkzeug's server and moto's request handler put in the environ, and waitress does not.
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        names = environ.pop(f"HTTP_{_PRESERVED_NAMES_HEADER}", None)
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = json.loads(names) if names else {}
        app = self.get_application(environ)
        if (self.direct_dynamodb and getattr(app, "service", None) == "dynamodb"
                and environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == "/"
                and "HTTP_ORIGIN" not in environ
                and environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET)):
            return _answer_dynamodb(environ, start_response)
        return app(environ, start_response)


# moto's tables are plain dicts and lists without locks, and pool threads answer concurrent
# requests (`local run` overlaps a tick's evaluator with the next tick's collections): one
# DynamoDB call at a time, each whole, as DynamoDB applies each request atomically. Under the
# GIL this costs nothing the interpreter was not already serialising.
_DYNAMODB_CALLS = threading.Lock()


def _answer_dynamodb(environ: dict[str, Any], start_response: Any) -> Any:
    """moto's DynamoHandler, called as moto's Flask view calls it (convert_to_flask_response)."""
    from botocore.exceptions import ClientError
    from flask import Response
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_api import recorder
    from moto.moto_server.werkzeug_app import BackendRequest

    request = BackendRequest(environ)
    recorder._record_request(request)
    try:
        with _DYNAMODB_CALLS:
            result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
    except ClientError as exc:
        result = 400, {}, exc.response["Error"]["Message"]
    if len(result) == 3:
        status, headers, content = result
    else:
        status, headers, content = 200, {}, result
    response = Response(response=content, status=status, headers=headers)
    # What flask-cors (moto's app registers it for every path) adds to a request without Origin.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response(environ, start_response)


class InvokeSlots:
    """Pool threads a forwarded Lambda invocation may hold; beyond them, Lambda's throttle error.

    A forwarded invocation holds its pool thread until the local Lambda server answers, and the
    handler it runs calls back into the emulator; with every thread held that way nothing could
    answer the handler, so the pool keeps `INVOKE_RESERVED_THREADS` free for it.
    """

    def __init__(self, slots: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, slots))

    def __enter__(self) -> InvokeSlots:
        if not self._slots.acquire(blocking=False):
            from moto.core.exceptions import JsonRESTError

            error = JsonRESTError("TooManyRequestsException",
                                  "Rate Exceeded: every thread of the local emulator that may wait for the local "
                                  "Lambda server is waiting for it; retry when an invocation has finished")
            error.code = 429
            raise error
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._slots.release()


# Set by `serve`; None under any other server (moto's own starts a thread per request).
invoke_slots: InvokeSlots | None = None


# --serving: how the emulator process serves; all but "fast" are for parity tests and benchmarks.
SERVING_MODES = {
    "fast": {"cache_routes": True, "direct_dynamodb": True},
    "waitress": {"cache_routes": False, "direct_dynamodb": False},  # moto's app as is, under waitress
    "routed": {"cache_routes": True, "direct_dynamodb": False},
}


def remember_handler_methods() -> None:
    """moto lists a response class's methods (inspect.getmembers) on every request: once per class.

    The handler classes are complete before the first request (configure_moto patches them at
    start), so the list moto computes for a class does not change while the emulator serves.
    """
    import moto.core.responses as responses

    if getattr(responses.method_names_from_class, "btc_trader_cached", False):
        return
    compute = responses.method_names_from_class
    cache: dict[type, list[str]] = {}

    def method_names_from_class(clazz: type) -> list[str]:
        names = cache.get(clazz)
        if names is None:
            names = cache[clazz] = compute(clazz)
        return names

    method_names_from_class.btc_trader_cached = True  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class


ALIAS_CACHE_SIZE = 65536


def remember_attribute_aliases() -> None:
    """moto's serializer finds every member of a result again through six alias providers: once.

    For each member of each result, moto's `AttributePicker` asks its alias providers which keys
    the value may sit under. For a plain dict (every DynamoDB result) the answer depends only on
    the providers, the member's shape, its parent shape and the member's name, never on the
    dict's contents, so it is remembered by those.
    """
    from moto.core.serialize import AttributePicker, XFormedAttributePicker

    for picker in (AttributePicker, XFormedAttributePicker):
        compute = picker.__dict__["get_possible_keys"]
        if getattr(compute, "btc_trader_cached", False):
            continue
        picker.get_possible_keys = _remembered_possible_keys(compute)


def _remembered_possible_keys(compute: Any) -> Any:
    cache: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def get_possible_keys(self: Any, context: Any) -> Any:
        if type(context.obj) is not dict:  # another object may alias by its class, Meta or state
            return compute(self, context)
        shape = context.shape
        key = (tuple(self.alias_providers), shape, getattr(shape, "parent", None), context.key)
        keys = cache.get(key)
        if keys is None:
            if len(cache) >= ALIAS_CACHE_SIZE:
                cache.clear()
            keys = cache[key] = tuple(compute(self, context))
        return keys

    get_possible_keys.btc_trader_cached = True  # type: ignore[attr-defined]
    return get_possible_keys


def serve(host: str, port: int, mode: str = "fast", threads: int = POOL_THREADS) -> None:
    """Serve the emulator on host:port until the process is interrupted."""
    from waitress.server import create_server

    if mode == "fast":
        remember_handler_methods()
        remember_attribute_aliases()
    global invoke_slots
    invoke_slots = InvokeSlots(threads - INVOKE_RESERVED_THREADS)
    server = create_server(EmulatorApp(**SERVING_MODES[mode]), host=host, port=port, threads=threads,
                           connection_limit=CONNECTION_LIMIT, channel_timeout=IDLE_CONNECTION_TIMEOUT_S)
    server.channel_class = _Channel
    print(f"btc-trader emulator: moto {_moto_version()} under waitress on http://{host}:{port} "
          f"({threads} threads, keep-alive, serving {mode})", flush=True)
    server.run()


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")
