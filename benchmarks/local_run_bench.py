"""Speed of the faithful local path: `local run` decisions per second on a replay.

Starts an emulator on a free port in a throwaway home, runs `--ticks` decisions of a replay
(the real coinbase candles of ../shared/data when present, else the labelled synthetic series)
through the real state machine and the real handlers, and reports decisions per second (wall)
and the CPU seconds per decision of this process and of the emulator process. On a shared
machine the wall figure moves with the load; the CPU figures say what the path costs.

    python benchmarks/local_run_bench.py [--data ../shared/data] [--ticks 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPLAY = "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"
FROM = 1_678_428_000  # 2023-03-10T06:00:00Z


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--ticks", type=int, default=100)
    args = parser.parse_args()
    os.environ["BTC_TRADER_HOME"] = tempfile.mkdtemp(prefix="btc-trader-bench-")
    from btc_trader.local import emulator
    from btc_trader.local.run import local_run

    replay = Path(args.data) / REPLAY
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state, _ = emulator.start("dev", port)
    try:
        lines: list[str] = []
        emulator_cpu = _cpu_seconds(state.pid)
        own = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        summary = local_run(replay if replay.is_file() else None, args.ticks, "dev", FROM if replay.is_file() else None,
                            emit=lines.append, port=port, synthetic=not replay.is_file())
        wall = time.perf_counter() - started
        from btc_trader.local import workers

        pool = workers.shared_pool()
        handlers = sum(_cpu_seconds(w.process.pid) for w in pool.workers.values()) if pool else 0.0
        init = sum(w.init_cpu_ms / 1000 for w in pool.workers.values()) if pool else 0.0
        after = resource.getrusage(resource.RUSAGE_SELF)
        client = (after.ru_utime - own.ru_utime) + (after.ru_stime - own.ru_stime)
        server = _cpu_seconds(state.pid) - emulator_cpu
    finally:
        emulator.stop(port)
    load = os.getloadavg()[0]
    print(f"local run ({summary.market}): {summary.ticks} decisions in {wall:.1f} s = "
          f"{summary.ticks / wall:.2f} decisions/s (wall, load average {load:.1f} on {os.cpu_count()} cores)")
    # The handlers' warm worker processes (when the run uses them) are not in this process's usage.
    print(f"  CPU per decision: runner process {client / summary.ticks * 1000:.0f} ms, emulator "
          f"{server / summary.ticks * 1000:.0f} ms, handler workers {(handlers - init) / summary.ticks * 1000:.0f} ms "
          f"(their cold starts apart: {init:.1f} CPU s in all)")
    print(f"  executions {dict(summary.executions)}, trades {dict(summary.trades)}")


if __name__ == "__main__":
    main()
