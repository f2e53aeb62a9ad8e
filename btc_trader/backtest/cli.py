"""`btc-trader backtest`: replay a strategy over candle files, with the paper wallet's fills.

Only the reference strategy `sma-cross` exists so far; `live` (the stack's models, ensemble and
risk rules replayed bar by bar) is refused with a message until it is built.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from btc_trader.backtest.data import INTERVALS, load_bars
from btc_trader.backtest.engine import metrics, simulate, sma_cross_targets


class BacktestError(ValueError):
    """The backtest cannot run as asked."""


def _epoch(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BacktestError(f"{flag} must be ISO-8601 like 2021-01-01T00:00:00Z, got {text!r}") from None
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def register(commands: Any) -> None:
    """Add `backtest` to the main CLI's subcommands."""
    parser = commands.add_parser("backtest", help="replay a strategy over candles (no AWS)")
    parser.add_argument("--data", required=True, help="candle CSV(.gz): timestamp,open,high,low,close,volume")
    parser.add_argument("--interval", choices=sorted(INTERVALS, key=INTERVALS.get), help="decision interval")
    parser.add_argument("--from", dest="start", help="first bar, ISO-8601")
    parser.add_argument("--to", dest="end", help="end (exclusive), ISO-8601")
    parser.add_argument("--strategy", choices=["sma-cross", "live"], default="sma-cross")
    parser.add_argument("--fee-bps", type=float, default=10.0)
    parser.add_argument("--slippage-bps", type=float, default=5.0)
    parser.add_argument("--cash", type=float, default=10_000.0)
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--report", metavar="PATH.html", help="write a self-contained HTML report")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.strategy == "live":
        raise BacktestError("the live strategy is not built yet; use --strategy sma-cross")
    if args.cash <= 0 or args.fee_bps < 0 or args.slippage_bps < 0:
        raise BacktestError("--cash must be positive and --fee-bps/--slippage-bps not negative")
    bars = load_bars(args.data, args.interval, _epoch(args.start, "--from"), _epoch(args.end, "--to"))
    started = time.perf_counter()
    target = sma_cross_targets(bars.close, bars.gap_before)
    result = simulate(bars, target, args.cash, args.fee_bps, args.slippage_bps)
    figures = metrics(bars, result, args.cash)
    elapsed = time.perf_counter() - started
    report = {"strategy": args.strategy, **figures, "bars": len(bars), "simulation_seconds": round(elapsed, 6)}
    if args.report:
        from pathlib import Path

        from btc_trader.backtest.report import write_report

        target = Path(args.report)
        if target.suffix.lower() != ".html":
            raise BacktestError(f"--report writes HTML; give a path ending in .html, got {args.report}")
        write_report(target, bars, result, report, f"btc-trader backtest: {args.strategy} on {Path(args.data).name}")
    if args.json:
        print(json.dumps(report, default=float))
    else:
        for key, value in report.items():
            shown = f"{value:,.4f}" if isinstance(value, float) else value
            print(f"{key:<28} {shown}")
    return 0
