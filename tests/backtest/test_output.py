"""What `btc-trader backtest` prints and writes: tables people can read, exports, refusals."""

import csv
import json
import re

import numpy as np
import pytest

from btc_trader.cli import main


def write_walk(path, bars=600, seconds=3600, seed=11):
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{1_700_000_000 + seconds * i},{c},{c * 1.01},{c * 0.99},{c},1\n" for i, c in enumerate(closes)))
    return path


@pytest.fixture
def walk(tmp_path):
    return write_walk(tmp_path / "walk.csv")


def test_text_output_is_aligned_tables_without_python_reprs(walk, capsys):
    assert main(["backtest", "--data", str(walk)]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\bNone\b|\[\'|\{\'|\{\"", out), out
    for label in ("period start", "period end", "bars", "fills", "closed trades", "average holding time",
                  "best trade", "worst trade", "buy and hold"):
        assert re.search(rf"^  {label}\s", out, flags=re.M), label
    # Within a table every value starts in the same column.
    block = out.split("\ntrades\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len({re.match(r"  (.+?\S)\s{2,}\S", line).end() for line in block}) == 1, block
    # 600 hourly bars are 25 days: annualised figures carry the caveat.
    assert "CAGR *" in out and "note: * annualised from 25.0 days" in out


def test_json_names_fills_and_closed_trades_and_the_period(walk, capsys):
    assert main(["backtest", "--data", str(walk), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["period"] == {"start": "2023-11-14T22:13:20Z", "end": "2023-12-09T22:13:20Z", "bars": 600,
                                "bar_seconds": 3600}
    assert "trades" not in report  # the ambiguous name is gone
    assert report["fills"] == 2 * report["closed_trades"] + report["open_trades"]
    assert report["annualised_caveat"].startswith("annualised from 25.0 days")
    assert report["best_trade_usd"] >= report["worst_trade_usd"]
    assert report["avg_holding_hours"] > 0


def test_trades_export_csv_holds_every_fill_and_closed_trade(walk, tmp_path, capsys):
    export = tmp_path / "trades.csv"
    assert main(["backtest", "--data", str(walk), "--trades", str(export), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    with export.open() as handle:
        rows = list(csv.DictReader(handle))
    fills = [r for r in rows if r["record"] == "fill"]
    closed = [r for r in rows if r["record"] == "closed_trade"]
    assert len(fills) == report["fills"] and len(closed) == report["closed_trades"] > 0
    assert {r["side"] for r in fills} == {"BUY", "SELL"}
    assert max(float(r["pnl_usd"]) for r in closed) == pytest.approx(report["best_trade_usd"])
    assert main(["backtest", "--data", str(walk), "--trades", str(tmp_path / "t.xlsx")]) == 2
    assert "--trades writes .csv or .json" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--stack", "prod"], ["--set", "riskThreshold=0.2"], ["--ignore-skill"]])
def test_options_that_do_not_apply_to_sma_cross_are_refused(walk, extra, capsys):
    assert main(["backtest", "--data", str(walk), "--strategy", "sma-cross", *extra]) == 2
    err = capsys.readouterr().err
    assert extra[0] in err and "only to --strategy live" in err


def test_a_stack_that_does_not_exist_is_refused(walk, capsys):
    assert main(["backtest", "--data", str(walk), "--strategy", "live", "--stack", "staging"]) == 2
    assert "Pulumi.staging.yaml not found" in capsys.readouterr().err


def test_sweep_has_its_own_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["backtest", "sweep", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: btc-trader backtest sweep")
    assert "--grid" in out and "--workers" in out and "--report" not in out
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    out = capsys.readouterr().out
    assert "--trades" in out and "--workers" not in out


def test_backtest_without_data_says_what_it_needs(capsys):
    assert main(["backtest"]) == 2
    assert "needs --data FILE" in capsys.readouterr().err


def test_live_text_output_has_no_python_reprs(walk, capsys):
    assert main(["backtest", "--data", str(walk), "--strategy", "live", "--stack", "prod",
                 "--set", "riskThreshold=0.1", "--ignore-skill"]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"\bNone\b|\['|\{'|\{\"", out), out
    assert "approved intents" in out and "rejections by deciding rule" in out
    assert "model custom, walk-forward decision quality" in out and "Newey-West t" in out
    assert "note: models bedrock, huggingface need AWS" in out and "note: --ignore-skill" in out


def test_png_marks_every_fill_and_draws_buy_and_hold(walk, tmp_path, capsys):
    from btc_trader.backtest.cli import simulate_strategy
    from btc_trader.backtest.data import load_bars
    from btc_trader.backtest.report import _figure
    from btc_trader.cli import build_parser

    args = build_parser().parse_args(["backtest", "--data", str(walk)])
    bars = load_bars(walk)
    result, report = simulate_strategy(bars, args, None)
    figure = _figure(bars, result, report, "t")
    price, equity, drawdown = figure.axes
    labels = price.get_legend_handles_labels()[1]
    sells = sum(f.side == "SELL" for f in result.fills)
    assert f"sell ({sells})" in labels and sells > 0
    hold = next(line for line in equity.get_lines() if line.get_label().startswith("buy and hold"))
    assert hold.get_ydata()[-1] == pytest.approx(report["cash"] * bars.close[-1] / bars.open[0])
    assert all(axis.xaxis.get_gridlines()[0].get_visible() for axis in figure.axes)
    assert drawdown.get_xlabel() == "time (UTC)"
    import matplotlib.pyplot as plt

    plt.close(figure)
    png = tmp_path / "r.png"
    assert main(["backtest", "--data", str(walk), "--report", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote charts: {png}" in capsys.readouterr().out
