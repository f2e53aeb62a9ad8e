"""`btc-trader`: everything local — emulator, invocations, data.

Errors are one line naming the problem and the fix, with a non-zero exit; `--debug` shows the
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from btc_trader.domain.candles import CandleError

EXIT_USAGE = 2


class CliError(RuntimeError):
    """A user-facing problem; printed as one line."""


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--at must be an ISO-8601 time like 2023-03-11T12:00:00Z, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# --- local ------------------------------------------------------------------------------------


def cmd_local_up(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator

    state, started = emulator.start(args.stack, args.port)
    verb = "started" if started else "already running"
    print(f"local emulator {verb}: stack {state.stack}, {state.endpoint} (pid {state.pid}, region {state.region})")
    for kind, items in emulator.resources(state).items():
        print(f"  {kind}: {', '.join(items) or '-'}")
    print("stop it with: btc-trader local down" + ("" if args.port == emulator.DEFAULT_PORT else f" --port {args.port}"))
    return 0


def cmd_local_down(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator

    state = emulator.stop(args.port)
    print(f"local emulator on port {args.port} stopped" if state else f"no local emulator recorded on port {args.port}")
    return 0


def cmd_local_status(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator

    states = [emulator.read_state(args.port)] if args.port else emulator.recorded_states()
    states = [s for s in states if s]
    if not states:
        print("no local emulator is running; start one with `btc-trader local up`")
        return 0
    for state in states:
        if emulator.is_running(state):
            print(f"running: stack {state.stack} at {state.endpoint} (pid {state.pid}, since {state.started_at})")
            for kind, items in emulator.resources(state).items():
                print(f"  {kind}: {', '.join(items) or '-'}")
        else:
            print(f"dead: stack {state.stack} on port {state.port} (pid {state.pid} is gone); "
                  f"clean up with `btc-trader local down --port {state.port}`")
    return 0


def _read_event(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"--event: cannot read {source} ({exc.strerror})") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--event {source}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(event, dict):
        raise CliError(f"--event {source}: the event must be a JSON object")
    return event


def cmd_local_invoke(args: argparse.Namespace) -> int:
    from btc_trader.local import emulator, invoke

    if args.function not in invoke.FUNCTIONS:
        raise CliError(f"unknown function {args.function!r}; known: {', '.join(sorted(invoke.FUNCTIONS))}")
    state = emulator.find_running(args.port)
    if args.stack and args.stack != state.stack:
        raise CliError(f"the running emulator holds stack {state.stack!r}, not {args.stack!r}; "
                       f"restart it with `btc-trader local down && btc-trader local up --stack {args.stack}`")
    replays = invoke.parse_replays(args.replay or [])
    models = invoke.parse_models(args.models) if args.models else None
    if args.event:
        event = _read_event(args.event)
    else:
        from components.settings import load_stack_file

        at = _parse_time(args.at) if args.at else datetime.now(UTC)
        symbol = args.symbol or load_stack_file(state.stack).symbols[0]
        event = invoke.default_event(args.function, at, state.region, symbol)
    outcome = invoke.invoke(args.function, event, state, replays, models, args.real_models)
    _print_json(outcome["result"])
    return 0 if outcome["ok"] else 1


def cmd_local_generate_event(args: argparse.Namespace) -> int:
    from btc_trader.local import invoke
    from components.settings import stack_region

    at = _parse_time(args.at) if args.at else datetime.now(UTC)
    if args.kind == "schedule":
        _print_json(invoke.scheduled_event(at, stack_region(args.stack)))
    else:
        from components.settings import load_stack_file

        _print_json(invoke.workflow_input(at, load_stack_file(args.stack).symbols[0]))
    return 0


def cmd_local_run(args: argparse.Namespace) -> int:
    from btc_trader.local.invoke import parse_models
    from btc_trader.local.run import local_run

    overrides = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set must look like key=value, got {item!r}")
        overrides[key] = value
    if args.ticks < 1:
        raise CliError(f"--ticks must be at least 1, got {args.ticks}")
    if not Path(args.replay).is_file():
        raise CliError(f"--replay {args.replay}: file not found")
    start = int(_parse_time(args.start).timestamp()) if args.start else None
    lines = sys.stderr if args.json else sys.stdout
    summary = local_run(
        Path(args.replay), args.ticks, args.stack, start,
        parse_models(args.models) if args.models else None, overrides,
        emit=lambda line: print(line, file=lines, flush=True),
    )
    if args.json:
        _print_json(summary.to_json())
        return 0
    data = summary.to_json()
    print(f"\nsummary ({data['stack']} stack, paper, {data['ticks']} decisions "
          f"{data['first_decision']} .. {data['last_decision']} on {data['replay']}):")
    for key in ("executions", "trades", "rejections", "wallet"):
        print(f"  {key:<11} {json.dumps(data[key])}")
    print(f"  equity      {data['start_equity_usd']:.2f} -> {data['final_equity_usd']:.2f} USD "
          f"({data['return_pct']:+.3f}%), buy and hold {data['buy_and_hold_pct']:+.3f}%")
    print(f"  kill switch {'ENGAGED' if data['kill_switch'] else 'off'}")
    for note in data["notes"]:
        print(f"  note: {note}")
    return 0


def cmd_reset_kill_switch(args: argparse.Namespace) -> int:
    """Reset the sticky drawdown kill switch (the manual one is the SSM parameter)."""
    import boto3

    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.local import emulator
    from components.naming import ResourceNames
    from components.settings import load_stack_file, stack_region

    settings = load_stack_file(args.stack)
    if args.aws:
        region = stack_region(args.stack)
        account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
        from btc_trader.local.environ import patched_environ

        names, environment = ResourceNames(args.stack, account, region), patched_environ({"AWS_DEFAULT_REGION": region})
    else:
        state = emulator.find_running(args.port)
        names, environment = state.names, emulator.aws_environment(state)
    symbol = args.symbol or settings.symbols[0]
    with environment:
        store = DynamoDBTradingStore(names.table("trades"), names.table("trading-state"))
        wallet, risk, version = store.load_state(symbol, settings.paper_starting_cash)
        if not risk.kill_switch:
            print(f"the kill switch of {symbol} on {names.prefix} is not engaged; nothing to reset")
            return 0
        store.save_state(symbol, wallet, risk.reset_kill_switch(), version)
    print(f"kill switch of {symbol} on {names.prefix} reset (it was engaged: {risk.kill_reason})")
    return 0


# --- data -------------------------------------------------------------------------------------


def cmd_data_backfill(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from btc_trader.adapters.dynamodb_prices import DynamoDBPriceRepository
    from btc_trader.local import emulator
    from btc_trader.services.backfill import backfill, bar_length
    from components.settings import load_stack_file

    state = emulator.find_running(args.port)
    settings = load_stack_file(state.stack)
    symbol = args.symbol or settings.symbols[0]
    if args.file:
        from btc_trader.adapters.candle_files import read_candles

        candles = read_candles(args.file)
        bar_seconds = bar_length(candles)
        source = f"file:{Path(args.file).name}"
    else:
        from btc_trader.adapters.binance_klines import INTERVAL_SECONDS, BinanceKlinesClient
        from btc_trader.adapters.price_sources import build_session

        client = BinanceKlinesClient(build_session(settings.http_retries), args.exchange)
        end = int(time.time()) // 60 * 60
        start = end - args.days * 86_400
        total = (end - start) // INTERVAL_SECONDS[args.interval]
        bar_seconds = INTERVAL_SECONDS[args.interval]
        with tqdm(total=total, desc=f"fetching {args.exchange} klines", unit="bar", file=sys.stderr,
                  disable=None) as bar:
            candles = list(client.candles(symbol, start, end, args.interval, on_page=bar.update))
        source = f"{args.exchange}:klines:{args.interval}"
    with emulator.aws_environment(state), tqdm(
        total=len(candles), desc="writing prices", unit="bar", file=sys.stderr, disable=None
    ) as bar:
        result = backfill(
            DynamoDBPriceRepository(state.names.table("prices")), symbol, candles,
            source=source, bar_seconds=bar_seconds, retention_days=settings.price_retention_days,
            now=int(time.time()),
            on_progress=bar.update,
        )
    if not result.bars:
        print(f"no bars written for {symbol} from {source}")
        return 0
    first = datetime.fromtimestamp(result.first, UTC).isoformat()
    last = datetime.fromtimestamp(result.last, UTC).isoformat()
    print(f"wrote {result.bars} bars of {symbol} from {source} into {state.names.table('prices')}: {first} .. {last}")
    return 0


def cmd_data_synthetic(args: argparse.Namespace) -> int:
    from btc_trader.local.synthetic import write_synthetic_candles

    end = int(_parse_time(args.at).timestamp())
    files = write_synthetic_candles(Path(args.out), end)
    print("SYNTHETIC candles (not market data):", file=sys.stderr)
    for name, path in files.items():
        print(f"{name}={path}")
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from btc_trader.local.emulator import DEFAULT_PORT

    parser = argparse.ArgumentParser(prog="btc-trader", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local AWS emulator and handlers").add_subparsers(
        dest="local_command", required=True
    )
    up = local.add_parser("up", help="start the emulator with every resource of the stack")
    up.add_argument("--stack", default="dev")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.set_defaults(handler=cmd_local_up)
    down = local.add_parser("down", help="stop the emulator")
    down.add_argument("--port", type=int, default=DEFAULT_PORT)
    down.set_defaults(handler=cmd_local_down)
    status = local.add_parser("status", help="what runs where")
    status.add_argument("--port", type=int)
    status.set_defaults(handler=cmd_local_status)
    invoke = local.add_parser("invoke", help="run a function's handler against the emulator")
    invoke.add_argument("function", help="price-collector, ml-predictor, prediction-evaluator, risk-manager, trade-executor")
    invoke.add_argument("--event", help="event JSON file, or - for stdin (default: a scheduled event)")
    invoke.add_argument("--stack", help="check that the running emulator holds this stack")
    invoke.add_argument("--replay", action="append", metavar="NAME=FILE", help="replace the live sources (repeatable)")
    invoke.add_argument("--at", help="the run's clock, ISO-8601 (default: now)")
    invoke.add_argument("--models", help="ml-predictor/evaluator: override mlModels, e.g. custom")
    invoke.add_argument("--symbol", help="default: the stack's first symbol")
    invoke.add_argument("--real-models", action="store_true",
                        help="send Bedrock/SageMaker calls to AWS with your credentials; storage stays local")
    invoke.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    invoke.set_defaults(handler=cmd_local_invoke)
    run = local.add_parser("run", help="collector + trading workflow over replayed candles (paper)")
    run.add_argument("--replay", required=True, help="candle CSV(.gz): the market to replay")
    run.add_argument("--ticks", type=int, default=60, help="trading decisions to run")
    run.add_argument("--stack", default="dev")
    run.add_argument("--from", dest="start", help="first decision time, ISO-8601 (default: as early as history allows)")
    run.add_argument("--models", help="models to run (default: custom; Bedrock/SageMaker need AWS)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a stack key (repeatable)")
    run.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    run.set_defaults(handler=cmd_local_run)
    generate = local.add_parser("generate-event", help="print a sample event")
    generate.add_argument("kind", choices=["schedule", "workflow-input"])
    generate.add_argument("--at")
    generate.add_argument("--stack", default="dev")
    generate.set_defaults(handler=cmd_local_generate_event)

    trading = commands.add_parser("trading", help="operate a stack's trading").add_subparsers(
        dest="trading_command", required=True)
    reset = trading.add_parser("reset-kill-switch", help="re-arm trading after the drawdown kill switch engaged")
    reset.add_argument("--stack", default="dev")
    reset.add_argument("--symbol")
    reset.add_argument("--aws", action="store_true", help="the deployed stack (your AWS credentials), not the emulator")
    reset.add_argument("--port", type=int)
    reset.set_defaults(handler=cmd_reset_kill_switch)

    from btc_trader.backtest.cli import register as register_backtest

    register_backtest(commands)

    data = commands.add_parser("data", help="price history").add_subparsers(dest="data_command", required=True)
    fill = data.add_parser("backfill", help="load candles into the prices table")
    origin = fill.add_mutually_exclusive_group(required=True)
    origin.add_argument("--file", help="candle CSV(.gz): timestamp,open,high,low,close,volume")
    origin.add_argument("--exchange", choices=["binance", "binanceus"], help="public klines endpoint")
    fill.add_argument("--days", type=int, default=2, help="with --exchange: how far back")
    fill.add_argument("--interval", default="1m", help="with --exchange: bar length")
    fill.add_argument("--symbol", help="default: the stack's first symbol")
    fill.add_argument("--port", type=int)
    fill.set_defaults(handler=cmd_data_backfill)
    synthetic = data.add_parser("synthetic", help="write clearly labelled synthetic candles")
    synthetic.add_argument("--out", required=True)
    synthetic.add_argument("--at", required=True, help="the last bar's time, ISO-8601")
    synthetic.set_defaults(handler=cmd_data_synthetic)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `btc-trader` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except Exception as exc:
        if args.debug:
            raise
        known = _known_errors()
        if isinstance(exc, known):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, BotoCoreError | ClientError):
            print(f"error: AWS: {exc} (check your AWS profile or credentials and the stack's region)",
                  file=sys.stderr)
            return EXIT_USAGE
        print(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _known_errors() -> tuple[type[BaseException], ...]:
    from btc_trader.adapters.price_sources.base import SourceError
    from btc_trader.backtest.cli import BacktestError
    from btc_trader.local.emulator import EmulatorError
    from btc_trader.local.invoke import InvokeError
    from btc_trader.local.run import LocalRunError
    from components.settings import SettingsError

    return (CliError, EmulatorError, InvokeError, SettingsError, CandleError, SourceError, LocalRunError,
            BacktestError)


if __name__ == "__main__":
    sys.exit(main())
