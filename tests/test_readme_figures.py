"""The README's figures are the tools' figures.

Each measured figure sits in a `<!-- figures:NAME -->` block that `benchmarks/readme_figures.py`
renders from what `make bench` recorded (benchmarks/results/); the blocks must be exactly what
it renders. What a test can afford is recomputed here from the code: the seed's history read,
the cost of the original design as `btc-trader cost` prints it for either stack.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from btc_trader.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FIGURES = load_benchmark("readme_figures")


@pytest.mark.parametrize("name", ["install", "history", "backtest", "local-run"])
def test_readme_block_is_what_the_generator_renders(name):
    body = FIGURES.blocks()[name]
    block = re.search(rf"<!-- figures:{name}:begin -->\n(.*?)\n<!-- figures:{name}:end -->", README, re.S)
    assert block, f"README.md lost its figures:{name} block"
    assert block.group(1) == body, f"README figures:{name} differ: run `python benchmarks/readme_figures.py`"


def test_the_generator_says_what_it_wrote(tmp_path, monkeypatch, capsys):
    copy = tmp_path / "README.md"
    copy.write_text(re.sub(r"(<!-- figures:backtest:begin -->\n).*?(\n<!-- figures:backtest:end -->)",
                           r"\1stale\2", README, flags=re.S))
    monkeypatch.setattr(FIGURES, "README", copy)
    monkeypatch.setattr(sys, "argv", ["readme_figures.py"])
    assert FIGURES.main() == 0
    assert copy.read_text() == README
    out = capsys.readouterr().out
    assert all(f"wrote figures:{name} to README.md" in out for name in ("install", "history", "backtest", "local-run"))



def test_the_seed_history_read_is_recomputed_from_the_code():
    bench = load_benchmark("prediction_bench")
    seed_bytes = bench.SEED_ITEMS * bench.collected_item_bytes()
    recorded = json.loads((ROOT / "benchmarks" / "results" / "prediction.json").read_text())["seed_per_run"]
    assert recorded == {**recorded, "items_read": 43_200, "bytes_read": seed_bytes}
    from btc_trader.cost import ORIGINAL_HISTORY_BYTES

    # The cost model prices the original design's read with the same figure.
    assert pytest.approx(seed_bytes, rel=0.005) == ORIGINAL_HISTORY_BYTES


def readme_cost_totals() -> dict[str, str]:
    row = re.search(r"\| \*\*total \(USD / month\)\*\* \| \*\*(.*?)\*\* \| \*\*(.*?)\*\* \| \*\*(.*?)\*\* \|", README)
    return dict(zip(("dev", "prod", "original"), row.groups(), strict=True))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cost_prints_the_readme_figures_for_either_stack(stack, capsys):
    assert main(["cost", "--stack", stack, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    totals = readme_cost_totals()
    assert f"{printed['original_design']['total_usd_month']:,.2f}" == totals["original"]
    assert f"{printed['stack']['total_usd_month']:,.2f}" == totals[stack]


def test_one_way_of_writing_commands():
    """Commands assume the activated venv (the quick start says so once); no `.venv/bin/` variants."""
    blocks = "\n".join(re.findall(r"```(?:bash|text)\n(.*?)```", README, flags=re.S))
    assert "source .venv/bin/activate" in README
    assert not re.search(r"\.venv/bin/(btc-trader|python|pip|ruff|pytest)", blocks)
    assert not re.search(r"`\.venv/bin/btc-trader", README)
