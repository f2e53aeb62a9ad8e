"""The whole program (__main__.py) under Pulumi mocks, for checks that span every component."""

from __future__ import annotations

import runpy
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from components import lambda_packaging
from tests.conftest import REPO_ROOT as PROJECT_ROOT
from tests.infra.harness import RecordingMocks, run_program


def run_main(stack: str, overrides: dict[str, Any] | None = None) -> RecordingMocks:
    """Every resource `pulumi up` would create for `stack` (with `overrides`), without pip."""
    with tempfile.TemporaryDirectory() as layer_dir, mock.patch.object(
        lambda_packaging, "build_dependency_layer", lambda settings: Path(layer_dir)
    ):
        return run_program(stack, lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")), overrides)


def outputs_of(mocks: RecordingMocks, type_token: str, key: str) -> set[str]:
    """A property (e.g. `arn`, `name`) of every resource of a type, as the program saw it."""
    return {r.outputs[key] for r in mocks.of_type(type_token)}
