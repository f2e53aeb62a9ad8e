"""Run the built bundles as Lambda runs them: one warm worker process per function (SAM's containers).

Each worker is an interpreter of the runtime's Python version (`python3.12 -I -S`: no
site-packages, no PYTHON* variables) whose path holds only what `pulumi up` uploads: the
function's bundle unzipped from `build/`, the dependency layer, the Powertools layer stand-in and
boto3. Its first invocation pays the cold start (the handler module's import, reported as
`Init Duration`); later ones reuse it, as Lambda reuses a warm container. A changed environment
is a new container. Each invocation writes Lambda's START / END / REPORT lines around the
handler's own logs into the function's local log.

When the runtime's interpreter or the build is missing, the handlers run in this process in the
development venv instead (said once on stderr); `--in-process` (BTC_TRADER_LOCAL_IN_PROCESS=1)
chooses that mode on purpose, e.g. to debug a handler with breakpoints.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import os
import platform
import select
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from btc_trader.build import BuildError, BuildOutput, build
from btc_trader.build.layers import MACHINES
from btc_trader.build.runtime import lambda_path, runtime_python
from btc_trader.stack.project import find_project_root
from btc_trader.stack.settings import load_stack_file_cached

IN_PROCESS_VARIABLE = "BTC_TRADER_LOCAL_IN_PROCESS"
_MARK = "\x1ebtc-trader-worker "  # a line from the worker's protocol, not the handler's output

_WORKER_SCRIPT = r"""
import importlib, json, math, resource, sys, time, traceback
MARK = "\x1ebtc-trader-worker "
def send(message):
    sys.stdout.write(MARK + json.dumps(message) + "\n")
    sys.stdout.flush()
init = json.loads(sys.stdin.readline())
sys.path[:0] = init["path"]
print(f"INIT_START Runtime Version: python:{sys.version.split()[0]}\tRuntime Version ARN: local:{sys.executable}",
      flush=True)
