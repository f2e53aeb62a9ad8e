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
from btc_trader.backtest.engine import Fill, metrics, simulate, sma_cross_targets

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


def _add_run_options(parser: argparse.ArgumentParser, sweep: bool = False) -> None:
    """The options a single run and a sweep share."""
    # Required, but checked by the handler: argparse would demand it of `backtest` before `sweep`.
    parser.add_argument("--data", metavar="FILE", help="candle CSV(.gz): timestamp,open,high,low,close,volume (required; get "
                        "one with `btc-trader data download`)")
    parser.add_argument("--interval", choices=sorted(INTERVALS, key=INTERVALS.get),
                        help="decision interval, resampled from the file (default: the file's own bar length)")
    parser.add_argument("--from", dest="start", help="first bar, ISO-8601 (default: the file's first)")
    parser.add_argument("--to", dest="end", help="end (exclusive), ISO-8601 (default: after the file's last)")
    if sweep:
        parser.add_argument("--strategy", choices=["live"], default="live",
                            help="sweeps vary stack keys, so only the stack's own decisions")
    else:
        parser.add_argument("--strategy", choices=["live", "sma-cross"], default="sma-cross",
                            help="live: the stack's own decision code; sma-cross: the reference strategy")
    parser.add_argument("--stack", help="live: the stack whose settings decide (default: dev)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="live: override a stack key, repeatable (default: none)")
    parser.add_argument("--ignore-skill", action="store_true",
                        help="live: keep configured model weights whatever their calls earn (NOT live behaviour)")
    parser.add_argument("--predictions", metavar="FILE",
                        help="live: replay recorded Bedrock/Chronos outputs from `btc-trader predictions export` "
                             "(default: none, those models are left out)")
    parser.add_argument("--fee-bps", type=float, help="fee per fill, bps of notional (default: the stack's feeBps (live), 10 (sma-cross))")
    parser.add_argument("--slippage-bps", type=float, help="adverse slippage per fill, bps (default: the stack's slippageBps (live), 5 (sma-cross))")
    parser.add_argument("--cash", type=float, help="starting USD (default: the stack's paperStartingCash (live), 10000 (sma-cross))")


def register(commands: Any) -> None:
    """Add `backtest` and `backtest sweep` to the main CLI's subcommands."""
    parser = commands.add_parser(
        "backtest", help="replay a strategy over candles (no AWS)",
        description="Replay a strategy over a candle file and report returns, risk and trades.\n\n"
                    "  btc-trader backtest --data FILE [--strategy live|sma-cross] ...   one run\n"
                    "  btc-trader backtest sweep --data FILE --grid KEY=V1,V2 ...        ranked runs "
                    "(`backtest sweep --help`)")
    _add_run_options(parser)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--report", metavar="PATH.html|PATH.png",
                        help="write the charts: HTML (self-contained) or PNG (default: none)")
    parser.add_argument("--trades", metavar="PATH.csv|PATH.json",
                        help="export every fill and closed trade, CSV or JSON by extension (default: none)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    parser.set_defaults(handler=run, mode="run")
    sweeps = parser.add_subparsers(dest="backtest_command", metavar="sweep")
    sweep_parser = sweeps.add_parser(
        "sweep", help="run every combination of --grid stack-key values on every core, ranked by Sharpe",
        description="Run the live strategy once per combination of --grid values (the cartesian product), "
                    "in parallel, and rank the runs by Sharpe with the max drawdown beside it.\n\n"
                    "  btc-trader backtest sweep --data FILE --grid riskThreshold=0.2,0.4 "
                    "--grid buyThresholdPct=0.1,0.3")
    _add_run_options(sweep_parser, sweep=True)
    sweep_parser.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                              help="stack-key values to combine, repeatable")
    sweep_parser.add_argument("--workers", type=int, help="processes (default: every core)")
    sweep_parser.add_argument("--json", action="store_true", help="print the ranked runs as one JSON object")
    sweep_parser.set_defaults(handler=sweep, mode="sweep")


def _refuse_options_that_do_not_apply(args: argparse.Namespace) -> None:
    """sma-cross has no stack: a --stack/--set/--ignore-skill given with it would be silently ignored."""
    if args.strategy == "live":
        return
    given = [flag for flag, value in (("--stack", args.stack), ("--set", args.set),
                                      ("--ignore-skill", args.ignore_skill), ("--predictions", args.predictions))
             if value]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise BacktestError(f"{', '.join(given)} {verb} only to --strategy live (sma-cross reads no stack "
                            "settings); drop them or add --strategy live")


