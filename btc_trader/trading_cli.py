"""`btc-trader trading reconcile`: the operator's view of a live ledger beside the exchange.

It runs the reconciler's pass (unresolved orders looked up, never re-sent; ledger against the
exchange's balances), prints both sides, and on confirmation adopts the exchange's balances as
the ledger, closes orders the exchange does not know, and lifts the symbol's block.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from btc_trader.cli_support import CliError, stack_target


def _live_services(settings: Any, names: Any) -> Any:
    """The reconcile service of a deployed live stack, with its keys from Secrets Manager."""
    import boto3

    from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
    from btc_trader.adapters.exchange.ccxt_executor import CcxtExecutor
    from btc_trader.services.reconciliation import ReconcileService
    from btc_trader.services.trading import ExecutionService
    from btc_trader.services.trading_wiring import trading_params
    from btc_trader.stack.environment import trading_config

    config = trading_config(settings, names)
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=settings.exchange.secret_name)
    keys = json.loads(secret["SecretString"])
    live = CcxtExecutor(settings.exchange.id, keys["apiKey"], keys["secret"], settings.exchange.sandbox)
    store = DynamoDBTradingStore(config.trades_table, config.state_table)
    return ReconcileService(ExecutionService(store, trading_params(config), live))


def cmd_reconcile(args: argparse.Namespace, ask: Callable[[str], str] = input) -> int:
    """Show a live symbol's ledger and exchange side by side; adopt the exchange's on confirmation."""
    from btc_trader.stack.settings import load_stack_file

    if not args.aws:
        raise CliError("trading reconcile compares a deployed live stack with its exchange: pass --aws "
                       "(local stacks trade on paper)")
    settings = load_stack_file(args.stack)
    if not settings.enable_real_trading:
        raise CliError(f"stack {args.stack} trades on paper (btc-trader:enableRealTrading is false): "
                       "there is no exchange account to reconcile")
    symbol = args.symbol or settings.symbols[0]
    if symbol not in settings.symbols:
        raise CliError(f"--symbol {symbol} is not one of the stack's symbols {list(settings.symbols)}")
    names, environment, _ = stack_target(args.stack, aws=True, port=None)
    with environment:
        service = _live_services(settings, names)
        now = int(time.time())
        report = service.check(symbol, now)
        print("\n".join(report.lines()))
        if not report.blocked_reason and not report.unresolved and report.check.agrees:
            print(f"{symbol} on {names.prefix}: ledger and exchange agree; nothing to adopt")
            return 0
        question = (f"Adopt the exchange's balances as the ledger of {symbol} on {names.prefix}, close orders the "
                    "exchange does not know and lift the block? [y/N] ")
        if not args.yes and ask(question).strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return 1
        after = service.adopt_exchange(symbol, int(time.time()))
    print("\n".join(after.lines()))
    if after.unresolved:
        print(f"{len(after.unresolved)} order(s) are still open on the exchange: cancel them there, then run "
              "this again; the symbol stays blocked until they are terminal")
        return 1
    print(f"{symbol} on {names.prefix}: the ledger now holds the exchange's balances; trading resumes")
    return 0


def register(trading: Any) -> None:
    """Add `reconcile` to the `trading` command group."""
    summary = "show a live ledger beside the exchange; adopt the exchange's side on confirmation"
    reconcile = trading.add_parser("reconcile", help=summary, description=summary[0].upper() + summary[1:] + ".")
    reconcile.add_argument("--stack", default="prod", help="the live stack to reconcile (default: %(default)s)")
    reconcile.add_argument("--symbol", help="default: the stack's first symbol")
    reconcile.add_argument("--aws", action="store_true", help="the deployed stack (your AWS credentials)")
    reconcile.add_argument("--yes", action="store_true", help="adopt without asking")
    reconcile.set_defaults(handler=cmd_reconcile)
