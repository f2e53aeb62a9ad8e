"""Where the Lambda runtime's Python version is on this machine (pyenv's, as here and in CI)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

__all__ = ["runtime_python"]


def runtime_python(runtime: str) -> str | None:
    """An interpreter of `runtime`'s Python version (python3.12 -> 3.12.x), or None."""
    version = runtime.removeprefix("python")
    candidates = [os.environ.get(f"BTC_TRADER_PYTHON_{version.replace('.', '_')}"), shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        found = [p for p in pyenv.glob(f"{version}.*") if re.fullmatch(rf"{re.escape(version)}\.\d+", p.name)]
        found.sort(key=lambda p: int(p.name.rsplit(".", 1)[1]), reverse=True)
        candidates += [str(p / "bin" / f"python{version}") for p in found]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            shim = "/shims/" in candidate  # a pyenv shim may point at another version
            if not shim:
                return candidate
    return None
