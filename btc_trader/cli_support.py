"""What every `btc-trader` subcommand module shares: the user-facing error and small parsers.

Every CLI error after parsing is one line on stderr naming the problem and the fix, with exit
status 2 (`EXIT_USAGE`): the checks every command's arguments get before anything starts
(`check_arguments`: ports, counts, money, times, symbols, paths, JSON files) and the known
errors of the library (`describe_error`). argparse's own refusals (`cli_parser.CommandParser`)
show the usage line first. Only a bug is "unexpected".
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from btc_trader.domain.candles import MAX_EPOCH_S

EXIT_USAGE = 2
SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{2,10}-[A-Z0-9]{2,10}")


class CliError(RuntimeError):
    """A user-facing problem; printed as one line."""


def parse_time(text: str, option: str = "--at") -> datetime:
    """An ISO-8601 time from the command line; zone-less means UTC (`check_arguments` says so)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        seconds = value.timestamp()
    except (ValueError, OverflowError):
        raise CliError(f"{option} must be an ISO-8601 time like 2023-03-11T12:00:00Z, got {text!r}") from None
    if not 0 <= seconds < MAX_EPOCH_S:
        raise CliError(f"{option} must be between 1970 and 2100, got {text!r}")
    return value


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """`--set key=value` (repeatable) -> {key: value}; the settings module validates them."""
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set must look like key=value, got {item!r}")
        overrides[key] = value
    return overrides


def render_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as an aligned text table (missing values shown as -)."""
    import pandas as pd  # only the table commands pay for pandas

    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    return frame.astype(object).fillna("-").to_string(index=False)  # object: "-" may fill a float column


# --- checks every command's arguments get before anything starts -------------------------------

# name -> (lowest, highest, what it is); whole numbers.
_COUNTS = {
    "port": (1, 65535, "a TCP port"), "emulator_port": (1, 65535, "a TCP port"),
    "workers": (1, 256, "a number of processes"), "days": (1, 3650, "a number of days"),
    "ticks": (1, 1_000_000, "a number of decisions"), "tail": (0, 10_000_000, "a number of records"),
    "limit": (1, 10_000_000, "a number of rows"), "width": (20, 100_000, "a width in characters"),
}
# name -> (lowest, highest, lowest allowed?, what it is); finite numbers.
_AMOUNTS = {
    "fee_bps": (0, 10_000, True, "a fee in bps"), "slippage_bps": (0, 10_000, True, "a slippage in bps"),
    "cash": (0, 1e12, False, "a cash amount in USD"), "tick_seconds": (0, 86_400, True, "a number of seconds"),
}
_TIMES = {"at": "--at", "start": "--from", "end": "--to"}
_INPUT_FILES = {"data": "--data", "file": "--file", "event": "--event", "env_vars": "--env-vars"}
# JSON files whose syntax is checked before an emulator is looked for or started.
_JSON_FILES = {"event": "--event", "env_vars": "--env-vars"}
_OUTPUT_PATHS = {"report": "--report", "out": "--out"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse impossible argument values with CliError before a command starts anything.

    Checked by name wherever a command has the option, so every command gets the same rules.
    A zone-less time is read as UTC, and stderr says so.
    """
    values = vars(args)
    for name, (low, high, what) in _COUNTS.items():
        value = values.get(name)
        if value is not None and not low <= value <= high:
            raise CliError(f"{_flag(name)} must be {what} from {low} to {high}, got {value}")
    for name, (low, high, inclusive, what) in _AMOUNTS.items():
        value = values.get(name)
        if value is None:
            continue
        above_low = value >= low if inclusive else value > low
        if not (math.isfinite(value) and above_low and value <= high):
            bound = f"at least {low:g}" if inclusive else f"more than {low:g}"
            raise CliError(f"{_flag(name)} must be {what}, finite, {bound} and at most {high:g}, got {value}")
    for name, option in _TIMES.items():
        text = values.get(name)
        if isinstance(text, str):
            value = parse_time(text, option)
            if datetime.fromisoformat(text.strip().replace("Z", "+00:00")).tzinfo is None:
                print(f"note: {option} {text} has no zone; read as UTC ({value.isoformat()})", file=sys.stderr)
    symbol = values.get("symbol")
    if isinstance(symbol, str) and not SYMBOL_PATTERN.fullmatch(symbol):
        raise CliError(f"--symbol must look like BASE-QUOTE in capitals (e.g. BTC-USD), got {symbol!r}")
    if values.get("command") == "data" and values.get("data_command") == "backfill" and values.get("exchange"):
        from btc_trader.adapters.binance_klines import INTERVAL_SECONDS

        if values.get("interval") not in INTERVAL_SECONDS:
            raise CliError(f"--interval must be one of {', '.join(INTERVAL_SECONDS)}, got {values.get('interval')!r}")
    for name, option in _INPUT_FILES.items():
        _check_input_file(values.get(name), option)
    for name, option in _JSON_FILES.items():
        _check_json_object_file(values.get(name), option)
    replay = values.get("replay")
    if isinstance(replay, str):  # `local run --replay FILE`
        _check_input_file(replay, "--replay")
    for item in replay if isinstance(replay, list) else []:  # `local invoke --replay NAME=FILE ...`
        name, sep, path = item.partition("=")
        if not (name and sep and path):
            raise CliError(f"--replay must look like NAME=FILE (e.g. coinbase=candles.csv.gz), got {item!r}")
        _check_input_file(path, "--replay")
    for name, option in _OUTPUT_PATHS.items():
        _check_output_path(values.get(name), option)


