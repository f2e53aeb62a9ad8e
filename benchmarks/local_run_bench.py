"""Speed of the faithful local path: `local run` decisions per second on a replay.

For each executor of the state machine (the runner's own, `fast`, and moto's, `emulator`) it
starts an emulator on a free port in a throwaway home and fresh handler workers, runs `--ticks`
decisions of a replay (the real coinbase candles of ../shared/data when present, else the
labelled synthetic series) through the real definition and the real handlers, and reports
decisions per second (wall: in all, and from the first decision to the last) and the CPU
milliseconds per decision of the runner, the emulator and the handler workers (their cold
starts apart). On a shared machine the wall figures move with the load; the CPU figures say
what the path costs.

    python benchmarks/local_run_bench.py [--data ../shared/data] [--ticks 100] [--executor fast|emulator|both]
                                         [--out benchmarks/results/local_run.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from measuring import FROM, REPLAY, cpu_seconds  # noqa: E402 - the benchmarks' own folder is on the path when run as a script


def measure(executor: str, ticks: int, replay: Path, segments: int = 0) -> dict:
    """One `local run` on a fresh emulator and fresh workers; wall and CPU figures of its decisions."""
    from btc_trader.local import emulator, workers
    from btc_trader.local.run import local_run

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state, _ = emulator.start("dev", port)
    pool = workers.WorkerPool()
    workers._POOL = pool  # this run's own warm workers, measured below
    stamps: list[float] = []

    def emit(line: str) -> None:
        if line[:2] == "20":  # a decision line
            stamps.append(time.perf_counter())

    try:
        emulator_cpu = cpu_seconds(state.pid)
        own = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        summary = local_run(replay if replay.is_file() else None, ticks, "dev", FROM if replay.is_file() else None,
                            emit=emit, port=port, synthetic=not replay.is_file(), executor=executor)
        wall = time.perf_counter() - started
        handlers = sum(cpu_seconds(w.process.pid) for w in pool.workers.values())
        cold_starts = sum(w.init_cpu_ms / 1000 for w in pool.workers.values())
        after = resource.getrusage(resource.RUSAGE_SELF)
        runner = (after.ru_utime - own.ru_utime) + (after.ru_stime - own.ru_stime)
        server = cpu_seconds(state.pid) - emulator_cpu
    finally:
        pool.close()
        emulator.stop(port)
    per_decision = summary.ticks or 1
    return {
        "executor": executor, "market": summary.market, "decisions": summary.ticks, "wall_s": round(wall, 2),
        "decisions_per_s": round(summary.ticks / wall, 2),
        # From the first decision to the last: the replay loop, without the emulator's start, the
        # history's seeding and the workers' cold starts.
        "decisions_per_s_after_start": round((len(stamps) - 1) / (stamps[-1] - stamps[0]), 2) if len(stamps) > 1 else 0,
        "cpu_ms_per_decision": {"runner": round(runner / per_decision * 1000),
                                "emulator": round(server / per_decision * 1000),
                                "handler_workers": round((handlers - cold_starts) / per_decision * 1000)},
        # Milliseconds per decision over each `segments` decisions: how a long replay slows down.
        "ms_per_decision_by_segment": [round((stamps[end] - stamps[end - segments]) / segments * 1000)
                                       for end in range(segments, len(stamps), segments)] if segments else [],
        "cold_starts_cpu_s": round(cold_starts, 1), "executions": dict(summary.executions),
        "trades": dict(summary.trades), "load_average": round(os.getloadavg()[0], 1), "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--executor", choices=["fast", "emulator", "both"], default="both")
    parser.add_argument("--out", help="write the figures as JSON here (the README's figures come from it)")
    parser.add_argument("--segments", type=int, default=0,
                        help="also report the wall milliseconds per decision of every N decisions (long runs)")
    args = parser.parse_args()
    os.environ["BTC_TRADER_HOME"] = tempfile.mkdtemp(prefix="btc-trader-bench-")
    os.environ.setdefault("BTC_TRADER_LOCAL_IN_PROCESS", "0")
    replay = Path(args.data) / REPLAY
    results = {}
    for executor in (["fast", "emulator"] if args.executor == "both" else [args.executor]):
        figures = results[executor] = measure(executor, args.ticks, replay, args.segments)
        cpu = figures["cpu_ms_per_decision"]
        print(f"local run --executor {executor} ({figures['market']}): {figures['decisions']} decisions in "
              f"{figures['wall_s']:.1f} s = {figures['decisions_per_s']:.2f} decisions/s, "
              f"{figures['decisions_per_s_after_start']:.2f}/s from the first decision to the last "
              f"(wall, load average {figures['load_average']} on {figures['cores']} cores)")
        print(f"  CPU per decision: runner {cpu['runner']} ms, emulator {cpu['emulator']} ms, handler workers "
              f"{cpu['handler_workers']} ms (their cold starts apart: {figures['cold_starts_cpu_s']} CPU s in all); "
              f"executions {figures['executions']}, trades {figures['trades']}")
        if figures["ms_per_decision_by_segment"]:
            print(f"  wall ms per decision, every {args.segments} decisions: {figures['ms_per_decision_by_segment']}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
