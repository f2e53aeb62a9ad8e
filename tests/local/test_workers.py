"""Warm runtime workers: Lambda's error shape, cold then warm, a new environment is a new container,
and the in-process fallback when the runtime's interpreter is missing."""

from __future__ import annotations

import io
import re

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
