"""What ships where: the library never reaches into the Pulumi program or the handlers, adapters
never reach into services, and the wheel carries the library only (DESIGN.md, Layout)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LIBRARY = REPO_ROOT / "btc_trader"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at any depth (function-level imports included)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path.name} imports {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[0] in forbidden or module.startswith(forbidden)
    )


def test_the_library_never_imports_the_pulumi_program_or_the_handlers():
    assert offenders(sorted(LIBRARY.rglob("*.py")), ("components", "functions")) == []


def test_the_import_check_sees_nested_imports(tmp_path):
    module = tmp_path / "nested.py"
    module.write_text("def later():\n    from components.monitoring import Monitoring\n    return Monitoring\n")
    assert offenders([module], ("components",)) == ["nested.py imports components.monitoring"]


def test_adapters_reach_neither_services_nor_the_cli_layers():
    adapters = sorted((LIBRARY / "adapters").rglob("*.py"))
    assert offenders(adapters, ("btc_trader.services", "btc_trader.local", "btc_trader.backtest", "btc_trader.cli")) == []


def test_the_domain_reaches_no_aws_network_or_outer_layer():
    domain = sorted((LIBRARY / "domain").rglob("*.py"))
    forbidden = ("boto3", "botocore", "requests", "ccxt", "btc_trader.adapters", "btc_trader.services",
                 "btc_trader.stack", "btc_trader.local", "btc_trader.backtest", "pulumi")
    assert offenders(domain, forbidden) == []


def test_the_stack_model_is_plain_python():
    stack = sorted((LIBRARY / "stack").rglob("*.py"))
    assert offenders(stack, ("pulumi", "pulumi_aws", "boto3")) == []


def test_components_are_imported_only_by_the_program_and_the_infra_tests():
    importers = [
        path for path in REPO_ROOT.rglob("*.py")
        if ".venv" not in path.parts and "build" not in path.parts
        and path.parts[len(REPO_ROOT.parts)] not in ("components",)
        and any(m.split(".")[0] == "components" for m in imported_modules(path))
    ]
    allowed = {REPO_ROOT / "__main__.py"}
    assert sorted(str(p.relative_to(REPO_ROOT)) for p in importers if p not in allowed
                  and not p.is_relative_to(REPO_ROOT / "tests" / "infra")
                  and not p.is_relative_to(REPO_ROOT / "tests" / "security")
                  and not p.is_relative_to(REPO_ROOT / "tests" / "local")) == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(out), str(REPO_ROOT)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (built,) = out.glob("btc_trader-*.whl")
    return built


def test_the_wheel_carries_the_library_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"btc_trader"}
    assert "btc_trader/stack/settings.py" in names
    assert "btc_trader/pricing/us-east-1.yaml" in names
