"""Which local Lambda server serves which emulator: one small file per emulator port.

`local start-lambda` and `local run` register their server here; the emulator process reads it on
every invocation, so servers can come and go while the emulator keeps running.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from btc_trader.local.emulator import HOST, _alive, _answers, state_dir


@dataclass(frozen=True)
class LambdaServerRecord:
    port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"


def _registry_file(emulator_port: int) -> Path:
    return state_dir() / f"lambda-{emulator_port}.json"


def register(emulator_port: int, server_port: int) -> LambdaServerRecord | None:
    """Record this process's server for the emulator; returns the record it replaced, if alive."""
    previous = registered_lambda_server(emulator_port)
    path = _registry_file(emulator_port)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(LambdaServerRecord(server_port, os.getpid()))))
    temporary.replace(path)  # atomic: the emulator never reads half a file
    return previous


def unregister(emulator_port: int, server_port: int, restore: LambdaServerRecord | None = None) -> None:
    """Remove this server's record (only if it is still ours), putting back `restore` if given."""
    current = _read(emulator_port)
    if current is None or (current.port, current.pid) != (server_port, os.getpid()):
        return
    if restore is not None:
        register_record(emulator_port, restore)
    else:
        _registry_file(emulator_port).unlink(missing_ok=True)


def register_record(emulator_port: int, record: LambdaServerRecord) -> None:
    path = _registry_file(emulator_port)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(record)))
    temporary.replace(path)


def _read(emulator_port: int) -> LambdaServerRecord | None:
    try:
        return LambdaServerRecord(**json.loads(_registry_file(emulator_port).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def registered_lambda_server(emulator_port: int) -> LambdaServerRecord | None:
    """The live Lambda server registered for the emulator, or None."""
    record = _read(emulator_port)
    if record and _alive(record.pid) and _answers(record.port, 0.5):
        return record
    return None
