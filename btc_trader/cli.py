"""btc-trader: ML-assisted Bitcoin trading, paper-first — local emulator, backtests, cost, data.

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
    add_target_arguments,
    check_arguments,
    describe_error,
    parse_time,
    stack_target,
)
from btc_trader.domain.candles import CandleError


def cmd_reset_kill_switch(args: argparse.Namespace) -> int:
    """Reset the sticky drawdown kill switch (the manual one is the SSM parameter).

    The equity peak becomes the current marked equity (at the newest stored price): with the old
    peak the drawdown would still be at the limit and the switch would engage again at once.
    """

    from btc_trader.adapters.dynamodb_history import DynamoDBPriceHistory
    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.domain.risk import reset_kill_switch
    from btc_trader.services.trading import PRICE_LOOKBACK_S
    from btc_trader.stack.settings import load_stack_file

    settings = load_stack_file(args.stack)
    names, environment, _ = stack_target(args.stack, args.aws, args.port)
    symbol = args.symbol or settings.symbols[0]
    if symbol not in settings.symbols:
        raise CliError(f"{symbol} is not a symbol of stack {args.stack} ({', '.join(settings.symbols)})")
    with environment:
        store = DynamoDBTradingStore(names.table("trades"), names.table("trading-state"))
        wallet, risk, version = store.load_state(symbol, settings.paper_starting_cash)
        if not risk.kill_switch:
            print(f"the kill switch of {symbol} on {names.prefix} is not engaged; nothing to reset")
            return 0
        stored = DynamoDBPriceHistory(names.table("prices")).price_at(symbol, int(time.time()), PRICE_LOOKBACK_S)
        price = stored[1] if stored else risk.last_price
        if not price:
            raise CliError(f"no price of {symbol} stored in the last day and none remembered: cannot mark equity "
                           "for the new peak; let the price collector run first")
        wallet, reset = reset_kill_switch(wallet, risk, price)
        store.save_state(symbol, wallet, reset, version)
    where = "the newest stored price" if stored else "the last price the risk manager used (none stored today)"
    print(f"kill switch of {symbol} on {names.prefix} reset (it was engaged: {risk.kill_reason}); equity peak set "
          f"to {wallet.peak_equity_usd:.2f} USD, marked at {price:.2f} ({where})")
    return 0


def cmd_exchange_check(args: argparse.Namespace) -> int:
    """Check the stack's exchange keys: valid, may trade, may not withdraw; balances, limits, network."""
    import json

    import boto3

    from btc_trader.adapters.exchange.account_check import check_exchange
    from btc_trader.adapters.exchange.ccxt_executor import CcxtExecutor
    from btc_trader.stack.settings import load_stack_file

    settings = load_stack_file(args.stack)
    exchange = settings.exchange
    if not exchange.secret_name:
        raise CliError(f"stack {args.stack} has no exchange.secretName: there are no keys to check (set "
                       f"`btc-trader:exchange.secretName` and create the secret first)")
    symbol = args.symbol or settings.symbols[0]
    _, environment, target = stack_target(args.stack, args.aws, args.port)
    where = f"the Secrets Manager of {target}"
    with environment:
        keys_text = boto3.client("secretsmanager").get_secret_value(SecretId=exchange.secret_name)["SecretString"]
    try:
        keys = json.loads(keys_text)
        api_key, secret = keys["apiKey"], keys["secret"]
    except (ValueError, KeyError, TypeError):
        raise CliError(f"secret {exchange.secret_name} in {where} must be JSON with apiKey and secret") from None
    executor = CcxtExecutor(exchange.id, api_key, secret, exchange.sandbox)
    report = check_exchange(executor, symbol, exchange.sandbox)
    print(f"{report.exchange_id} {report.network.upper()} ({'sandbox: true' if exchange.sandbox else 'sandbox: false'}), "
          f"keys from {exchange.secret_name} in {where}")
    for finding in report.findings:
        mark = {True: "ok  ", False: "FAIL", None: "?   "}[finding.ok]
        print(f"  {mark} {finding.check}: {finding.detail}")
    if report.limits:
        limits = report.limits
        print(f"  market {report.market_symbol}: min amount {limits['min_amount']}, max amount {limits['max_amount']}, "
              f"min notional {limits['min_notional']}, amount step {limits['amount_step']}, "
              f"price step {limits['price_step']}")
    for currency, amounts in sorted(report.balances.items()):
        print(f"  balance {currency}: free {amounts['free']:g}, in orders {amounts['used']:g}, "
              f"total {amounts['total']:g}")
    if report.failed:
        print(f"not ready to trade: {', '.join(f.check for f in report.failed)}", file=sys.stderr)
        return 1
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


