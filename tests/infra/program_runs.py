"""The whole program (__main__.py) under Pulumi mocks, for checks that span every component."""

from __future__ import annotations

import runpy
from typing import Any

from tests.conftest import REPO_ROOT as PROJECT_ROOT
from tests.conftest import require_lambda_build
from tests.infra.harness import RecordingMocks, run_program


def run_main(stack: str, overrides: dict[str, Any] | None = None) -> RecordingMocks:
    """Every resource `pulumi up` would create for `stack` (with `overrides`), on `make build`'s output."""
    require_lambda_build(stack)
    return run_program(stack, lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")), overrides)


def outputs_of(mocks: RecordingMocks, type_token: str, key: str) -> set[str]:
    """A property (e.g. `arn`, `name`) of every resource of a type, as the program saw it."""
    return {r.outputs[key] for r in mocks.of_type(type_token)}
