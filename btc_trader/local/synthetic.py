"""Clearly labelled synthetic candles, for demos on a machine without the real data.

A seeded random walk shared by three "USD venues" (each with its own small noise) and one
stablecoin-quoted venue that trades 5% rich, as BTC/USDC did in the March 2023 de-peg.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

VENUES = {"synthetic-usd-a": 1.0, "synthetic-usd-b": 1.0, "synthetic-usd-c": 1.0, "synthetic-usdc-depegged": 1.05}
HEADER = "timestamp,open,high,low,close,volume\n"


def write_synthetic_candles(out_dir: Path, end: int, minutes: int = 720, seed: int = 7) -> dict[str, Path]:
    """One 1-minute CSV per synthetic venue ending at `end` (epoch s); returns name -> path."""
    rng = random.Random(seed)
    start = end - minutes * 60
    mid = [20_000.0]
    for _ in range(minutes):
        mid.append(mid[-1] * (1 + rng.gauss(0, 0.0008)))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, factor in VENUES.items():
        lines = [HEADER]
        for i in range(minutes):
            noise = 1 + rng.gauss(0, 0.0001)
            open_, close = mid[i] * factor * noise, mid[i + 1] * factor * noise
            high, low = max(open_, close) * 1.0004, min(open_, close) * 0.9996
            when = datetime.fromtimestamp(start + i * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(f"{when},{open_:.2f},{high:.2f},{low:.2f},{close:.2f},{rng.uniform(0.5, 5):.4f}\n")
        path = out_dir / f"SYNTHETIC_{name}.csv"
        path.write_text("".join(lines))
        files[name] = path
    return files
