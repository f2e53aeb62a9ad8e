"""Warm runtime workers: Lambda's error shape, cold then warm, a new environment is a new container,
and the in-process fallback when the runtime's interpreter is missing."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

import pytest

from btc_trader.local import workers
from btc_trader.local.invoke import run_handler
from btc_trader.stack.environment import RISK_MANAGER, function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from tests.conftest import require_lambda_build
from tests.infra.test_bundle_imports import interpreter  # noqa: F401 - the runtime's Python, or skip/fail

ENV = function_environments(load_stack_file("dev"), ResourceNames("dev", "123456789012", "us-east-1"))[RISK_MANAGER]


@pytest.fixture
def pool(monkeypatch, interpreter):  # noqa: F811 - the fixture imported above
    require_lambda_build("dev")
    monkeypatch.setenv(workers.IN_PROCESS_VARIABLE, "0")
    pool = workers.WorkerPool()
    monkeypatch.setattr(workers, "_POOL", pool)
    yield pool
    pool.close()


def invoke_bad_event(env=ENV) -> tuple[BaseException, str]:
    log = io.StringIO()
    with pytest.raises(Exception) as raised:
        run_handler(RISK_MANAGER, {"symbol": "BTC-USD"}, env, "us-east-1", log_stream=log)
    return raised.value, log.getvalue()


def test_a_handler_error_comes_back_as_lambda_reports_it_cold_then_warm(pool):
    error, first = invoke_bad_event()
    assert type(error).__name__ == "ValidationError" and "execution_id" in str(error)
    assert re.search(r"^INIT_START Runtime Version: python:3\.12\.\d+", first, re.MULTILINE)
    (request,) = re.findall(r"^START RequestId: (\S+) Version: \$LATEST$", first, re.MULTILINE)
    assert f"END RequestId: {request}" in first and "[ERROR] " in first
    assert re.search(rf"^REPORT RequestId: {request}\t.*\tInit Duration: [\d.]+ ms$", first, re.MULTILINE)
    worker = pool.workers[RISK_MANAGER]
    _, second = invoke_bad_event()
    assert pool.workers[RISK_MANAGER] is worker and "INIT_START" not in second, "the same warm worker"
    assert "REPORT RequestId" in second and "Init Duration" not in second
    _, third = invoke_bad_event({**ENV, "LOG_LEVEL": "DEBUG"})
    assert pool.workers[RISK_MANAGER] is not worker and "Init Duration" in third, "a new environment is cold"
    assert not worker.alive()


def test_without_the_runtime_interpreter_it_says_so_and_runs_in_process(pool, monkeypatch, capsys):
    monkeypatch.setattr(workers, "runtime_python", lambda runtime: None)
    monkeypatch.setattr(workers, "_FALLBACK_SAID", False)
    error, log = invoke_bad_event()
    assert type(error).__name__ == "ValidationError"  # pydantic's own, raised in this process
    assert "no python3.12 interpreter found: running the handlers in-process" in capsys.readouterr().err
    assert "START RequestId" in log and "in-process" in log
    assert not pool.workers


def _output_of(script: str) -> tuple[workers.WorkerOutput, subprocess.Popen]:
    """The output of a stand-in worker (a Python script) as the pool reads a worker's."""
    process = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    return workers.WorkerOutput(process.stdout.fileno()), process


MARK = workers._MARK


def test_the_output_reaches_the_log_line_by_line_until_each_message():
    big = "x" * 300_000  # longer than one read of the pipe: joined when its end arrives
    output, process = _output_of(
        "import sys\n"
        "w = sys.stdout.buffer.write\n"
        "big = b'x' * 300_000\n"
        "w(b'first\\nwindows line\\r\\n' + big + b'\\n' + b'caf\\xc3')\n"
        "sys.stdout.flush()\n"
        f"w(b'\\xa9 \\xff\\n' + {MARK.encode()!r} + b'{{\"ok\": true, \"result\": \"' + big + b'\"}}\\n')\n"
        f"w(b'between\\n' + {MARK.encode()!r} + b'{{\"ok\": false}}\\n')\n"
    )
    log = io.StringIO()
    assert output.next_message(log, 10) == {"ok": True, "result": big}
    assert log.getvalue() == f"first\nwindows line\n{big}\ncafé \ufffd\n"
    assert output.next_message(log, 10) == {"ok": False}
    assert log.getvalue().endswith("\nbetween\n")
    assert output.next_message(log, 10) is None, "the worker exited"
    process.wait()


def test_a_worker_that_dies_mid_line_leaves_its_last_words_in_the_log():
    output, process = _output_of("import sys; sys.stdout.write('Fatal Python error: half a line'); sys.exit(3)")
    log = io.StringIO()
    assert output.next_message(log, 10) is None
    assert log.getvalue() == "Fatal Python error: half a line"
    assert process.wait() == 3


def test_silence_times_out_but_a_worker_still_writing_does_not():
    output, process = _output_of("import time; time.sleep(30)")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        output.next_message(io.StringIO(), 0.3)
    assert time.monotonic() - started < 5
    process.kill()
    process.wait()
    output, process = _output_of(
        "import time\n"
        f"print({MARK!r} + '{{\"ready\": true}}', flush=True)\n"
        "for i in range(8):\n"
        "    print(f'working {i}', flush=True); time.sleep(0.15)\n"
        f"print({MARK!r} + '{{}}', flush=True)\n"
    )
    log = io.StringIO()
    assert output.next_message(log, 30) == {"ready": True}  # the interpreter's start, however slow
    assert output.next_message(log, 1.0) == {}, "1.2 s of work, a line every 0.15 s: each line restarts the clock"
    assert log.getvalue().count("working") == 8
    process.wait()


def test_a_pipe_numbered_past_select_s_limit_is_read():
    """A long-lived runner (start-lambda, many connections) may hand a worker descriptor 1024+."""
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 1500:
        pytest.skip("the open-file limit is too low to place a descriptor at 1500")
    output, process = _output_of(f"print('hello'); print({MARK!r} + '{{}}')")
    high = os.dup2(output.fd, 1500)
    try:
        log = io.StringIO()
        assert workers.WorkerOutput(high).next_message(log, 10) == {}
        assert log.getvalue() == "hello\n"
    finally:
        os.close(high)
        process.wait()
