"""Fixtures shared by every test layer."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import hypothesis  # imported up front; see the note below
import pytest

# CPython 3.11.7 can raise "SystemError: AST constructor recursion depth mismatch" when a module
# is first compiled late in a session that ran Pulumi's mock runtime; hypothesis' pytest plugin
# otherwise imports hypothesis only in the terminal summary, after the infra tests.

# Property-based tests never fail on wall-clock time (2 shared cores); in CI they are derandomised
# so a red build is reproducible, locally they keep exploring new examples.
hypothesis.settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis.settings.register_profile("dev", deadline=None)
hypothesis.settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Real candles live beside the repository, never inside it (../shared/data, see its README).
SHARED_DATA = Path(os.environ.get("BTC_TRADER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# Handlers read these at import time; tests never talk to real AWS.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# Local emulator state, logs and synthetic files of the tests never land in the user's ~/.btc-trader.
os.environ["BTC_TRADER_HOME"] = tempfile.mkdtemp(prefix="btc-trader-tests-")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BtcTrader/test")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "btc-trader-tests")
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
# The Pulumi program reuses `make build`'s Lambda artifacts and never runs pip under test.
os.environ["BTC_TRADER_BUILD_OFFLINE"] = "1"
# Handlers run in-process unless a test asks for the built bundles in the runtime's Python (the
# end-to-end tests do): in-process tests fake HTTP with `responses` and AWS with moto's decorators.
os.environ["BTC_TRADER_LOCAL_IN_PROCESS"] = "1"


def require_lambda_build(stack: str = "dev"):
    """The `btc-trader build` output for the stack's runtime; skips, saying how to make it, when absent."""
    from btc_trader.build import load_build
    from btc_trader.build.cli import stack_target
    from btc_trader.stack.settings import load_stack_file

    target = stack_target(load_stack_file(stack, REPO_ROOT))
    output = load_build(REPO_ROOT, target)
    if output is None or not (Path(output.layer_dir) / ".complete").exists():
        pytest.skip(f"no Lambda build for {target.name} in build/: run `make build` "
                    f"(or `btc-trader build --stack {stack}`), which `make test` does first")
    return output


def load_fixture(name: str) -> object:
    """A recorded response body from tests/fixtures (shapes from ../shared/fixtures)."""
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-candle folder; the test is skipped cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real candle data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_file(shared_data: Path):
    """Path of one real candle file, skipping when that file is absent."""

    def _get(name: str) -> Path:
        path = shared_data / name
        if not path.is_file():
            pytest.skip(f"real candle file {name} not found in {shared_data}")
        return path

    return _get
