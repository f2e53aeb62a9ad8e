"""`btc-trader`: everything local — emulator, invocations, data.

Errors are one line naming the problem and the fix, with a non-zero exit; `--debug` shows the
traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from btc_trader.cli_support import (
    EXIT_USAGE,
    CliError,
    CliParser,
    check_arguments,
    describe_error,
    parse_time,
)
from btc_trader.domain.candles import CandleError


def cmd_reset_kill_switch(args: argparse.Namespace) -> int:
    """Reset the sticky drawdown kill switch (the manual one is the SSM parameter)."""
    import boto3

    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.local import emulator
    from btc_trader.stack.naming import ResourceNames
    from btc_trader.stack.settings import load_stack_file, stack_region

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
    from btc_trader.stack.settings import load_stack_file

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

    end = int(parse_time(args.at).timestamp())
    files = write_synthetic_candles(Path(args.out), end)
    print("SYNTHETIC candles (not market data):", file=sys.stderr)
    for name, path in files.items():
        print(f"{name}={path}")
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:

    parser = CliParser(prog="btc-trader", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    from btc_trader.local.cli import register as register_local

    register_local(commands)

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

    from btc_trader.cost_cli import register as register_cost

    register_cost(commands)

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
        check_arguments(args)  # before anything starts: nothing to clean up after a refusal
        return args.handler(args)
    except BrokenPipeError:  # `btc-trader ... | head`: the reader has what it wanted
        sys.stderr.close()  # nothing more can be written; keep Python from complaining at exit
        return 0
    except Exception as exc:
        if args.debug:
            raise
        known = _known_errors()
        if isinstance(exc, known):
            print("error: " + "; ".join(line for line in str(exc).splitlines() if line.strip()), file=sys.stderr)
            return EXIT_USAGE
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, BotoCoreError | ClientError):
            print(f"error: AWS: {exc} (check your AWS profile or credentials and the stack's region)",
                  file=sys.stderr)
            return EXIT_USAGE
        described = describe_error(exc)
        if described:
            print(f"error: {described}", file=sys.stderr)
            return EXIT_USAGE
        print(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _known_errors() -> tuple[type[BaseException], ...]:
    from btc_trader.adapters.price_sources.base import SourceError
    from btc_trader.backtest.cli import BacktestError
    from btc_trader.cost import CostError
    from btc_trader.local.emulator import EmulatorError
    from btc_trader.local.invoke import InvokeError
    from btc_trader.local.run import LocalRunError
    from btc_trader.stack.settings import SettingsError

    return (CliError, EmulatorError, InvokeError, SettingsError, CandleError, SourceError, LocalRunError,
            BacktestError, CostError)


if __name__ == "__main__":
    sys.exit(main())