def cmd_data_download(args: argparse.Namespace) -> int:
    """Public OHLCV through ccxt into a candle file; offline says so."""
    from btc_trader.adapters.ohlcv_download import download_candles, write_candle_file

    if args.days <= 0:
        raise CliError(f"--days must be positive, got {args.days:g}")
    end = int(time.time())
    start = end - int(args.days * 86_400)
    from tqdm import tqdm

    with tqdm(desc=f"downloading {args.exchange} {args.timeframe} candles", unit="bar", file=sys.stderr,
              disable=None) as bar:  # shown on a terminal only
        candles, market = download_candles(args.exchange, args.symbol, args.timeframe, start, end,
                                           progress=lambda n: bar.update(n - bar.n))
    written = write_candle_file(Path(args.out), candles)
    first = datetime.fromtimestamp(candles[0].timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    last = datetime.fromtimestamp(candles[-1].timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"wrote {len(candles)} {args.timeframe} bars of {market} from {args.exchange} to {written}: "
          f"{first} .. {last}")
    print(f"  try: btc-trader backtest --data {written}")
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("btc-trader")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; every option has help text and a stated default."""
    from btc_trader.cli_parser import CommandParser

    parser = CommandParser(prog="btc-trader", description=__doc__.splitlines()[0],
                           epilog="`btc-trader COMMAND --help` explains a command; "
                                  "bare `btc-trader COMMAND` lists its subcommands.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command")

    from btc_trader.local.cli import register as register_local

    register_local(commands)

    trading = commands.add_parser("trading", help="operate a stack's trading").add_subparsers(
        dest="trading_command")
    reset = trading.add_parser("reset-kill-switch", help="re-arm trading after the drawdown kill switch engaged")
    add_target_arguments(reset, "kill switch to reset")
    reset.set_defaults(handler=cmd_reset_kill_switch)
    from btc_trader.trading_cli import register as register_trading

    register_trading(trading)

    exchange = commands.add_parser("exchange", help="the stack's exchange account").add_subparsers(
        dest="exchange_command", required=True)
    check = exchange.add_parser("check", help="keys valid, trading permitted, withdrawals off, balances, limits")
    add_target_arguments(check, "exchange keys to check", "read the keys from the deployed stack's Secrets Manager")
    check.set_defaults(handler=cmd_exchange_check)

    from btc_trader.backtest.cli import register as register_backtest

    register_backtest(commands)

    from btc_trader.cost_cli import register as register_cost

    register_cost(commands)

    from btc_trader.build.cli import register as register_build

    register_build(commands)

    from btc_trader.predictions_cli import register as register_predictions

    register_predictions(commands)

    data = commands.add_parser("data", help="price history: download candles, load them into the emulator"
                               ).add_subparsers(dest="data_command")
    download = data.add_parser(
        "download", help="download OHLCV candles from an exchange's public API into a candle file",
        description="Download public OHLCV candles through ccxt (paginated, rate-limit aware) into the candle "
                    "format `backtest`, `data backfill` and `local run --replay` read: "
                    "timestamp,open,high,low,close,volume (ISO-8601 UTC). No API key needed.")
    download.add_argument("--exchange", default="binance", help="ccxt exchange id, e.g. binance, binanceus, "
                          "coinbase, kraken")
    download.add_argument("--symbol", default="BTC-USD",
                          help="BASE-QUOTE; USD means USDT on exchanges that list no USD market (binance)")
    download.add_argument("--days", type=float, default=7, help="how far back from now")
    download.add_argument("--timeframe", default="1m", help="bar length, as the exchange names it")
    download.add_argument("--out", required=True, help="the candle file to write (.csv or .csv.gz)")
    download.set_defaults(handler=cmd_data_download)
    fill = data.add_parser("backfill", help="load candles into the running emulator's prices table")
    origin = fill.add_mutually_exclusive_group(required=True)
    origin.add_argument("--file", help="candle CSV(.gz): timestamp,open,high,low,close,volume "
                        "(required: --file or --exchange)")
    origin.add_argument("--exchange", choices=["binance", "binanceus"],
                        help="public klines endpoint (required: --file or --exchange)")
    fill.add_argument("--days", type=int, default=2, help="with --exchange: how far back")
    fill.add_argument("--interval", default="1m", help="with --exchange: bar length")
    fill.add_argument("--symbol", help="default: the stack's first symbol")
    fill.add_argument("--port", type=int, help="the emulator's port (default: the running one)")
    fill.set_defaults(handler=cmd_data_backfill)
    synthetic = data.add_parser("synthetic", help="write clearly labelled synthetic candles")
    synthetic.add_argument("--out", required=True, help="directory for the candle files")
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
    from btc_trader.adapters.ohlcv_download import DownloadError
    from btc_trader.adapters.price_sources.base import SourceError
    from btc_trader.backtest.cli import BacktestError
    from btc_trader.build import BuildError
    from btc_trader.cost import CostError
    from btc_trader.local.emulator import EmulatorError
    from btc_trader.local.invoke import InvokeError
    from btc_trader.local.run import LocalRunError
    from btc_trader.stack.settings import SettingsError

    return (CliError, EmulatorError, InvokeError, SettingsError, CandleError, SourceError, LocalRunError,
            BacktestError, CostError, DownloadError, BuildError)


if __name__ == "__main__":
    sys.exit(main())
