"""What every `btc-trader` subcommand module shares: the user-facing error and small parsers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd


class CliError(RuntimeError):
    """A user-facing problem; printed as one line."""


def parse_time(text: str, option: str = "--at") -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option} must be an ISO-8601 time like 2023-03-11T12:00:00Z, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    return frame.astype(object).fillna("-").to_string(index=False)  # object: "-" may fill a float column
