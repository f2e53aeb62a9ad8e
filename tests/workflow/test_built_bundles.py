"""The end-to-end local workflow on what ships: each function's built bundle in the runtime's Python.

`local run` drives the collector, the stack's state machine (predictor, risk manager, executor)
and the evaluator; here every one of them runs from `build/` in a warm worker process of
python3.12 with only the bundle and the layers on its path, as Lambda runs them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from btc_trader.build.runtime import runtime_python
from btc_trader.local import workers
from btc_trader.local.logs import archive_dir
from btc_trader.local.run import local_run
from btc_trader.local.synthetic import write_synthetic_candles
from tests.conftest import require_lambda_build
from tests.infra.test_bundle_imports import interpreter  # noqa: F401 - the runtime's Python, or skip/fail

FUNCTIONS = ("price-collector", "ml-predictor", "risk-manager", "trade-executor", "prediction-evaluator",
             "order-reconciler")
LOOSE = {"riskThreshold": "0.1", "buyThresholdPct": "0.1", "sellThresholdPct": "-0.1"}


@pytest.fixture
def built_bundles(monkeypatch, tmp_path, interpreter):  # noqa: F811 - the fixture imported above
    require_lambda_build("dev")
    monkeypatch.setenv("BTC_TRADER_HOME", str(tmp_path))  # a temporary emulator, its own logs
    monkeypatch.setenv(workers.IN_PROCESS_VARIABLE, "0")
    pool = workers.WorkerPool()
    monkeypatch.setattr(workers, "_POOL", pool)
    yield pool
    pool.close()


def test_local_run_executes_the_built_bundles_in_warm_runtime_workers(built_bundles, tmp_path):
    end = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp())
    replay = write_synthetic_candles(tmp_path / "candles", end, minutes=1200)["synthetic-usd-a"]
    lines: list[str] = []
    summary = local_run(replay, 6, emit=lines.append, overrides=LOOSE)
    assert summary.executions == {"SUCCEEDED": 6}, lines
    assert not summary.failures, lines
    assert set(built_bundles.workers) == set(FUNCTIONS), "every function ran in a worker"
    for function in FUNCTIONS:
        # The temporary emulator has stopped, so its logs are archived (#17), not current.
        (archived,) = archive_dir().glob(f"dev-*/{function}.jsonl")
        log = archived.read_text(encoding="utf-8")
        # One cold start per function for the whole run: the workers stay warm.
        (init,) = re.findall(r"^INIT_START Runtime Version: python:(3\.12\.\d+)\t.*$", log, re.MULTILINE)
        starts = re.findall(r"^START RequestId: (\S+) Version: \$LATEST$", log, re.MULTILINE)
        ends = re.findall(r"^END RequestId: (\S+)$", log, re.MULTILINE)
        reports = re.findall(r"^REPORT RequestId: (\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
                             r"Memory Size: 256 MB\tMax Memory Used: \d+ MB(\tInit Duration: [\d.]+ ms)?$",
                             log, re.MULTILINE)
        assert starts and starts == ends == [request for request, _ in reports], function
        assert [bool(cold) for _, cold in reports] == [True] + [False] * (len(reports) - 1), function
    # The runtime's interpreter, isolated from this venv (no site-packages, no PYTHON* variables).
    for worker in built_bundles.workers.values():
        assert worker.process.args[:4] == [runtime_python("python3.12"), "-I", "-S", "-u"]
