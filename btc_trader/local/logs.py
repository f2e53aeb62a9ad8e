"""What the local handlers log, kept per stack and function like CloudWatch log groups.

Every local invocation (`local invoke`, `local start-lambda`, `local run`) appends its handler's
output — Powertools JSON log lines and EMF metric lines — to
`$BTC_TRADER_HOME/logs/<stack>/<function>.jsonl`; `btc-trader local logs` reads them back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from btc_trader.local.emulator import state_dir


def log_dir(stack: str) -> Path:
    return state_dir() / "logs" / stack


def log_path(stack: str, function: str) -> Path:
    return log_dir(stack) / f"{function}.jsonl"


class LogTee:
    """A text stream writing to the function's log file and, optionally, echoing elsewhere."""

    def __init__(self, file: TextIO, echo: TextIO | None) -> None:
        self._file, self._echo = file, echo

    def write(self, text: str) -> int:
        self._file.write(text)
        if self._echo is not None:
            self._echo.write(text)
        return len(text)

    def flush(self) -> None:
        self._file.flush()
        if self._echo is not None:
            self._echo.flush()


@contextlib.contextmanager
def handler_log(stack: str, function: str, echo: TextIO | None) -> Iterator[LogTee]:
    path = log_path(stack, function)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        yield LogTee(file, echo)


@dataclass(frozen=True)
class LogRecord:
    time: str
    function: str
    level: str
    message: str
    extra: dict[str, Any]


_STANDARD_KEYS = {"level", "location", "message", "timestamp", "service", "cold_start", "function_name",
                  "function_memory_size", "function_arn", "function_request_id", "xray_trace_id",
                  "sampling_rate"}


def _parse(function: str, line: str) -> LogRecord | None:
    try:
        data = json.loads(line)
    except ValueError:
        text = line.strip()
        return LogRecord("", function, "TEXT", text, {}) if text else None
    if not isinstance(data, dict):
        return None
    if "_aws" in data:  # an EMF metric line
        metrics = [m["Name"] for d in data["_aws"].get("CloudWatchMetrics", []) for m in d.get("Metrics", [])]
        values = {name: data.get(name) for name in metrics}
        stamp = data["_aws"].get("Timestamp")
        when = datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="milliseconds") if stamp else ""
        return LogRecord(when, function, "METRIC", json.dumps(values, default=str), {})
    message = data.get("message")
    return LogRecord(
        _utc(str(data.get("timestamp", ""))), function, str(data.get("level", "")),
        message if isinstance(message, str) else json.dumps(message, default=str),
        {k: v for k, v in data.items() if k not in _STANDARD_KEYS},
    )


def _utc(stamp: str) -> str:
    """Powertools' `2026-11-24 19:20:01,123+0000` as ISO-8601 UTC, so records of all functions sort."""
    try:
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z").astimezone(UTC).isoformat(timespec="milliseconds")
    except ValueError:
        return stamp


def read_logs(stack: str, functions: list[str], tail: int | None = None, level: str | None = None,
              metrics: bool = False) -> list[LogRecord]:
    """The stored records of `functions`, oldest first (each file in write order)."""
    records: list[LogRecord] = []
    for function in functions:
        path = log_path(stack, function)
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                record = _parse(function, line)
                if record is None or (record.level == "METRIC" and not metrics):
                    continue
                if level and record.level not in {level, "METRIC"}:
                    continue
                records.append(record)
    records.sort(key=lambda r: r.time)  # stable: same-time records keep file order
    return records[-tail:] if tail else records
