"""What the local benchmarks share: the replay they run and how they read a process's CPU time."""

from __future__ import annotations

import os
from pathlib import Path

REPLAY = "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"
FROM = 1_678_428_000  # 2023-03-10T06:00:00Z: the replay's first decision


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
