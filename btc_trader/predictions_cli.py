"""`btc-trader predictions export`: every model's stored output, to a file the backtester replays."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from btc_trader.cli_support import CliError, add_target_arguments, parse_time, stack_target


def cmd_export(args: argparse.Namespace) -> int:
    """Write the stack's stored predictions of one symbol as JSON Lines (see backtest.recorded)."""

    from btc_trader.adapters.dynamodb_predictions import DynamoDBPredictionStore
    from btc_trader.backtest.recorded import write_export
    from btc_trader.stack.settings import load_stack_file
    from btc_trader.storage_schema import PREDICTION_SCORES, PREDICTIONS

    settings = load_stack_file(args.stack)
    symbol = args.symbol or settings.symbols[0]
    start = int(parse_time(args.start, "--from").timestamp()) if args.start else 0
    end = int(parse_time(args.end, "--to").timestamp()) if args.end else int(time.time()) + 1
    if end <= start:
        raise CliError(f"--to must be after --from, got {args.start} .. {args.end}")
    names, environment, _ = stack_target(args.stack, args.aws, args.port)
    with environment:
        store = DynamoDBPredictionStore(names.table(PREDICTIONS.role), names.table(PREDICTION_SCORES.role))
        written = write_export(Path(args.out), store.predictions(symbol, start, end))
    where = "AWS" if args.aws else "the emulator"
    print(f"wrote {written} predictions of {symbol} from {names.table(PREDICTIONS.role)} ({where}) to {args.out}",
          file=sys.stderr if args.out == "/dev/stdout" else sys.stdout)
    return 0


def register(commands: Any) -> None:
    """Add `predictions export` to the `btc-trader` command."""
    predictions = commands.add_parser("predictions", help="stored predictions").add_subparsers(
        dest="predictions_command", required=True)
    export = predictions.add_parser("export", help="write every model's stored outputs for `backtest --predictions`")
    add_target_arguments(export, "predictions to export")
    export.add_argument("--from", dest="start", help="first prediction time, ISO-8601 (default: all)")
    export.add_argument("--to", dest="end", help="end (exclusive), ISO-8601 (default: now)")
    export.add_argument("--out", required=True, help="JSON Lines file to write")
    export.set_defaults(handler=cmd_export)
