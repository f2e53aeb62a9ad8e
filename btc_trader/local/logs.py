"""What the local handlers log, kept per stack and function like CloudWatch log groups.

Every local invocation (`local invoke`, `local start-lambda`, `local run`) appends its handler's
output — Powertools JSON log lines and EMF metric lines — to
`$BTC_TRADER_HOME/logs/<stack>/<function>.jsonl`; `btc-trader local logs` reads them back. A
handler's unhandled error is logged as the Lambda runtime logs it (level ERROR, with its
traceback). When the stack's emulator stops, its logs move to `logs/archive/`: they are history
and never shown as current.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from btc_trader.local.emulator import state_dir


def log_dir(stack: str) -> Path:
    return state_dir() / "logs" / stack


def log_path(stack: str, function: str) -> Path:
    return log_dir(stack) / f"{function}.jsonl"


def archive_dir() -> Path:
    return state_dir() / "logs" / "archive"


def archive_logs(stack: str) -> Path | None:
    """Move the stack's logs out of the current ones (when its emulator stops); returns where."""
    current = log_dir(stack)
    if not current.is_dir() or not any(current.iterdir()):
        return None
    target = archive_dir() / f"{stack}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(current), str(target))
    return target


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_handler_error(stream: TextIO, function: str, exc: BaseException, request_id: str | None = None) -> None:
    """An unhandled handler error, as the Lambda runtime logs it: level ERROR, with the traceback."""
    stamp = datetime.now(UTC)
    record = {
        "level": "ERROR",
        "location": "lambda runtime",
        "message": f"Unhandled exception in {function}: {type(exc).__name__}: {exc}",
        "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S,") + f"{stamp.microsecond // 1000:03d}+0000",
        "service": function,
        "function_request_id": request_id,
        "exception_name": getattr(exc, "error_type", type(exc).__name__),
        # A handler run in a worker process printed its own traceback ("[ERROR] ...") in this log.
        "exception": None if hasattr(exc, "error_type") else "".join(traceback.format_exception(exc)).rstrip(),
    }
    stream.write(json.dumps(record, default=str) + "\n")
    stream.flush()


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
        # The Lambda runtime's own lines: "[ERROR] Traceback ..." for an unhandled error.
        level = "ERROR" if text.startswith("[ERROR]") else "TEXT"
        return LogRecord("", function, level, text, {}) if text else None
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


def _wanted(record: LogRecord | None, level: str | None, metrics: bool, since: str | None) -> bool:
    """`level` is the least severe level shown, as in Powertools (ERROR shows ERROR and CRITICAL)."""
    if record is None or (record.level == "METRIC" and not metrics):
        return False
    if since and record.time and record.time < since:
        return False
    if level and record.level != "METRIC":
        rank = LEVELS.index(record.level) if record.level in LEVELS else -1
        return rank >= LEVELS.index(level)
    return True


def read_logs(stack: str, functions: list[str], tail: int | None = None, level: str | None = None,
              metrics: bool = False, since: str | None = None) -> list[LogRecord]:
    """The stored records of `functions`, oldest first (each file in write order).

    `level`: the least severe level shown; `since` (ISO-8601 UTC): drop older records.
    """
    if level is not None and level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; known: {', '.join(LEVELS)}")
    records: list[LogRecord] = []
    for function in functions:
        path = log_path(stack, function)
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                record = _parse(function, line)
                if _wanted(record, level, metrics, since):
                    records.append(record)
    records.sort(key=lambda r: r.time)  # stable: same-time records keep file order
    return records[-tail:] if tail else records


def follow_logs(stack: str, functions: list[str], show: Callable[[LogRecord], None], level: str | None = None,
                metrics: bool = False, poll_s: float = 0.5, keep_going: Callable[[], bool] = lambda: True,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Print records as the functions write them (from the end of each file), until Ctrl-C."""
    offsets = {f: (log_path(stack, f).stat().st_size if log_path(stack, f).is_file() else 0) for f in functions}
    while keep_going():
        for function in functions:
            path = log_path(stack, function)
            if not path.is_file():
                offsets[function] = 0  # archived by `local down`, or not written yet
                continue
            size = path.stat().st_size
            if size < offsets[function]:
                offsets[function] = 0  # a new file since we last looked
            if size == offsets[function]:
                continue
            with path.open(encoding="utf-8", errors="replace") as file:
                file.seek(offsets[function])
                chunk = file.read()
            complete = chunk[: chunk.rfind("\n") + 1]  # a half-written last line waits for its end
            offsets[function] += len(complete.encode("utf-8"))
            for line in complete.splitlines():
                record = _parse(function, line)
                if _wanted(record, level, metrics, None):
                    show(record)
        sleep(poll_s)