def _check_input_file(text: Any, option: str) -> None:
    if not isinstance(text, str) or text == "-":
        return
    path = Path(text).expanduser()
    if not path.exists():
        raise CliError(f"{option} {text}: file not found; check the path")
    if not path.is_file():
        raise CliError(f"{option} {text}: not a file; give the path of a file")


def _check_json_object_file(text: Any, option: str) -> None:
    if not isinstance(text, str) or text == "-":
        return
    try:
        data = json.loads(Path(text).expanduser().read_bytes().decode("utf-8"))
    except OSError as exc:
        raise CliError(f"{option} {text}: cannot read it ({exc.strerror}); check the path") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{option} {text}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{option} {text}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise CliError(f"{option} {text}: JSON nested too deeply; give a plain JSON object") from None
    if not isinstance(data, dict):
        raise CliError(f"{option} {text}: must hold a JSON object, got a {type(data).__name__}")


def _check_output_path(text: Any, option: str) -> None:
    """The folders an output path is to be written under must be folders (not files)."""
    if not isinstance(text, str):
        return
    path = Path(text).expanduser()
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CliError(f"{option} {text}: {parent} is a file, not a folder; choose another path")
            break


def describe_error(exc: BaseException) -> str | None:
    """One line for an error a user can cause (a bad file, a full disk, AWS refusing), else None."""
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror or exc} (check the path, its permissions and free space)"
    return None


def add_target_arguments(parser: Any, what: str, aws_help: str = "the deployed stack (your AWS credentials), not "
                         "the emulator") -> None:
    """The options `stack_target` reads (--stack, --aws, --port) and --symbol, on an operator command."""
    parser.add_argument("--stack", default="dev", help=f"the stack whose {what}")
    parser.add_argument("--symbol", help="default: the stack's first symbol")
    parser.add_argument("--aws", action="store_true", help=aws_help)
    parser.add_argument("--port", type=int, help="the emulator's port (default: the running one)")


def stack_target(stack: str, aws: bool, port: int | None) -> tuple[Any, Any, str]:
    """Where an operator command acts: (resource names, the AWS environment to enter, a label).

    With `--aws` the deployed stack, in its region, with the caller's credentials; without, the
    local emulator that holds `stack` (never another stack's: a mistyped `--stack prod` must not
    act on dev).
    """
    if aws:
        import boto3

        from btc_trader.local.environ import patched_environ
        from btc_trader.stack.naming import ResourceNames
        from btc_trader.stack.settings import stack_region

        region = stack_region(stack)
        account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
        return (ResourceNames(stack, account, region), patched_environ({"AWS_DEFAULT_REGION": region}),
                f"AWS ({account}, {region})")
    from btc_trader.local import emulator

    state = emulator.find_running(port)
    if state.stack != stack:
        raise CliError(f"no local emulator holds stack {stack!r} (the running one at {state.endpoint} holds "
                       f"{state.stack!r}); for the deployed stack add --aws, for a local one run "
                       f"`btc-trader local up --stack {stack}`")
    return state.names, emulator.aws_environment(state), f"the local emulator at {state.endpoint}"
