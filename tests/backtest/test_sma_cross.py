"""The backtest engine against an independent plain-Python reference, and its conventions."""

import json
import re

import numpy as np
import pytest

from btc_trader.backtest.data import Bars, load_bars
from btc_trader.backtest.engine import metrics, simulate, sma_cross_targets
from btc_trader.cli import main
from btc_trader.domain.candles import CandleError
from btc_trader.domain.wallet import PaperWallet

HOURLY = "btcusdt_1h_binance_2020-09-20_2026-06-20.csv.gz"


def reference_trades(opens, closes):
    """Longhand SMA(20)/SMA(50) cross: decide at close t, fill at open t+1."""
    trades, long, entry = [], False, None
    def avg(i, w):
        return sum(closes[i - w + 1 : i + 1]) / w
    for t in range(50, len(closes) - 1):
        prev_above = avg(t - 1, 20) > avg(t - 1, 50)
        above = avg(t, 20) > avg(t, 50)
        if not long and above and not prev_above:
            long, entry = True, t + 1
        elif long and not above and prev_above:
            trades.append((entry, t + 1))
            long = False
    if long:
        trades.append((entry, None))
    return trades


@pytest.mark.realdata
def test_trades_equal_an_independent_reference_on_real_hourly_data(shared_file):
    bars = load_bars(shared_file(HOURLY), start=1_633_046_400, end=1_633_046_400 + 8_000 * 3600)  # from 2021-10-01
    assert bars.gap_before.max() <= 3, "the reference has no gap rule; this window has only short gaps"
    result = simulate(bars, sma_cross_targets(bars.close, bars.gap_before), 10_000, 10, 5)
    engine = [(t.entry_index, t.exit_index) for t in result.trades]
    assert engine == reference_trades(bars.open.tolist(), bars.close.tolist())
    assert len(engine) > 50


def bars_from(closes, gaps=None):
    closes = np.asarray(closes, dtype=float)
    n = len(closes)
    opens = np.concatenate(([closes[0]], closes[:-1]))
    return Bars(np.arange(n) * 3600, opens, np.maximum(opens, closes), np.minimum(opens, closes), closes,
                np.ones(n), np.zeros(n, dtype=np.int64) if gaps is None else np.asarray(gaps), 3600)


def test_changing_future_bars_never_changes_past_decisions():
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    base = sma_cross_targets(closes, np.zeros(600, dtype=np.int64))
    for cut in (100, 250, 400):
        changed = closes.copy()
        changed[cut:] *= rng.uniform(0.5, 1.5, 600 - cut)
        assert (sma_cross_targets(changed, np.zeros(600, dtype=np.int64))[:cut] == base[:cut]).all()


def test_fills_match_the_paper_wallet():
    closes = [100.0] * 60 + [101, 103, 106, 110, 115] + [90.0] * 60
    bars = bars_from(closes)
    result = simulate(bars, sma_cross_targets(bars.close, bars.gap_before), 1_000, fee_bps=10, slippage_bps=5)
    first = result.trades[0]
    wallet = PaperWallet.start(1_000)
    wallet, buy = wallet.fill("BUY", 1e9, bars.open[first.entry_index], 10, 5)
    wallet, sell = wallet.fill("SELL", 1e9, bars.open[first.exit_index], 10, 5)
    assert first.entry_price == pytest.approx(buy.price) and first.exit_price == pytest.approx(sell.price)
    assert result.equity[first.exit_index] == pytest.approx(wallet.usd)
    assert result.fees_usd == pytest.approx(wallet.fees_paid_usd)


def test_no_decision_right_after_a_long_gap():
    closes = np.concatenate((np.full(60, 100.0), np.linspace(100, 130, 10)))
    gaps = np.zeros(70, dtype=np.int64)
    gaps[60] = 10
    targets = sma_cross_targets(closes, gaps)
    assert targets[60] == targets[59]


def test_metrics_on_a_hand_computable_series():
    bars = bars_from([100.0] * 10)
    result = simulate(bars, np.zeros(10, dtype=np.int8), 1_000, 10, 5)
    figures = metrics(bars, result, 1_000)
    assert figures["total_return_pct"] == 0 and figures["closed_trades"] == 0 and figures["max_drawdown_pct"] == 0
    assert figures["fills"] == 0 and figures["best_trade_usd"] is None
    assert figures["sharpe"] is None and figures["buy_and_hold_pct"] == 0


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["2024-01-01T01:00:00Z,1,1,1,1,1", "2024-01-01T00:00:00Z,1,1,1,1,1"], "not sorted"),
        (["2024-01-01T00:00:00Z,1,1,1,1,1", "2024-01-01T00:00:00Z,1,1,1,1,1"], "duplicate bar"),
        (["2024-01-01T00:00:00Z,1,1,1,1,1", "2024-01-01T01:00:00Z,0,1,1,1,1"], "finite and positive"),
    ],
)
def test_bad_files_are_named(tmp_path, rows, message):
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(CandleError, match=message):
        load_bars(path)


@pytest.mark.realdata
def test_cli_json_and_resampling(shared_file, capsys):
    assert main(["backtest", "--data", str(shared_file(HOURLY)), "--strategy", "sma-cross", "--fee-bps", "10",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bars"] == 50_366 and report["closed_trades"] > 100 and report["simulation_seconds"] < 60
    assert report["fills"] == 2 * report["closed_trades"] + report["open_trades"]
    assert report["annualised_caveat"] is None  # almost six years: annualising is fair
    assert main(["backtest", "--data", str(shared_file("btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz")),
                 "--interval", "1h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bars"] == 500  # 504 hours, 4 lost whole in the 277-minute hole
    # The done-when of the backtester: the live strategy on the same file with the dev stack's settings.
    assert main(["backtest", "--data", str(shared_file(HOURLY)), "--strategy", "live", "--stack", "dev",
                 "--json"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert live["bars"] == 50_366 and sum(live["rejections_by_rule"].values()) > 0
    assert live["model_accuracy"]["custom"]["scored"] > 40_000


def test_html_report_is_self_contained(tmp_path, capsys):
    rng = np.random.default_rng(5)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    path = tmp_path / "bars.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{1_700_000_000 + 3600 * i},{c},{c * 1.01},{c * 0.99},{c},1\n" for i, c in enumerate(closes)))
    report = tmp_path / "report.html"
    assert main(["backtest", "--data", str(path), "--report", str(report), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    text = report.read_text()
    # One inline matplotlib figure (three charts), no script, nothing fetched when viewed.
    assert text.count("<svg") == 1 and "<script" not in text
    assert not re.search(r"(src|href)=\"https?:", text) and "<link" not in text
    # Time axis, grid, buy and hold, and a legend entry per fill side with its count.
    assert "time (UTC)" in text and "buy and hold" in text
    export = tmp_path / "trades.json"
    assert main(["backtest", "--data", str(path), "--trades", str(export)]) == 0
    rows = json.loads(export.read_text())
    buys = sum(f["side"] == "BUY" for f in rows["fills"])
    sells = sum(f["side"] == "SELL" for f in rows["fills"])
    assert f"buy ({buys})" in text and f"sell ({sells})" in text and sells >= 1
    assert len(rows["fills"]) == figures["fills"] and len(rows["closed_trades"]) == figures["closed_trades"]
    # Metrics are tables of words and numbers, never a Python dict or None.
    assert "{" not in text.split("</svg>", 1)[1].split("<body>")[-1] and ">None<" not in text
    assert main(["backtest", "--data", str(path), "--report", str(tmp_path / "r.pdf")]) == 2
    assert ".html or .png" in capsys.readouterr().err