def _overrides(items: list[str] | None) -> dict[str, str]:
    from btc_trader.cli_support import CliError, parse_overrides

    try:
        return parse_overrides(items)
    except CliError as exc:
        raise BacktestError(str(exc)) from None


def _settings(args: argparse.Namespace, extra: dict[str, str] | None = None) -> Any:
    from btc_trader.stack.settings import load_stack_with_overrides

    return load_stack_with_overrides(args.stack or "dev", {**_overrides(args.set), **(extra or {})})


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
        result.fills = [Fill(int(i), side, float(q), float(p), float(f)) for i, side, q, p, f in live.fills]
        extra = {"stack": args.stack or "dev", "approved_intents": live.approvals,
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
    period = {"start": _iso(int(bars.timestamps[0])), "end": _iso(int(bars.timestamps[-1]) + bars.bar_seconds),
              "bars": len(bars), "bar_seconds": bars.bar_seconds}
    report = {"strategy": args.strategy, "data": Path(args.data).name, "period": period,
              **{k: _plain(v) for k, v in figures.items()}, **extra,
              "cash": cash, "fee_bps": fee, "slippage_bps": slip, "bars": len(bars),
              "simulation_seconds": round(elapsed, 6)}
    return result, report


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    """`btc-trader backtest`: one run, printed as tables (or JSON), with optional charts and export."""
    if not args.data:
        raise BacktestError("backtest needs --data FILE (a candle CSV; `btc-trader data download` makes one)")
    _refuse_options_that_do_not_apply(args)
    for option, path, suffixes in (("--report", args.report, (".html", ".png")),
                                   ("--trades", args.trades, (".csv", ".json"))):
        if path and Path(path).suffix.lower() not in suffixes:
            raise BacktestError(f"{option} writes {' or '.join(suffixes)}, got {path}")
    settings = _settings(args) if args.strategy == "live" else None
    bars = _load(args)
    result, report = simulate_strategy(bars, args, settings, show_progress=args.progress)
    written = []
    if args.report:
        from btc_trader.backtest.report import write_png, write_report

        target = Path(args.report)
        title = f"btc-trader backtest: {args.strategy} on {Path(args.data).name}"
        if target.suffix.lower() == ".html":
            write_report(target, bars, result, report, title)
        else:
            write_png(target, bars, result, report, title)
        written.append(f"charts: {target}")
    if args.trades:
        from btc_trader.backtest.report import write_trades

        target = write_trades(Path(args.trades), bars, result)
        written.append(f"trades: {target} ({len(result.fills)} fills, {report['closed_trades']} closed trades)")
    if args.json:
        print(json.dumps(report, default=float))
        for line in written:
            print(f"wrote {line}", file=sys.stderr)
        return 0
    from btc_trader.backtest.report import render_text

    print(render_text(report))
    for line in written:
        print(f"wrote {line}")
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
            "total_return_pct": report["total_return_pct"], "closed_trades": report["closed_trades"],
            "fills": report["fills"],
            "notes": ([f"sharpe is {report['annualised_caveat']}"] if report["annualised_caveat"] else [])
            + report.get("notes", [])}


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
    """`btc-trader backtest sweep`: every --grid combination in parallel, ranked by Sharpe."""
    if not args.data:
        raise BacktestError("backtest sweep needs --data FILE")
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
    # The notes (models left out, --ignore-skill is not live behaviour) are the same for every run.
    notes = list(dict.fromkeys(note for row in rows for note in row.pop("notes")))
    if args.json:
        print(json.dumps({"runs": rows, "notes": notes, "seconds": round(time.perf_counter() - started, 3)},
                         default=float))
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return 0
    from btc_trader.cli_support import render_table

    shown = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]
    keys = list(combinations[0])
    print(render_table(shown, ["sharpe", "max_drawdown_pct", "total_return_pct", "closed_trades", "fills", *keys]))
    print(f"\n{len(rows)} runs on {min(workers, len(combinations))} processes in "
          f"{time.perf_counter() - started:.1f} s, ranked by Sharpe")
    for note in notes:
        print(f"note: {note}")
    return 0
