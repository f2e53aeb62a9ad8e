"""Find the btc-trader checkout the way Pulumi finds its project.

The installed `btc-trader` command carries only the library. Commands that need the repository
(the stack files, `functions/` for local invocation, the build) look for the directory holding
`Pulumi.yaml`: the current directory or its nearest parent, as `pulumi` itself does.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_FILE = "Pulumi.yaml"
# Point commands at a checkout from anywhere, as `pulumi --cwd` does.
PROJECT_DIR_VARIABLE = "BTC_TRADER_PROJECT_DIR"


class ProjectNotFoundError(FileNotFoundError):
    """No btc-trader checkout around the current directory."""


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory, from `start` (default: the current one) upwards, holding Pulumi.yaml."""
    configured = os.environ.get(PROJECT_DIR_VARIABLE)
    if start is None and configured:
        root = Path(configured).expanduser().resolve()
        if not (root / PROJECT_FILE).is_file():
            raise ProjectNotFoundError(
                f"{PROJECT_DIR_VARIABLE}={configured} holds no {PROJECT_FILE}; point it at a btc-trader checkout"
            )
        return root
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    raise ProjectNotFoundError(
        f"no {PROJECT_FILE} in {here} or any parent: run this command inside a btc-trader checkout "
        f"(git clone, then cd into it), or set {PROJECT_DIR_VARIABLE}"
    )
