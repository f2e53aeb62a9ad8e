"""Read candle CSV(.gz) files in the `../shared/data/` format.

Header `timestamp,open,high,low,close,volume`; timestamp is ISO-8601 UTC (`2023-03-01T00:00:00Z`,
or a date for daily bars) or epoch seconds. Standard library only, so the collector can replay
files without importing pandas or numpy.
"""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

from btc_trader.domain.candles import Candle, CandleError, check_series

EXPECTED_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def parse_timestamp(text: str) -> int:
    """ISO-8601 (with Z or offset, or a bare date) or epoch seconds -> UTC epoch seconds."""
    text = text.strip()
    if text.replace(".", "", 1).isdigit():
        value = float(text)
        return int(value / 1000) if value > 10_000_000_000 else int(value)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_candles(path: str | Path) -> list[Candle]:
    """All bars of a file, validated: the right columns, sorted, unique, positive prices."""
    path = Path(path)
    if not path.is_file():
        raise CandleError(f"{path}: file not found")
    candles: list[Candle] = []
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = tuple(column.strip().lower() for column in next(reader, ()))
            if header[: len(EXPECTED_COLUMNS)] != EXPECTED_COLUMNS:
                raise CandleError(
                    f"{path}: expected columns {','.join(EXPECTED_COLUMNS)}, got {','.join(header) or 'nothing'}"
                )
            for line_number, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    candle = Candle(
                        parse_timestamp(row[0]),
                        float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5]),
                    )
                except (ValueError, IndexError) as exc:
                    raise CandleError(f"{path}:{line_number}: unreadable row {row!r} ({exc})") from None
                candles.append(candle.validate(f"{path}:{line_number}"))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CandleError(f"{path}: cannot read file ({exc})") from None
    if not candles:
        raise CandleError(f"{path}: no rows")
    check_series(candles, str(path))
    return candles
