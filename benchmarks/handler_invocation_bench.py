"""What one handler invocation costs in `local run`, in steady state: CPU per invocation and per decision.

Runs `--ticks` decisions of a replay (the real coinbase candles of ../shared/data when present,
else the labelled synthetic series) on a fresh emulator and fresh warm workers, and measures
only the decisions after the first `--warm-up` ones: cold starts, the first invocations (SDK
clients, service models), the emulator's start and the history's seeding are outside the
window. It reports, per function, the worker's CPU per invocation, and per decision the CPU of
the runner process (the executor and the per-invocation path: environment, worker pipe,
logs), the emulator and the workers. CPU figures, not wall: the machine is shared.

    python benchmarks/handler_invocation_bench.py [--data ../shared/data] [--ticks 60] [--warm-up 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from measuring import FROM, REPLAY, cpu_seconds  # noqa: E402 - the benchmarks' own folder is on the path when run as a script


def _owncpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(ticks: int, warm_up: int, replay: Path) -> dict[str, Any]:
    """One `local run`; the CPU of its decisions after the warm-up ones."""
    from btc_trader.local import emulator, workers
    from btc_trader.local.run import local_run

    measuring = False
    invocations: collections.Counter[str] = collections.Counter()
    worker_cpu: collections.Counter[str] = collections.Counter()

    class MeasuredPool(workers.WorkerPool):
        def invoke(self, worker: workers.Worker, event: Any, request_id: str, log: TextIO) -> workers.Invocation:
            if not measuring:
                return super().invoke(worker, event, request_id, log)
            before = cpu_seconds(worker.process.pid)
            try:
                return super().invoke(worker, event, request_id, log)
            finally:
                function = next(f for f, w in self.workers.items() if w is worker)
                invocations[function] += 1
                worker_cpu[function] += cpu_seconds(worker.process.pid) - before

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state, _ = emulator.start("dev", port)
    pool = MeasuredPool()
    workers._POOL = pool
    marks: list[tuple[float, float, float]] = []  # (wall, runner CPU, emulator CPU) at each decision line

    def emit(line: str) -> None:
        nonlocal measuring
        if line[:2] == "20":  # a decision line
            marks.append((time.perf_counter(), _owncpu_seconds(), cpu_seconds(state.pid)))
            # From the warm-up's last decision line to the run's last: the scheduled functions
            # that follow a decision line belong to the decision window that line opens.
            measuring = warm_up <= len(marks) < ticks

    try:
        summary = local_run(replay if replay.is_file() else None, ticks, "dev", FROM if replay.is_file() else None,
                            emit=emit, port=port, synthetic=not replay.is_file())
    finally:
        pool.close()
        emulator.stop(port)
    decisions = len(marks) - warm_up
    if decisions < 1:
        raise SystemExit(f"--ticks {ticks} leaves no decision after --warm-up {warm_up}")
    (wall0, runner0, emulator0), (wall1, runner1, emulator1) = marks[warm_up - 1], marks[-1]
    per_function = {
        function: {"invocations": invocations[function],
                   "worker_cpu_ms_per_invocation": round(worker_cpu[function] / invocations[function] * 1000, 1)}
        for function in sorted(invocations)
    }
    return {
        "market": summary.market, "decisions_measured": decisions, "warm_up": warm_up,
        "decisions_per_s": round(decisions / (wall1 - wall0), 2),
        "cpu_ms_per_decision": {"runner": round((runner1 - runner0) / decisions * 1000, 1),
                                "emulator": round((emulator1 - emulator0) / decisions * 1000, 1),
                                "handler_workers": round(sum(worker_cpu.values()) / decisions * 1000, 1)},
        "functions": per_function, "executions": dict(summary.executions),
        "load_average": round(os.getloadavg()[0], 1), "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--warm-up", type=int, default=10)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    os.environ["BTC_TRADER_HOME"] = tempfile.mkdtemp(prefix="btc-trader-bench-")
    os.environ.setdefault("BTC_TRADER_LOCAL_IN_PROCESS", "0")
    figures = measure(args.ticks, args.warm_up, Path(args.data) / REPLAY)
    cpu = figures["cpu_ms_per_decision"]
    print(f"local run, steady state ({figures['market']}): {figures['decisions_measured']} decisions after "
          f"{figures['warm_up']} of warm-up, {figures['decisions_per_s']:.2f} decisions/s (wall, load average "
          f"{figures['load_average']} on {figures['cores']} cores)")
    print(f"  CPU per decision: runner {cpu['runner']} ms, emulator {cpu['emulator']} ms, "
          f"handler workers {cpu['handler_workers']} ms")
    for function, numbers in figures["functions"].items():
        print(f"  {function:<22} {numbers['invocations']:>4} invocations, "
              f"{numbers['worker_cpu_ms_per_invocation']:>5.1f} ms worker CPU each")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
