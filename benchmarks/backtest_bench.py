"""Backtest benchmark: sma-cross and live bars per second, and peak memory (outside the test run).

`live` is measured with the dev stack's settings (as deployed) and with a loosened, skill-ignoring
variant that trades a lot (the event path's worst case).

    .venv/bin/python benchmarks/backtest_bench.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from btc_trader.backtest.data import Bars, load_bars  # noqa: E402
from btc_trader.backtest.engine import metrics, simulate, sma_cross_targets  # noqa: E402
from btc_trader.backtest.live import run_live  # noqa: E402
from btc_trader.stack.settings import load_stack_file, load_stack_with_overrides  # noqa: E402

DEV = load_stack_file("dev")
BUSY = load_stack_with_overrides("dev", {"riskThreshold": "0.3", "buyThresholdPct": "0.2", "sellThresholdPct": "-0.2",
                                         "maxTradesPerDay": "40", "maxDrawdownPct": "50"})


def run_live_speed(bars: Bars, settings, ignore_skill: bool, repeats: int = 3) -> tuple[float, int, float]:
    """Best-of-`repeats` bars per second of the live strategy + metrics (wall, then CPU time); its fills.

    CPU time is reported too: on a machine shared with other work the wall clock measures the
    neighbours as much as the code.
    """
    best, best_cpu, fills = float("inf"), float("inf"), 0
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        live = run_live(bars, settings, 10_000, settings.fee_bps, settings.slippage_bps, ignore_skill=ignore_skill)
        metrics(bars, live.result, 10_000)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - started_cpu)
        fills = len(live.fills)
    return len(bars) / best, fills, len(bars) / max(best_cpu, 1e-9)


def live_figures(bars: Bars, repeats: int = 3) -> dict:
    dev, _, dev_cpu = run_live_speed(bars, DEV, False, max(repeats, 10))
    busy, fills, _ = run_live_speed(bars, BUSY, True, repeats)
    return {"live_dev_bars_per_s": round(dev), "live_dev_cpu_bars_per_s": round(dev_cpu),
            "live_busy_bars_per_s": round(busy), "live_busy_fills": fills}


def run(bars: Bars, repeats: int = 5) -> float:
    """Best-of-`repeats` bars per second of signals + simulation + metrics."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = simulate(bars, sma_cross_targets(bars.close, bars.gap_before), 10_000, 10, 5)
        metrics(bars, result, 10_000)
        best = min(best, time.perf_counter() - started)
    return len(bars) / best


def tiled(bars: Bars, count: int) -> Bars:
    """`count` bars made of real bars repeated, each copy scaled to continue the last one."""
    copies = -(-count // len(bars))
    scale = np.cumprod(np.concatenate(([1.0], np.full(copies - 1, bars.close[-1] / bars.open[0]))))
    stack = lambda a: np.concatenate([a * s for s in scale])[:count]  # noqa: E731
    return Bars(np.arange(count) * bars.bar_seconds, stack(bars.open), stack(bars.high), stack(bars.low),
                stack(bars.close), np.resize(bars.volume, count), np.zeros(count, dtype=np.int64), bars.bar_seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", help="also write the JSON here (benchmarks/results/, read by readme_figures.py)")
    options = parser.parse_args()
    data = Path(options.data)
    report = {}
    for name in ("btcusdt_1h_binance_2020-09-20_2026-06-20.csv.gz", "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz",
                 "btcusd_1m_binanceus_2023-03-01_2023-03-21.csv.gz"):
        if (data / name).exists():
            bars = load_bars(data / name)
            report[name] = {"bars": len(bars), "sma_cross_bars_per_s": round(run(bars)), **live_figures(bars)}
    hourly = data / "btcusdt_1h_binance_2020-09-20_2026-06-20.csv.gz"
    if hourly.exists():
        million = tiled(load_bars(hourly), 1_000_000)
        speed = run(million, repeats=3)
        tracemalloc.start()
        run(million, repeats=1)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        live = live_figures(million, repeats=1)
        tracemalloc.start()
        run_live(million, DEV, 10_000, DEV.fee_bps, DEV.slippage_bps)
        _, live_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        report["1M_bars"] = {"sma_cross_bars_per_s": round(speed), "peak_traced_mb": round(peak / 2**20, 1),
                             **live, "live_peak_traced_mb": round(live_peak / 2**20, 1)}
    print(json.dumps(report, indent=2))
    if options.out:
        Path(options.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
