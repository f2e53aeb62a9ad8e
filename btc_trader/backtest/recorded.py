"""Recorded predictions: every model's stored output, exported to a file and replayed by the backtester.

Bedrock and Chronos need AWS, so the backtester cannot run them; what they said is in the
predictions table (every model's output, ok or not, is stored with each prediction).
`btc-trader predictions export` writes those records as JSON Lines, one stored prediction a line:

    {"symbol": "BTC-USD", "timestamp": 1678536000, "as_of": "...", "current_price": 20150.1,
     "horizon_minutes": 60, "status": "ok",
     "models": [{"model": "bedrock", "ok": true, "predicted_price": 20190.0, "confidence": 0.6}, ...]}

`backtest --predictions FILE` aligns each line with the bar its prediction was made at (the last
bar closed by `timestamp`) and replays each recorded model's move (predicted / current price,
applied to that bar's close: venues differ by a few bps, the move is what the model said) and
its confidence beside the `custom` model's, through the same weights, vote and risk rules.
`custom`'s own recordings are not replayed: it is recomputed from the candles (proven equal to
the deployed model bar by bar), so its walk-forward covers the whole file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from btc_trader.backtest.data import Bars


class RecordedPredictionsError(ValueError):
    """A predictions file that cannot be replayed; the message names the line and the field."""


@dataclass
class RecordedModels:
    """Per recorded model, per bar: the predicted price and confidence (NaN where it said nothing)."""

    predicted_price: dict[str, np.ndarray] = field(default_factory=dict)
    confidence: dict[str, np.ndarray] = field(default_factory=dict)
    lines: int = 0
    unmatched: int = 0  # lines outside the bars, or of another symbol


def export_line(item: dict[str, Any]) -> dict[str, Any]:
    """One stored prediction as a line of the export (only what a replay needs, plus provenance)."""
    result = item.get("result", {})
    return {
        "symbol": item["symbol"],
        "timestamp": int(item["timestamp"]),
        "as_of": result.get("as_of"),
        "current_price": _number(result.get("current_price")),
        "horizon_minutes": int(result.get("horizon_minutes", 0)),
        "status": result.get("status", item.get("status")),
        "models": [
            {"model": m["model"], "ok": bool(m.get("ok")), "predicted_price": _number(m.get("predicted_price")),
             "confidence": _number(m.get("confidence")), **({"error": m["error"]} if m.get("error") else {})}
            for m in result.get("models", [])
        ],
    }


def write_export(path: Path, items: Iterable[dict[str, Any]]) -> int:
    """Write the stored predictions as JSON Lines; the number written."""
    count = 0
    with Path(path).open("w") as out:
        for item in items:
            out.write(json.dumps(export_line(item), separators=(",", ":")) + "\n")
            count += 1
    return count


def load_recorded(path: str | Path, bars: Bars, symbol: str, models: Iterable[str]) -> RecordedModels:
    """The recorded outputs of `models` aligned with `bars` (see the module doc)."""
    wanted = set(models)
    n = len(bars)
    recorded = RecordedModels()
    closes_at = bars.timestamps + bars.bar_seconds
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RecordedPredictionsError(f"--predictions {path}: cannot read it ({exc.strerror})") from None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"--predictions {path} line {number}"
        try:
            line = json.loads(raw)
            at, line_symbol, current = int(line["timestamp"]), line["symbol"], line.get("current_price")
            outputs = line["models"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordedPredictionsError(f"{where}: not an exported prediction ({exc})") from None
        recorded.lines += 1
        t = int(np.searchsorted(closes_at, at, side="right")) - 1
        if line_symbol != symbol or t < 0 or at - closes_at[t] >= bars.bar_seconds:
            recorded.unmatched += 1
            continue
        for output in outputs:
            model = output.get("model")
            if model not in wanted or model == "custom" or not output.get("ok"):
                continue
            price, confidence = output.get("predicted_price"), output.get("confidence")
            if not _positive(price) or not _positive(current) or confidence is None or not 0 <= confidence <= 1:
                raise RecordedPredictionsError(
                    f"{where}: {model} is ok but its predicted_price/confidence/current_price are not usable")
            if model not in recorded.predicted_price:
                recorded.predicted_price[model] = np.full(n, np.nan)
                recorded.confidence[model] = np.full(n, np.nan)
            recorded.predicted_price[model][t] = float(bars.close[t]) * float(price) / float(current)
            recorded.confidence[model][t] = float(confidence)
    return recorded


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and np.isfinite(value) and value > 0
