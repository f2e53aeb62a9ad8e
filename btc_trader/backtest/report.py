"""A self-contained HTML report: price with trade markers, equity, drawdown (inline SVG).

No scripts, no external files: the report opens anywhere and can be attached to an issue.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from btc_trader.backtest.data import Bars
from btc_trader.backtest.engine import Result

WIDTH, HEIGHT, PAD = 960, 220, 40
MAX_POINTS = 2_000  # charts are downsampled; markers keep their exact bars


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = (high - low) or 1.0
    return HEIGHT - PAD / 2 - (values - low) / span * (HEIGHT - PAD)


def _polyline(values: np.ndarray, color: str) -> tuple[str, np.ndarray, float, float]:
    step = max(1, len(values) // MAX_POINTS)
    sampled = values[::step]
    xs = np.linspace(PAD, WIDTH - PAD / 2, len(sampled))
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    ys = _scale(sampled, low, high)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{points}"/>', xs, low, high


def _chart(title: str, values: np.ndarray, color: str, markers: str = "") -> str:
    line, _, low, high = _polyline(values, color)
    return (
        f'<h2>{html.escape(title)}</h2><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img">'
        f'<text x="4" y="14" font-size="11">{high:,.2f}</text>'
        f'<text x="4" y="{HEIGHT - 6}" font-size="11">{low:,.2f}</text>{line}{markers}</svg>'
    )


def write_report(path: Path, bars: Bars, result: Result, metrics: dict, title: str) -> Path:
    """Write the report and return its path."""
    n = len(bars)
    low, high = float(bars.close.min()), float(bars.close.max())
    def x_of(index: int) -> float:
        return PAD + index / max(1, n - 1) * (WIDTH - 1.5 * PAD)
    markers = []
    for trade in result.trades:
        y = _scale(np.array([bars.close[trade.entry_index]]), low, high)[0]
        markers.append(f'<circle cx="{x_of(trade.entry_index):.1f}" cy="{y:.1f}" r="3" fill="#1a7f37"/>')
        if trade.exit_index is not None:
            y = _scale(np.array([bars.close[trade.exit_index]]), low, high)[0]
            markers.append(f'<circle cx="{x_of(trade.exit_index):.1f}" cy="{y:.1f}" r="3" fill="#cf222e"/>')
    drawdown = (result.equity / np.maximum.accumulate(result.equity) - 1) * 100
    first = datetime.fromtimestamp(int(bars.timestamps[0]), UTC).strftime("%Y-%m-%d %H:%M")
    last = datetime.fromtimestamp(int(bars.timestamps[-1]), UTC).strftime("%Y-%m-%d %H:%M")
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:,.4f}</td></tr>" if isinstance(v, float)
        else f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in metrics.items()
    )
    document = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}th{{text-align:left;padding-right:1em}}</style>
</head><body><h1>{html.escape(title)}</h1><p>{n:,} bars, {first} .. {last} UTC.
Green: entries, red: exits (filled at the next bar's open).</p>
{_chart("Price (close) and trades", bars.close, "#0969da", "".join(markers))}
{_chart("Equity (USD)", result.equity, "#8250df")}
{_chart("Drawdown (%)", drawdown, "#cf222e")}
<h2>Metrics</h2><table>{rows}</table></body></html>"""
    path.write_text(document)
    return path


def write_png(path: Path, bars: Bars, result: Result, title: str) -> None:
    """The same three charts as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works on servers and in CI
    import matplotlib.pyplot as plt

    times = (bars.timestamps + bars.bar_seconds).astype("datetime64[s]")
    figure, (price, equity, drawdown) = plt.subplots(3, 1, figsize=(12, 8), sharex=True,
                                                     gridspec_kw={"height_ratios": [3, 2, 1]})
    price.plot(times, bars.close, color="#444", linewidth=0.8, label="close")
    entries = [t.entry_index for t in result.trades]
    exits = [t.exit_index for t in result.trades if t.exit_index is not None]
    price.scatter(times[entries], bars.open[entries], marker="^", color="#1a7f37", s=28, label="buy", zorder=3)
    price.scatter(times[exits], bars.open[exits], marker="v", color="#cf222e", s=28, label="sell", zorder=3)
    price.set_ylabel("USD")
    price.legend(loc="upper left")
    price.set_title(title)
    equity.plot(times, result.equity, color="#0969da", linewidth=1)
    equity.set_ylabel("equity USD")
    peak = np.maximum.accumulate(result.equity)
    drawdown.fill_between(times, (result.equity / peak - 1) * 100, 0, color="#cf222e", alpha=0.4)
    drawdown.set_ylabel("drawdown %")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
