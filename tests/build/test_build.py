"""btc_trader.build offline: import closures, reproducible zips, the layer's consistency rules."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from btc_trader.build import handlers, write_zip
from btc_trader.build.closure import import_closure
from btc_trader.build.layers import BuildError, Target, check_layers, pinned_requirements
from tests.conftest import REPO_ROOT


def write(root: Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_closure_follows_nested_and_relative_imports_but_not_type_checking(tmp_path):
    write(tmp_path, "functions/__init__.py")
    write(tmp_path, "functions/h.py", "from btc_trader.a import run\n\ndef lambda_handler(e, c):\n    return run()\n")
    write(tmp_path, "btc_trader/__init__.py")
    write(tmp_path, "btc_trader/a.py", (
        "from typing import TYPE_CHECKING\nimport json\nfrom . import b\n"
        "if TYPE_CHECKING:\n    from btc_trader import typing_only\n    import pandas\n"
        "def run():\n    import ccxt.async_support\n    from .sub import c\n    return c\n"))
    write(tmp_path, "btc_trader/b.py", "import numpy as np\n")
    write(tmp_path, "btc_trader/typing_only.py", "import matplotlib\n")
    write(tmp_path, "btc_trader/sub/__init__.py", "")
    write(tmp_path, "btc_trader/sub/c.py", "")
    write(tmp_path, "btc_trader/unreached.py", "import tqdm\n")
    closure = import_closure("functions.h", tmp_path)
    assert set(closure.modules) == {"functions", "functions.h", "btc_trader", "btc_trader.a", "btc_trader.b",
                                    "btc_trader.sub", "btc_trader.sub.c"}
    assert closure.third_party == {"numpy": {"btc_trader.b"}, "ccxt.async_support": {"btc_trader.a"}}
    assert closure.files(tmp_path)[0] == "btc_trader/__init__.py"


def test_closure_refuses_a_first_party_module_without_source(tmp_path):
    write(tmp_path, "functions/__init__.py")
    write(tmp_path, "functions/h.py", "import btc_trader.missing\n")
    write(tmp_path, "btc_trader/__init__.py")
    with pytest.raises(ModuleNotFoundError, match="btc_trader.missing"):
        import_closure("functions.h", tmp_path)


def test_real_handlers_reach_only_what_they_use():
    functions = handlers(REPO_ROOT)
    assert set(functions) >= {"price-collector", "ml-predictor", "prediction-evaluator", "risk-manager",
                              "trade-executor"}
    for function, module in functions.items():
        closure = import_closure(module, REPO_ROOT)
        assert not any(m.startswith(("btc_trader.local", "btc_trader.backtest", "btc_trader.cli"))
                       for m in closure.modules), function
        assert not {"pandas", "matplotlib", "tqdm", "moto", "pulumi"} & set(closure.top_level_third_party()), function
    assert "numpy" in import_closure(functions["ml-predictor"], REPO_ROOT).top_level_third_party()
    # The live path imports ccxt inside a function: still part of what ships.
    assert "ccxt" in import_closure(functions["trade-executor"], REPO_ROOT).top_level_third_party()


def test_zips_are_reproducible(tmp_path):
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    first = write_zip(tmp_path / "one.zip", [("pkg/a.py", source)])
    source.touch()  # a new mtime changes nothing
    again = write_zip(tmp_path / "two.zip", [("pkg/a.py", source)])
    assert first == again
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        assert archive.getinfo("pkg/a.py").date_time == (1980, 1, 1, 0, 0, 0)
    source.write_text("x = 2\n")
    assert write_zip(tmp_path / "three.zip", [("pkg/a.py", source)]) != first


def dist(site: Path, name: str, version: str, requires: list[str] = ()) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = [f"Name: {name}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]
    (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.1", *lines]) + "\n")
    (info / "RECORD").write_text(f"{name.replace('-', '_')}/__init__.py,,\n")


def layers(tmp_path: Path, ours: list, theirs: list, runtime: list = ()) -> tuple[Path, Path, Path]:
    roots = tmp_path / "layer", tmp_path / "powertools", tmp_path / "runtime"
    for root, entries in zip(roots, (ours, theirs, runtime), strict=True):
        (root / "python").mkdir(parents=True)
        for entry in entries:
            dist(root / "python", *entry)
    return roots


TARGET = Target("python3.12", "x86_64")


def test_a_distribution_in_both_layers_is_refused_by_name(tmp_path):
    requirements = tmp_path / "requirements-lambda.txt"
    roots = layers(tmp_path, [("cryptography", "50.0.2")], [("cryptography", "50.0.2")])
    with pytest.raises(BuildError, match="ships cryptography 50.0.2, which the Powertools layer already ships"):
        check_layers(requirements, *roots, TARGET)


def test_a_requirement_nothing_provides_is_refused(tmp_path):
    roots = layers(tmp_path, [("ccxt", "4.5.90", ["aiohttp<3.15,>=3.14.3", "winloop; platform_system == 'Windows'"])],
                   [])
    with pytest.raises(BuildError, match=r"ccxt 4.5.90 requires aiohttp.*neither") as error:
        check_layers(tmp_path / "r.txt", *roots, TARGET)
    assert "winloop" not in str(error.value), "a requirement for another platform is not Lambda's"


def test_the_powertools_version_must_meet_the_range_unless_the_skew_is_accepted(tmp_path):
    roots = layers(tmp_path, [("ccxt", "4.5.90", ["cryptography<51,>=50", "cffi==2.0.0"])],
                   [("cryptography", "49.0.0"), ("cffi", "2.1.1")])
    with pytest.raises(BuildError) as error:
        check_layers(tmp_path / "r.txt", *roots, TARGET)
    assert "requires cryptography<51,>=50; the Powertools layer has 49.0.0" in str(error.value)
    assert "cffi" not in str(error.value), "ccxt's exact cffi pin is an accepted, documented skew"
    accepted = layers(tmp_path / "ok", [("ccxt", "4.5.90", ["cryptography<51,>=50", "cffi==2.0.0", "boto3"])],
                      [("cryptography", "50.0.2"), ("cffi", "2.1.1")], [("boto3", "1.44.5")])
    (notes,) = check_layers(tmp_path / "r.txt", *accepted, TARGET)
    assert "cffi==2.0.0" in notes and "accepted" in notes


def test_requirements_must_be_exact_pins(tmp_path):
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text("# comment\nnumpy==2.4.6\nccxt>=4\n")
    with pytest.raises(BuildError, match=r"requirements-lambda.txt:3: 'ccxt>=4' is not pinned"):
        pinned_requirements(requirements)


def test_lambda_requirements_match_the_development_pins():
    """Lambda runs the versions the tests run."""
    lambda_pins = pinned_requirements(REPO_ROOT / "requirements-lambda.txt")
    development = pinned_requirements(REPO_ROOT / "requirements" / "constraints.txt")
    assert {"numpy", "ccxt", "requests"} <= set(lambda_pins)
    assert {name: version for name, version in lambda_pins.items() if development.get(name) != version} == {}


@pytest.mark.parametrize(("tag", "machine", "runs"), [
    ("cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64", "aarch64", True),
    ("cp312-cp312-manylinux_2_28_x86_64", "aarch64", False),  # another architecture
    ("cp312-cp312-manylinux_2_35_aarch64", "aarch64", False),  # newer glibc than Amazon Linux 2023's 2.34
    ("cp312-cp312-manylinux2014_aarch64", "aarch64", True),
    ("cp313-cp313-manylinux_2_28_aarch64", "aarch64", False),  # another Python
    ("cp311-abi3-manylinux_2_28_aarch64", "aarch64", True),  # the stable ABI of an older Python
    ("cp312-cp312-musllinux_1_2_aarch64", "aarch64", False),
    ("py3-none-any", "aarch64", True),
])
def test_wheel_tags_are_checked_statically_for_a_target_that_cannot_run_here(tag, machine, runs):
    from btc_trader.build.runtime import _tag_runs

    assert _tag_runs(tag, "cp312", machine) is runs
