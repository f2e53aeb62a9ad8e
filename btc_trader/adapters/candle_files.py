"""Read candle CSV(.gz) files in the `../shared/data/` format, with the rules of domain.candles.

Header `timestamp,open,high,low,close,volume`; timestamp is ISO-8601 UTC (`2023-03-01T00:00:00Z`,
or a date for daily bars) or epoch seconds. The one reader of candle files: the replay and
backfill paths and the backtest loader all use it, so they accept and refuse the same files.
Standard library only, so the collector can replay files without importing pandas or numpy.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path

from btc_trader.domain.candles import (
    CANDLE_COLUMNS,
    Candle,
    CandleError,
    candle_from_fields,
    check_header,
    parse_candle_timestamp,
)

EXPECTED_COLUMNS = CANDLE_COLUMNS


def parse_timestamp(text: str) -> int:
    """ISO-8601 (with Z or offset, or a bare date) or epoch seconds -> UTC epoch seconds."""
    return parse_candle_timestamp(text)


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def read_candles(path: str | Path) -> list[Candle]:
    """All bars of a file, validated: the header, six fields a row, the candle rules, strictly increasing."""
    path = Path(path)
    if not path.is_file():
        raise CandleError(f"{path}: file not found")
    candles: list[Candle] = []
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle, strict=True)
            check_header(next(reader, ()), f"{path}:1")
            previous = None
            for row in reader:
                if not row:
                    continue
                where = f"{path}:{reader.line_num}"
                candle = candle_from_fields(row, where)
                if previous is not None and candle.timestamp <= previous:
                    problem = "duplicate bar at" if candle.timestamp == previous else "rows are not sorted by time:"
                    raise CandleError(f"{where}: {problem} {candle.timestamp} (after {previous})")
                previous = candle.timestamp
                candles.append(candle)
    except UnicodeDecodeError as exc:
        raise CandleError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz, an unreadable file
        raise CandleError(f"{path}: cannot read file ({exc or type(exc).__name__})") from None
    except csv.Error as exc:  # NUL bytes, an unclosed quote, a field past the size limit
        raise CandleError(f"{path}: not a readable CSV ({exc})") from None
    if not candles:
        raise CandleError(f"{path}: no rows")
    return candles
