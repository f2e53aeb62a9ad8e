"""`btc-trader backtest`: replay a strategy over candle files, with the paper wallet's fills.

`--strategy live` replays the stack's own decision code (btc_trader.backtest.live); `sma-cross`
is the reference strategy that validates the engine. `backtest sweep --grid key=v1,v2` runs the
cartesian product of stack-key values on every core and ranks the runs by Sharpe.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from btc_trader.backtest.data import INTERVALS, Bars, load_bars
from btc_trader.backtest.engine import metrics, simulate, sma_cross_targets

SMA_DEFAULTS = {"fee_bps": 10.0, "slippage_bps": 5.0, "cash": 10_000.0}
PROGRESS_AFTER_S = 2.0


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
    parser = commands.add_parser("backtest", help="replay a strategy over candles (no AWS)",
                                 description="backtest [sweep] --data FILE ...: one run, or a ranked sweep over --grid")
    parser.add_argument("mode", nargs="?", choices=["run", "sweep"], default="run",
                        help="`sweep` runs every combination of --grid values")
    parser.add_argument("--data", required=True, help="candle CSV(.gz): timestamp,open,high,low,close,volume")
    parser.add_argument("--interval", choices=sorted(INTERVALS, key=INTERVALS.get), help="decision interval")
    parser.add_argument("--from", dest="start", help="first bar, ISO-8601")
    parser.add_argument("--to", dest="end", help="end (exclusive), ISO-8601")
    parser.add_argument("--strategy", choices=["live", "sma-cross"], default="sma-cross")
    parser.add_argument("--stack", default="dev", help="live: the stack whose settings decide")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="live: override a stack key")
    parser.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="sweep: stack-key values to combine")
    parser.add_argument("--ignore-skill", action="store_true",
                        help="live: keep configured model weights whatever their calls earn (NOT live behaviour)")
    parser.add_argument("--predictions", metavar="FILE",
                        help="live: replay recorded Bedrock/Chronos outputs (`btc-trader predictions export`)")
    parser.add_argument("--fee-bps", type=float, help="default: the stack's feeBps (live), 10 (sma-cross)")
    parser.add_argument("--slippage-bps", type=float, help="default: the stack's slippageBps (live), 5 (sma-cross)")
    parser.add_argument("--cash", type=float, help="default: the stack's paperStartingCash (live), 10000")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--report", metavar="PATH.html|PATH.png", help="write the charts (HTML or PNG)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    parser.add_argument("--workers", type=int, help="sweep: processes (default: every core)")
    parser.set_defaults(handler=run)


def _overrides(items: list[str] | None) -> dict[str, str]:
    from btc_trader.cli_support import CliError, parse_overrides

    try:
        return parse_overrides(items)
    except CliError as exc:
        raise BacktestError(str(exc)) from None


def _settings(args: argparse.Namespace, extra: dict[str, str] | None = None) -> Any:
    from btc_trader.stack.settings import load_stack_with_overrides

    return load_stack_with_overrides(args.stack, {**_overrides(args.set), **(extra or {})})


def _costs(args: argparse.Namespace, settings: Any) -> tuple[float, float, float]:
    if args.strategy == "live":
        fee = settings.fee_bps if args.fee_bps is None else args.fee_bps
        slip = settings.slippage_bps if args.slippage_bps is None else args.slippage_bps
        cash = settings.paper_starting_cash if args.cash is None else args.cash
    else:
        fee = SMA_DEFAULTS["fee_bps"] if args.fee_bps is None else args.fee_bps
        slip = SMA_DEFAULTS["slippage_bps"] if args.slippage_bps is None else args.slippage_bps
        cash = SMA_DEFAULTS["cash"] if args.cash is None else args.cash
    if cash <= 0 or fee < 0 or slip < 0:
        raise BacktestError("--cash must be positive and --fee-bps/--slippage-bps not negative")
    return fee, slip, cash


def simulate_strategy(bars: Bars, args: argparse.Namespace, settings: Any, show_progress: bool = False
                      ) -> tuple[Any, dict[str, Any]]:
    """One run: (engine Result, the report dict). Timing excludes start-up and file loading."""
    fee, slip, cash = _costs(args, settings)
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if args.strategy == "live":
        from btc_trader.backtest.live import run_live

        with _progress_bar(len(bars), show_progress) as bar:
            live = run_live(bars, settings, cash, fee, slip, progress=bar, ignore_skill=args.ignore_skill,
                            recorded=_recorded(args, bars, settings))
        result = live.result
        extra = {"stack": args.stack, "approved": live.approvals,
                 "rejections_by_rule": dict(live.rejections.most_common()),
                 "model_accuracy": live.model_accuracy, "events": live.events,
                 # Per model: calls, hit rate vs break-even, net bps, Newey-West t; per-day weights in --json.
                 "walk_forward": live.walk_forward if args.json else {
                     m: {k: v for k, v in w.items() if k != "weight_per_day"} for m, w in live.walk_forward.items()},
                 "kill_switch_engaged_at": None if live.kill_switch_bar is None else
                 datetime.fromtimestamp(int(bars.timestamps[live.kill_switch_bar]) + bars.bar_seconds, UTC)
                 .strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "notes": live.notes}
    else:
        result = simulate(bars, sma_cross_targets(bars.close, bars.gap_before), cash, fee, slip)
    figures = metrics(bars, result, cash)
    elapsed = time.perf_counter() - started
    report = {"strategy": args.strategy, **{k: _plain(v) for k, v in figures.items()}, **extra,
              "fee_bps": fee, "slippage_bps": slip, "bars": len(bars), "simulation_seconds": round(elapsed, 6)}
    return result, report


def _recorded(args: argparse.Namespace, bars: Bars, settings: Any) -> Any:
    """The recorded predictions of `--predictions FILE` aligned with the bars, or None."""
    if not getattr(args, "predictions", None):
        return None
    from btc_trader.backtest.recorded import RecordedPredictionsError, load_recorded

    try:
        recorded = load_recorded(args.predictions, bars, settings.symbols[0], settings.ml_models)
    except RecordedPredictionsError as exc:
        raise BacktestError(str(exc)) from None
    if not any(m == "custom" or m in recorded.predicted_price for m in settings.ml_models):
        raise BacktestError(f"--predictions {args.predictions}: no recorded prediction of {settings.symbols[0]} by "
                            f"the stack's models {list(settings.ml_models)} falls on these bars "
                            f"({recorded.lines} lines, {recorded.unmatched} outside the bars or of another symbol)")
    return recorded


def _plain(value: Any) -> Any:
    return float(value) if hasattr(value, "dtype") else value


class _progress_bar:  # noqa: N801 - used as a context manager like tqdm's
    """tqdm on stderr, shown only for runs longer than a couple of seconds, never in --json stdout."""

    def __init__(self, total: int, force: bool):
        self.total, self.force, self.bar, self.done = total, force, None, 0

    def __enter__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="bar", file=sys.stderr, delay=PROGRESS_AFTER_S,
                        disable=None if not self.force else False, desc="backtest")
        return self

    def __call__(self, index: int) -> None:
        advance = index + 1 - self.done
        if advance > 0:
            self.bar.update(advance)
            self.done = index + 1

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def _load(args: argparse.Namespace) -> Bars:
    return load_bars(args.data, args.interval, _epoch(args.start, "--from"), _epoch(args.end, "--to"))


def run(args: argparse.Namespace) -> int:
    if args.mode == "sweep":
        return sweep(args)
    if args.grid:
        raise BacktestError("--grid belongs to `btc-trader backtest sweep`")
    settings = _settings(args) if args.strategy == "live" else None
    bars = _load(args)
    result, report = simulate_strategy(bars, args, settings, show_progress=args.progress)
    if args.report:
        from btc_trader.backtest.report import write_png, write_report

        target = Path(args.report)
        title = f"btc-trader backtest: {args.strategy} on {Path(args.data).name}"
        if target.suffix.lower() == ".html":
            write_report(target, bars, result, report, title)
        elif target.suffix.lower() == ".png":
            write_png(target, bars, result, title)
        else:
            raise BacktestError(f"--report writes .html or .png, got {args.report}")
    if args.json:
        print(json.dumps(report, default=float))
        return 0
    for key, value in report.items():
        if isinstance(value, dict):
            value = json.dumps(value, default=float)
        shown = f"{value:,.4f}" if isinstance(value, float) else value
        print(f"{key:<28} {shown}")
    return 0


# --- sweep -------------------------------------------------------------------------------------

_BARS: Bars | None = None


def _init_worker(path: str, interval: str | None, start: int | None, end: int | None) -> None:
    global _BARS
    _BARS = load_bars(path, interval, start, end)


def _sweep_one(args: argparse.Namespace, combination: dict[str, str]) -> dict[str, Any]:
    settings = _settings(args, combination) if args.strategy == "live" else None
    _, report = simulate_strategy(_BARS, args, settings)
    return {**combination, "sharpe": report["sharpe"], "max_drawdown_pct": report["max_drawdown_pct"],
            "total_return_pct": report["total_return_pct"], "trades": report["trades"]}


def parse_grid(items: list[str] | None) -> list[dict[str, str]]:
    if not items:
        raise BacktestError("sweep needs at least one --grid key=v1,v2")
    axes = []
    for item in items:
        key, sep, values = item.partition("=")
        choices = [v for v in values.split(",") if v]
        if not sep or not key or not choices:
            raise BacktestError(f"--grid must look like key=v1,v2, got {item!r}")
        axes.append([(key, v) for v in choices])
    return [dict(combo) for combo in itertools.product(*axes)]


def sweep(args: argparse.Namespace) -> int:
    if args.strategy != "live":
        raise BacktestError("sweep varies stack keys, so it needs --strategy live")
    combinations = parse_grid(args.grid)
    for combination in combinations:  # every combination is a valid stack before any work starts
        _settings(args, combination)
    _load(args)  # a bad file fails here, once, with its clear error
    workers = args.workers or os.cpu_count() or 1
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=min(workers, len(combinations)), initializer=_init_worker,
                             initargs=(args.data, args.interval, _epoch(args.start, "--from"),
                                       _epoch(args.end, "--to"))) as pool:
        rows = list(pool.map(_sweep_one, [args] * len(combinations), combinations))
    rows.sort(key=lambda r: (r["sharpe"] is None, -(r["sharpe"] or 0.0)))
    if args.json:
        print(json.dumps({"runs": rows, "seconds": round(time.perf_counter() - started, 3)}, default=float))
        return 0
    from btc_trader.cli_support import render_table

    shown = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]
    keys = list(combinations[0])
    print(render_table(shown, ["sharpe", "max_drawdown_pct", "total_return_pct", "trades", *keys]))
    print(f"\n{len(rows)} runs on {min(workers, len(combinations))} processes in "
          f"{time.perf_counter() - started:.1f} s, ranked by Sharpe")
    return 0
