"""Hostile candle files: the replay/backfill reader and the backtest loader agree on every file.

A valid file is broken once (a field, a row, the header, the bytes, the compression); both
readers must then accept the same bars or refuse with a CandleError naming the file, and what
they accept obeys the candle rules. Before #16 they disagreed on high < low, negative or NaN
volume, capitalised headers and extra fields.
"""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btc_trader.adapters.candle_files import read_candles
from btc_trader.backtest.data import load_bars
from btc_trader.domain.candles import CandleError

HEADER = "timestamp,open,high,low,close,volume"
ROWS = [f"2023-03-11T12:{m:02d}:00Z,{100 + m},{101 + m}.5,{99 + m},{100.5 + m},{m + 1}.25" for m in range(6)]
FIELD_VALUES = st.sampled_from([
    "", " ", "nan", "NaN", "inf", "-1", "0", "1,234.5", "1_000", "１２３", "1e999", "abc", '"1"', "1e-5",
    "9" * 400, "1678536000", "1678536000000", "2023-03-11", "2023-03-11T12:00:00", "2023-03-11T12:00:00+05:00",
    "2023-02-30T00:00:00Z", "1969-12-31T23:59:59Z", "-5", "1.5", "\x00", "2023-03-11T12:00:00.5Z", "99999999999999999",
])
ROW_EDITS = st.sampled_from(["drop_field", "extra_field", "swap_high_low", "duplicate", "reverse", "blank",
                             "semicolons", "quote", "header_case", "header_extra", "header_missing"])
EXAMPLES = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def _outcome(reader, path: Path):
    try:
        bars = reader(path)
    except CandleError as exc:
        assert str(path) in str(exc) or "--interval" in str(exc), str(exc)
        return None
    return bars


def _check_agreement(path: Path) -> None:
    candles = _outcome(read_candles, path)
    bars = _outcome(load_bars, path)
    if candles is None:
        assert bars is None, "the backtest accepted a file the replay reader refuses"
        return
    if len(candles) < 2:  # a backtest needs two bars; that is its own, named refusal
        assert bars is None
        return
    assert bars is not None, "the backtest refused a file the replay reader accepts"
    assert [c.timestamp for c in candles] == bars.timestamps.tolist()
    for c in candles:
        assert 0 < c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high and math.isfinite(c.high)
        assert math.isfinite(c.volume) and c.volume >= 0
    assert all(b > a for a, b in zip(bars.timestamps, bars.timestamps[1:], strict=False))


def _write(folder: str, text: str, gz: bool = False, cut: int | None = None) -> Path:
    path = Path(folder) / ("candles.csv.gz" if gz else "candles.csv")
    data = text.encode("utf-8", "surrogatepass")
    data = gzip.compress(data) if gz else data
    path.write_bytes(data[:cut] if cut is not None else data)
    return path


@EXAMPLES
@given(row=st.integers(0, len(ROWS) - 1), column=st.integers(0, 5), value=FIELD_VALUES, gz=st.booleans())
def test_one_broken_field_both_readers_agree(row, column, value, gz):
    rows = [r.split(",") for r in ROWS]
    rows[row][column] = value
    with tempfile.TemporaryDirectory() as folder:
        _check_agreement(_write(folder, "\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n", gz))


@EXAMPLES
@given(edit=ROW_EDITS, row=st.integers(0, len(ROWS) - 1))
def test_one_broken_row_or_header_both_readers_agree(edit, row):
    header, rows = HEADER, list(ROWS)
    if edit == "drop_field":
        rows[row] = rows[row].rsplit(",", 1)[0]
    elif edit == "extra_field":
        rows[row] += ",7"
    elif edit == "swap_high_low":
        t, o, h, low, c, v = rows[row].split(",")
        rows[row] = ",".join([t, o, low, h, c, v])
    elif edit == "duplicate":
        rows.insert(row, rows[row])
    elif edit == "reverse":
        rows.reverse()
    elif edit == "blank":
        rows.insert(row, "")
    elif edit == "semicolons":
        rows[row] = rows[row].replace(",", ";")
    elif edit == "quote":
        rows[row] = '"' + rows[row]
    elif edit == "header_case":
        header = HEADER.upper()
    elif edit == "header_extra":
        header, rows = HEADER + ",trades", [r + ",5" for r in rows]
    elif edit == "header_missing":
        header = HEADER.replace(",volume", "")
    with tempfile.TemporaryDirectory() as folder:
        _check_agreement(_write(folder, "\n".join([header, *rows]) + "\n"))


@settings(max_examples=30)
@given(junk=st.binary(min_size=1, max_size=32), where=st.integers(0, 200), gz=st.booleans())
def test_binary_junk_and_truncation_both_readers_agree(junk, where, gz):
    text = "\n".join([HEADER, *ROWS]) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, text, gz)
        data = path.read_bytes()
        path.write_bytes(data[:where] + junk + data[where:] if not gz else data[: max(1, where % len(data))])
        _check_agreement(path)


@pytest.mark.parametrize(("text", "message"), [
    (HEADER + "\n2023-03-11T12:00:00Z,100,99,101,100,1\n2023-03-11T12:01:00Z,100,101,99,100,1\n", "bracket"),
    (HEADER + "\n2023-03-11T12:00:00Z,100,101,99,100,-1\n2023-03-11T12:01:00Z,100,101,99,100,1\n", "volume"),
    (HEADER + "\n2023-03-11T12:00:00Z,100,101,99,100,nan\n2023-03-11T12:01:00Z,100,101,99,100,1\n", "not finite"),
    (HEADER + "\n2023-03-11T12:00:00Z,\"1,000\",101,99,100,1\n2023-03-11T12:01:00Z,100,101,99,100,1\n",
     "no thousands separators"),
    (HEADER + ",trades\n2023-03-11T12:00:00Z,100,101,99,100,1,5\n", "expected columns"),
    (HEADER + "\n2023-03-11T12:00:00Z,100,101,99,100,1,5\n", "unreadable row: expected 6 fields, got 7"),
])
def test_the_rules_that_used_to_differ(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    for reader in (read_candles, load_bars):
        with pytest.raises(CandleError, match=message):
            reader(path)


def test_capitalised_header_and_millisecond_times_read_alike(tmp_path):
    path = tmp_path / "ms.csv"
    path.write_text("Timestamp,Open,High,Low,Close,Volume\n1678536000000,100,101,99,100,1\n1678536060000,100,101,99,100,1\n")
    assert [c.timestamp for c in read_candles(path)] == load_bars(path).timestamps.tolist() == [1678536000, 1678536060]


def test_a_truncated_gz_is_a_candle_error(tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *ROWS]) + "\n").encode())[:-12])
    for reader in (read_candles, load_bars):
        with pytest.raises(CandleError, match="cannot read file"):
            reader(path)


def test_the_reader_keeps_pandas_and_numpy_out():
    code = ("import sys, btc_trader.adapters.candle_files, btc_trader.adapters.price_sources.replay; "
            "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