started = time.perf_counter()
try:
    module_name, _, function_name = init["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
except Exception as exc:
    traceback.print_exc()
    send({"init_error": {"errorType": f"Runtime.ImportModuleError", "errorMessage":
          f"Unable to import module '{init['handler'].rpartition('.')[0]}': {type(exc).__name__}: {exc}"}})
    sys.exit(0)
init_ms = (time.perf_counter() - started) * 1000
send({"ready": True, "init_ms": init_ms, "init_cpu_ms": time.process_time() * 1000, "python": sys.version.split()[0]})

class Context:
    def __init__(self, request_id, deadline):
        self.function_name = init["function_name"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = init["memory_mb"]
        self.invoked_function_arn = init["arn"]
        self.aws_request_id = request_id
        self.log_group_name = "/aws/lambda/" + init["function_name"]
        self.log_stream_name = "local"
        self._deadline = deadline
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

first = True
for line in sys.stdin:
    request = json.loads(line)
    request_id = request["request_id"]
    print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
    started = time.perf_counter()
    context = Context(request_id, time.monotonic() + init["timeout_s"])
    try:
        # Serialised once: the result as JSON, as Lambda returns it (a result JSON cannot hold is an error).
        outcome = '{"ok": true, "result": ' + json.dumps(handler(request["event"], context)) + "}"
    except Exception as exc:
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        print("[ERROR] " + "".join(traceback.format_exception(exc)).rstrip(), flush=True)
        outcome = json.dumps({"ok": False, "result": error})
    duration = (time.perf_counter() - started) * 1000
    used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    report = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {math.ceil(duration)} ms"
              f"\tMemory Size: {init['memory_mb']} MB\tMax Memory Used: {used} MB")
    if first:
        report += f"\tInit Duration: {init_ms:.2f} ms"
    first = False
    # END, REPORT and the outcome in one write: one wake-up of the runner, not three.
    sys.stdout.write(f"END RequestId: {request_id}\n{report}\n{MARK}{outcome}\n")
    sys.stdout.flush()
# The runner closed our stdin: the container is done. Lambda stops a sandbox without tearing the
# interpreter down; so does this (a full teardown of boto3 and friends took ~0.3 s per worker).
sys.stdout.flush()
import os
os._exit(0)
"""


_READ_SIZE = 1 << 16


def _decoded(line: bytes) -> str:
    """A line of the worker's output as text, with universal newlines (as a text-mode pipe reads it)."""
    text = line.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


class WorkerOutput:
    """A worker's stdout (its handler's output and the protocol's lines), read without a thread.

    Read by whoever invokes the worker, one invocation at a time: no reader thread, no queue, no
    hand-over between threads for every line. Lines are split here, so a line longer than a read
    (a large result) is joined once, when its end arrives.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._poll = select.poll()  # not select.select: no limit on the descriptor's number
        self._poll.register(fd, select.POLLIN)
        self._lines: collections.deque[bytes] = collections.deque()  # read, not yet forwarded
        self._partial: list[bytes] = []  # the start of a line whose end has not arrived yet
        self._eof = False

    def next_message(self, log: TextIO, timeout_s: float) -> dict[str, Any] | None:
        """Forward output lines to `log` until a protocol message, returned; None when the
        output ended first. TimeoutError when no line comes for `timeout_s` seconds."""
        deadline = time.monotonic() + timeout_s
        while True:
            while self._lines:
                text = _decoded(self._lines.popleft())
                deadline = time.monotonic() + timeout_s
                if text.startswith(_MARK):
                    return json.loads(text[len(_MARK):])
                log.write(text)
            if self._eof:
                if self._partial:  # the last words of a worker that died mid-line
                    log.write(_decoded(b"".join(self._partial)))
                    self._partial = []
                return None
            remaining = deadline - time.monotonic()
            if not (remaining > 0 and self._poll.poll(remaining * 1000)):
                if time.monotonic() < deadline:
                    continue
                raise TimeoutError(f"no output for {timeout_s:.2f} s")
            chunk = os.read(self.fd, _READ_SIZE)
            if not chunk:
                self._eof = True
            elif b"\n" not in chunk:
                self._partial.append(chunk)
            else:
                *complete, rest = chunk.split(b"\n")
                complete[0] = b"".join([*self._partial, complete[0]])
                self._partial = [rest] if rest else []
                self._lines.extend(line + b"\n" for line in complete)


class WorkerError(RuntimeError):
    """The worker died or timed out (Lambda's Runtime.ExitError / Task timed out)."""


class HandlerFailed(Exception):  # noqa: N818 - named as what Lambda reports
    """The handler raised: carries Lambda's errorType and errorMessage."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def handler_error(body: dict[str, str]) -> HandlerFailed:
    """Lambda's error body as an exception whose class bears the handler's error type (e.g. ValueError)."""
    error_type = str(body.get("errorType", "Error"))
    kind = type(error_type.replace(".", "_"), (HandlerFailed,), {})
    return kind(error_type, str(body.get("errorMessage", "")))


@dataclass
class Invocation:
    ok: bool
    result: Any
    init_ms: float | None  # set on the invocation that paid the cold start


class Worker:
    """One warm container: a runtime interpreter with the function's bundle and layers on its path."""

    def __init__(self, python: str, bundle_dir: Path, output: BuildOutput, handler: str, env: dict[str, str],
                 function_name: str, arn: str, memory_mb: int, timeout_s: int) -> None:
        self.env, self.timeout_s = env, timeout_s
        self.lock = threading.Lock()
        # Binary pipes, read here by whoever invokes (one at a time, under `lock`): no reader
        # thread, no queue, no hand-over between threads for every line of output.
        self.process = subprocess.Popen(
            [python, "-I", "-S", "-u", "-c", _WORKER_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, cwd=bundle_dir)
        assert self.process.stdout is not None
        self._output = WorkerOutput(self.process.stdout.fileno())
        self._send({"path": lambda_path(bundle_dir, output), "handler": handler, "function_name": function_name,
                    "arn": arn, "memory_mb": memory_mb, "timeout_s": timeout_s})
        self.init_ms: float | None = None
        self.init_cpu_ms = 0.0  # CPU the interpreter's start and the INIT phase took (benchmarks)
        self.cold = True

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def _next_message(self, log: TextIO, timeout_s: float) -> dict[str, Any]:
        """Forward the worker's output to `log` until its next protocol message."""
        try:
            message = self._output.next_message(log, timeout_s)
        except TimeoutError:
            self.close()
            raise WorkerError(f"Task timed out after {timeout_s:.2f} seconds") from None
        if message is None:
            raise WorkerError(f"Runtime exited with code {self.process.wait()} (Runtime.ExitError)")
        return message

    def invoke(self, event: Any, request_id: str, log: TextIO) -> Invocation:
        if self.init_ms is None:  # the INIT phase: importing the handler module
            ready = self._next_message(log, max(self.timeout_s, 10) + 60)
            if "init_error" in ready:
                self.close()
                raise handler_error(ready["init_error"])
            self.init_ms = ready["init_ms"]
            self.init_cpu_ms = ready.get("init_cpu_ms", 0.0)
        self._send({"request_id": request_id, "event": event})
        outcome = self._next_message(log, self.timeout_s + 5)
        log.flush()
        cold, self.cold = self.cold, False
        return Invocation(outcome["ok"], outcome["result"], self.init_ms if cold else None)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Close the worker's stdin: it finishes what it is doing and exits (`close` waits for it)."""
        if self.process.poll() is None and self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.stop()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class WorkerPool:
    """The warm workers of this process, one per function (and environment)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self.workers: dict[str, Worker] = {}
        self._builds: dict[str, BuildOutput] = {}
        self._lock = threading.Lock()

    def _build(self, stack: str) -> BuildOutput:
        root = self.root or find_project_root()
        settings = load_stack_file_cached(stack, root)
        key = f"{settings.lambda_settings.python_runtime}-{settings.lambda_settings.architecture}"
        if key not in self._builds:
            from btc_trader.build.cli import stack_target

            # Offline: reuses `make build`'s layer; bundles of changed code are re-zipped (cheap).
            self._builds[key] = build(root, stack_target(settings), offline=True)
        return self._builds[key]

    def worker(self, function: str, env: dict[str, str], function_name: str, arn: str, memory_mb: int,
               timeout_s: int) -> Worker:
        """`function`'s warm worker, started (cold) on first use or when its environment changed."""
        with self._lock:
            output = self._build(env.get("BTC_TRADER_STACK", "dev"))
            worker = self.workers.get(function)
            if worker is None or worker.env != env or not worker.alive():
                if worker is not None:
                    worker.close()
                if MACHINES[output.architecture] != platform.machine():
                    raise BuildError(f"{output.architecture} bundles cannot run on this {platform.machine()} machine")
                python = runtime_python(output.runtime)
                if python is None:
                    raise BuildError(f"no {output.runtime} interpreter found")
                worker = Worker(python, unpacked_bundle(output, function), output,
                                output.functions[function].handler, env, function_name, arn, memory_mb, timeout_s)
                self.workers[function] = worker
            return worker

    def invoke(self, worker: Worker, event: Any, request_id: str, log: TextIO) -> Invocation:
        """One invocation at a time per worker (a container serves one request at a time)."""
        with worker.lock:
            return worker.invoke(event, request_id, log)

    def close(self) -> None:
        # Every worker told to stop first, then waited for: they end together, not one by one.
        for worker in self.workers.values():
            worker.stop()
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


def unpacked_bundle(output: BuildOutput, function: str) -> Path:
    """The function's zip unpacked once (as Lambda unpacks it into /var/task), keyed by its hash."""
    bundle = output.functions[function]
    target = output.path("unpacked") / f"{function}-{bundle.sha256[:12]}"
    if not target.is_dir():
        temporary = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(temporary, ignore_errors=True)
        with zipfile.ZipFile(output.path(bundle.zip)) as archive:
            archive.extractall(temporary)
        try:
            temporary.rename(target)
        except OSError:  # another process unpacked it first
            shutil.rmtree(temporary, ignore_errors=True)
    return target


_POOL: WorkerPool | None = None
_FALLBACK_SAID = False


def in_process_requested() -> bool:
    return os.environ.get(IN_PROCESS_VARIABLE, "") not in ("", "0")


def shared_pool() -> WorkerPool | None:
    """This process's warm workers, or None when handlers must run in-process (said once)."""
    global _POOL
    if in_process_requested():
        return None
    if _POOL is None:
        _POOL = WorkerPool()
        atexit.register(_POOL.close)
    return _POOL


def fall_back(reason: str) -> None:
    """Say once why the handlers run in this process, then do so."""
    global _FALLBACK_SAID
    if not _FALLBACK_SAID:
        print(f"local: {reason}: running the handlers in-process in this venv, not in the runtime's Python "
              "(--in-process does this on purpose)", file=sys.stderr)
        _FALLBACK_SAID = True
    os.environ[IN_PROCESS_VARIABLE] = "1"


class InProcessFlag(argparse._StoreTrueAction):
    """`--in-process`: run the handlers in this process (debugging with breakpoints)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "run handlers in this process and venv (for breakpoints), not the built bundle "
                                  "in the runtime's Python")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        os.environ[IN_PROCESS_VARIABLE] = "1"
        super().__call__(parser, namespace, values, option_string)
