"""Hostile command lines: every error is one line naming the problem and the fix, exit 2.

Each generated command line has one impossible value (a port past 65535, a negative worker
count, NaN money, a malformed or truncated candle file, an output path under a file, a
time that is not one, a symbol with spaces ...). `btc-trader` must refuse it with exit status
2 and exactly one stderr line starting `error:` that is never "unexpected" (argparse's own
refusals keep the usage line the CLI shows first), before anything starts: no emulator, no
record of one, nothing written.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btc_trader.cli import main

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD_ROWS = "".join(f"2023-03-11T12:{m:02d}:00Z,100,101,99,100.5,1\n" for m in range(30))
BAD_PORTS = st.sampled_from(["-1", "0", "65536", "70000", "99999999", "abc", "1e3", "", "4599.5", "0x10"])
BAD_COUNTS = st.sampled_from(["-1", "0", "-100", "abc", "1.5", "", "nan"])
BAD_AMOUNTS = st.sampled_from(["nan", "inf", "-inf", "-1", "1e999", "abc", "", "NaN", "1,000"])
BAD_TIMES = st.sampled_from(["yesterday", "2023-02-30T00:00:00Z", "1678536000000", "", "12:00", "2023-13-01",
                             "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z", "2023-03-11T25:00:00Z"])
BAD_SYMBOLS = st.sampled_from(["btc usd!", "", "BTC", "BTC-", "btc-usd", "BTC_USD", "X" * 300, "BTC-USD-EUR"])
BAD_CANDLES = st.sampled_from([
    HEADER + "2023-03-11T12:00:00Z,\"1,000\",101,99,100,1\n" + GOOD_ROWS,
    HEADER + "2023-03-11T12:00:00Z,abc,101,99,100,1\n",
    HEADER + "2023-03-11T12:00:00Z,100,99,101,100,1\n" + GOOD_ROWS,
    HEADER + "2023-03-11T12:00:00Z,100,101,99,100,-5\n",
    HEADER + "2023-03-11T12:00:00Z,100,101,99,100,nan\n",
    HEADER.upper().replace("VOLUME", "VOL") + GOOD_ROWS,
    HEADER + "2023-03-11T12:00:00Z,100,101,99,100,1,extra\n",
    "", "\x00\x01\x02", HEADER, "GZ-TRUNCATED", "NOT-UTF8",
    HEADER + GOOD_ROWS.splitlines(keepends=True)[1] + GOOD_ROWS.splitlines(keepends=True)[0],
])
BAD_JSON = st.sampled_from(["", "{", "[1, 2]", "null", "NOT-UTF8", "[" * 5000 + "]" * 5000, '{"a": 1} {"b": 2}',
                            "\x00", '"text"', "{'single': 'quotes'}"])
EXAMPLES = settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _candles(folder: Path, text: str) -> str:
    if text == "GZ-TRUNCATED":
        path = folder / "cut.csv.gz"
        path.write_bytes(gzip.compress((HEADER + GOOD_ROWS).encode())[:-10])
    elif text == "NOT-UTF8":
        path = folder / "latin.csv"
        path.write_bytes((HEADER + GOOD_ROWS).encode() + b"2023-03-11T13:00:00Z,\xff,1,1,1,1\n")
    else:
        path = folder / "candles.csv"
        path.write_text(text)
    return str(path)


def _json_file(folder: Path, text: str) -> str:
    path = folder / "event.json"
    path.write_bytes(b'{"time": "\xff"}' if text == "NOT-UTF8" else text.encode())
    return str(path)


@st.composite
def command_lines(draw: st.DrawFn, folder: Path) -> list[str]:
    good = str(folder / "good.csv")
    under_file = str(folder / "good.csv" / "report.html")
    options = [
        lambda: ["local", "up", "--port", draw(BAD_PORTS)],
        lambda: ["local", "down", "--port", draw(BAD_PORTS)],
        lambda: ["local", "status", "--port", draw(BAD_PORTS)],
        lambda: ["local", "start-lambda", "--port", draw(BAD_PORTS)],
        lambda: ["local", "run", "--ticks", draw(BAD_COUNTS)],
        lambda: ["local", "run", "--tick-seconds", draw(BAD_AMOUNTS)],
        lambda: ["local", "run", "--from", draw(BAD_TIMES)],
        lambda: ["local", "run", "--replay", str(folder / "missing.csv")],
        lambda: ["local", "invoke", "price-collector", "--replay", draw(st.sampled_from(["nofile", "x=", "=y"]))],
        lambda: ["local", "invoke", "price-collector", "--at", draw(BAD_TIMES)],
        lambda: ["local", "invoke", "price-collector", "--symbol", draw(BAD_SYMBOLS)],
        lambda: ["local", "invoke", "price-collector", "--event", str(folder)],
        lambda: ["local", "invoke", "price-collector", "--event", _json_file(folder, draw(BAD_JSON))],
        lambda: ["local", "invoke", "price-collector", "--env-vars", _json_file(folder, draw(BAD_JSON))],
        lambda: ["local", "generate-event", "schedule", "--at", draw(BAD_TIMES)],
        lambda: ["local", "logs", "--tail", draw(st.sampled_from(["-1", "abc"]))],
        lambda: ["local", "trades", "--limit", draw(BAD_COUNTS)],
        lambda: ["backtest", "--data", _candles(folder, draw(BAD_CANDLES))],
        lambda: ["backtest", "--data", good, "--fee-bps", draw(BAD_AMOUNTS)],
        lambda: ["backtest", "--data", good, "--slippage-bps", draw(BAD_AMOUNTS)],
        lambda: ["backtest", "--data", good, "--cash", draw(st.sampled_from(["0", "nan", "inf", "-5", "1e999"]))],
        lambda: ["backtest", "--data", good, "--from", draw(BAD_TIMES)],
        lambda: ["backtest", "--data", good, "--report", under_file],
        lambda: ["backtest", "--data", good, "--report", str(folder / "report.txt")],
        lambda: ["backtest", "--data", good, "--interval", "7m"],
        lambda: ["backtest", "sweep", "--data", good, "--strategy", "live", "--grid", "feeBps=1,2",
                 "--workers", draw(BAD_COUNTS)],
        lambda: ["backtest", "sweep", "--data", good, "--strategy", "live", "--grid", draw(st.sampled_from(
            ["feeBps", "=1", "feeBps=", "noSuchKey=1", "feeBps=abc"]))],
        lambda: ["backtest", "--data", good, "--strategy", "live", "--set", draw(st.sampled_from(
            ["feeBps=[1", "feeBps=nan", "riskThreshold=2", "nokey", "btc-trade:x=1", "modelWeights.bedrock=.inf"]))],
        lambda: ["data", "backfill", "--exchange", "binance", "--interval", draw(st.sampled_from(["7m", "", "1M", "x"]))],
        lambda: ["data", "backfill", "--exchange", "binance", "--days", draw(BAD_COUNTS)],
        lambda: ["data", "backfill", "--file", _candles(folder, draw(BAD_CANDLES)), "--symbol", draw(BAD_SYMBOLS)],
        lambda: ["data", "synthetic", "--out", str(folder / "good.csv" / "sub"), "--at", "2023-03-11T12:00:00Z"],
        lambda: ["data", "synthetic", "--out", str(folder / "out"), "--at", draw(BAD_TIMES)],
        lambda: ["trading", "reset-kill-switch", "--port", draw(BAD_PORTS)],
        lambda: ["cost", "--set", draw(st.sampled_from(["feeBps=[1", "riskThreshold=nan", "x"]))],
        lambda: ["local", "up", "--stack", draw(st.sampled_from(["nosuchstack", "../etc", ""]))],
    ]
    return draw(st.sampled_from(options))()


@pytest.fixture(scope="module")
def workspace():
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "good.csv").write_text(HEADER + GOOD_ROWS)
        yield root


@EXAMPLES
@given(data=st.data())
def test_every_hostile_command_line_is_one_clear_line_and_exit_2(workspace, data, capsys):
    argv = data.draw(command_lines(workspace))
    home = Path(os.environ["BTC_TRADER_HOME"])
    before = sorted(home.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
    assert code == 2, (argv, err)
    # argparse's refusals too: the command, the mistake and where help is, on one line
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
    assert "unexpected" not in err and "Traceback" not in err, (argv, err)
    assert sorted(home.rglob("*")) == before, f"{argv} left something behind"


def test_a_zone_less_time_is_read_as_utc_and_said_so(workspace, capsys):
    assert main(["data", "synthetic", "--out", str(workspace / "synthetic"), "--at", "2023-03-11T12:00"]) == 0
    err = capsys.readouterr().err
    assert "note: --at 2023-03-11T12:00 has no zone; read as UTC (2023-03-11T12:00:00+00:00)" in err


def test_multi_problem_settings_errors_are_still_one_line(workspace, capsys):
    assert main(["cost", "--set", "feeBps=-1", "--set", "riskThreshold=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "feeBps" in err and "riskThreshold" in err
