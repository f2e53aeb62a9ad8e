"""Write the README's measured figures from what the tools measured, and say what was written.

    .venv/bin/python benchmarks/readme_figures.py            # rewrite the README blocks
    .venv/bin/python benchmarks/readme_figures.py --install  # also re-measure the first install

`make bench` writes benchmarks/results/{prediction,backtest,local_run}.json; this script renders the
README's `<!-- figures:NAME:begin -->` blocks from them (and from results/install.json, the size
of .venv and the time `make venv` took). tests/test_readme_figures.py renders the same blocks
and requires the README to hold them, and recomputes the figures a test can afford.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _rate(bars_per_s: float) -> str:
    return f"~{bars_per_s / 1e6:.2g} M bars/s" if bars_per_s >= 1e6 else f"~{bars_per_s / 1e3:.3g} k bars/s"


def history_block(prediction: dict) -> str:
    """The history-read sentence: ours (dev stack) against the seed's unpaginated 30-day read."""
    seed, ours = prediction["seed_per_run"], prediction["ours_per_run"]["dev"]
    return (f"Measured (`benchmarks/prediction_bench.py`, dev stack): ~{ours['items_read']:,} items per run, "
            f"{ours['bytes_read_full_items'] / 1e3:.0f} KB read ({ours['bytes_returned_projected'] / 1e3:.0f} KB "
            f"returned after the projection), against the seed's {seed['items_read']:,} items / "
            f"{seed['bytes_read'] / 1e6:.2f} MB: about {ours['fewer_bytes_read_than_seed_x']:,.0f}x fewer bytes read.")


BACKTEST_ROWS = (
    ("btcusdt_1h_binance_2020-09-20_2026-06-20.csv.gz", "hourly"),
    ("btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz", "1-minute"),
)


def backtest_block(backtest: dict) -> str:
    """The backtest speed and memory table."""
    lines = ["| data | sma-cross | live, dev settings | live, trading every bar (worst case) |",
             "|---|---:|---:|---:|"]
    for name, label in BACKTEST_ROWS:
        if name in backtest:
            row = backtest[name]
            lines.append(f"| {label}, {row['bars']:,} bars | {_rate(row['sma_cross_bars_per_s'])} | "
                         f"{_rate(row['live_dev_bars_per_s'])} | {_rate(row['live_busy_bars_per_s'])} "
                         f"({row['live_busy_fills']:,} fills) |")
    million = backtest.get("1M_bars")
    if million:
        lines.append(f"| 1 million bars | {_rate(million['sma_cross_bars_per_s'])}, "
                     f"{million['peak_traced_mb']:.0f} MB peak | {_rate(million['live_dev_bars_per_s'])}, "
                     f"{million['live_peak_traced_mb']:.0f} MB peak | {_rate(million['live_busy_bars_per_s'])} |")
    cpu = [(label, backtest[name]["live_dev_cpu_bars_per_s"]) for name, label in BACKTEST_ROWS
           if "live_dev_cpu_bars_per_s" in backtest.get(name, {})]
    if million and "live_dev_cpu_bars_per_s" in million:
        cpu.append(("1 million bars", million["live_dev_cpu_bars_per_s"]))
    cpu_text = (" Counted in CPU time instead (`live_dev_cpu_bars_per_s`, best of 10), which the neighbours do not "
                "slow down, `live` with dev settings runs " + ", ".join(f"{_rate(v)[1:]} on the {label} file"
                                                                       if label != "1 million bars" else
                                                                       f"{_rate(v)[1:]} on 1 million bars"
                                                                       for label, v in cpu) + ".") if cpu else ""
    return "\n".join(lines) + ("\n\nWall-clock speeds vary several-fold with the machine's load (measured on 2 cores; "
                               "compare runs on an idle machine); peak memory, what Python allocated during the run "
                               "(`tracemalloc`, the loaded bars excluded), does not." + cpu_text)


def install_block(install: dict) -> str:
    """The first-install sentence of the quick start."""
    return (f"The first run creates `.venv`: about {install['venv_bytes'] / 1e9:.1f} GB "
            f"(pulumi-aws alone is {install['pulumi_aws_bytes'] / install['venv_bytes']:.0%} of it) and about {max(1, round(install['seconds'] / 60))} minutes "
            f"on a 2-core machine with pip's download cache already filled (downloading the wheels adds to that); "
            "later runs start at once.")


def local_run_block(local_run: dict) -> str:
    """`local run`'s speed on a replay, with each executor of the state machine."""
    fast, moto = local_run["fast"], local_run.get("emulator")

    def cpu(figures: dict) -> str:
        parts = figures["cpu_ms_per_decision"]
        return (f"runner {parts['runner']} ms, emulator {parts['emulator']} ms, handler workers "
                f"{parts['handler_workers']} ms")

    market = "real candles" if "replay of" in fast["market"] else "the SYNTHETIC series"
    # Indented: the block sits inside the README's `local run` list item.
    text = (f"  Measured (`benchmarks/local_run_bench.py`, {fast['decisions']} decisions of a replay of {market}, dev "
            f"stack, {fast['cores']} cores, load average {fast['load_average']}): "
            f"**{fast['decisions_per_s_after_start']:.1f} decisions per second** from the first decision to the last, "
            f"{fast['decisions_per_s']:.1f} per second counting the start (the history's seeding and six workers' cold "
            f"starts, {fast['cold_starts_cpu_s']} CPU s); CPU per decision: {cpu(fast)}. Repeated runs on this shared "
            "VM vary by about 15%, CPU time included.")
    if moto:
        text += (f" With `--executor emulator`: {moto['decisions_per_s_after_start']:.1f} decisions per second "
                 f"({cpu(moto)}).")
    return text


def blocks() -> dict[str, str]:
    """Every README figure block, rendered from the recorded measurements."""
    return {"history": history_block(_load("prediction")), "backtest": backtest_block(_load("backtest")),
            "install": install_block(_load("install")), "local-run": local_run_block(_load("local_run"))}


def measure_install(venv: Path) -> dict:
    """Size of .venv and how long `make venv` took (its first file to its install stamp)."""
    seconds = (venv / ".installed").stat().st_mtime - (venv / "pyvenv.cfg").stat().st_mtime
    pulumi_aws = next(venv.glob("lib/python*/site-packages/pulumi_aws"))
    return {"venv_bytes": tree_bytes(venv), "pulumi_aws_bytes": tree_bytes(pulumi_aws), "seconds": round(seconds)}


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (as `du -sb` counts them, links not followed)."""
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the block NAME's body replaced (the markers must exist)."""
    begin, end = f"<!-- figures:{name}:begin -->", f"<!-- figures:{name}:end -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {begin} ... {end} block")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="re-measure .venv into results/install.json")
    options = parser.parse_args()
    if options.install:
        figures = measure_install(ROOT / ".venv")
        (RESULTS / "install.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"measured the install: {figures['venv_bytes'] / 1e9:.2f} GB, {figures['seconds']} s "
              f"-> {RESULTS / 'install.json'}")
    text = README.read_text()
    for name, body in blocks().items():
        text = replace_block(text, name, body)
        print(f"wrote figures:{name} to {README.name}: {body.splitlines()[0][:100]}")
    README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
