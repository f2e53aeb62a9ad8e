"""What a backtest shows: aligned text tables, a self-contained HTML report, a PNG, a trade export.

The charts are matplotlib's (time axis, grid, legend): the PNG as rendered, the HTML with the
same figure embedded as inline SVG, so the page needs no script, no CDN and no other file and
can be attached to an issue. Both mark every BUY and SELL fill and draw buy and hold beside the
strategy's equity.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from btc_trader.backtest.data import Bars
from btc_trader.backtest.engine import Result

MAX_LINE_POINTS = 4_000  # lines are thinned for drawing; fills keep their exact bars

# --- text ----------------------------------------------------------------------------------------


def _num(value: Any, unit: str = "", digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{unit}"
    return f"{value:{'+' if signed else ''},.{digits}f}{unit}"


def _duration(hours: float | None) -> str:
    if hours is None:
        return "-"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def sections(report: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The report as titled (label, value) rows, shared by the text and the HTML output."""
    r = report
    period = r["period"]
    short = r.get("annualised_caveat")
    mark = " *" if short else ""
    out = [
        ("run", [
            ("strategy", r["strategy"] + (f" (stack {r['stack']})" if r.get("stack") else "")),
            ("data", r["data"]),
            ("period start", period["start"]),
            ("period end", period["end"]),
            ("bars", f"{period['bars']:,} of {_duration(period['bar_seconds'] / 3600)}"
                     f" ({r['period_days']:.1f} days)"),
            ("costs", f"fee {r['fee_bps']:g} bps, slippage {r['slippage_bps']:g} bps per fill; "
                      f"start {r['cash']:,.2f} USD"),
        ]),
        ("returns", [
            ("total return", _num(r["total_return_pct"], " %", signed=True)),
            ("buy and hold", _num(r["buy_and_hold_pct"], " %", signed=True)),
            ("final equity", _num(r["final_equity_usd"], " USD")),
            ("max drawdown", _num(r["max_drawdown_pct"], " %")),
            ("longest drawdown", _duration(r["max_drawdown_duration_hours"])),
            ("exposure (time in market)", _num(r["exposure_pct"], " %", 1)),
            ("fees paid", _num(r["fees_paid_usd"], " USD")),
        ]),
        ("annualised" + (" (* see the note)" if short else ""), [
            ("CAGR" + mark, _num(r["cagr_pct"], " %", signed=True)),
            ("volatility" + mark, _num(r["volatility_pct"], " %")),
            ("Sharpe" + mark, _num(r["sharpe"])),
            ("Sortino" + mark, _num(r["sortino"])),
            ("Calmar" + mark, _num(r["calmar"])),
        ]),
        ("trades", [
            ("fills", f"{r['fills']:,} (orders filled, BUY and SELL)"),
            ("closed trades", f"{r['closed_trades']:,} (round trips: flat -> position -> flat)"),
            ("open at the end", f"{r['open_trades']:,}" + (" (marked at the last close)" if r["open_trades"] else "")),
            ("win rate", _num(r["win_rate_pct"], " %", 1)),
            ("profit factor", _num(r["profit_factor"])),
            ("best trade", _trade(r["best_trade_usd"], r["best_trade_pct"])),
            ("worst trade", _trade(r["worst_trade_usd"], r["worst_trade_pct"])),
            ("average holding time", _duration(r["avg_holding_hours"])),
        ]),
    ]
    if r["strategy"] == "live":
        out.append(("live decisions", [
            ("approved intents", f"{r['approved_intents']:,} (approved by the risk manager; each became a fill "
                                 "unless the wallet refused it)"),
            ("kill switch engaged", r["kill_switch_engaged_at"] or "never"),
        ]))
    out.append(("run time", [("simulation", f"{r['simulation_seconds']:.3f} s (file loading excluded)")]))
    return out


def _trade(usd: float | None, pct: float | None) -> str:
    if usd is None:
        return "-"
    return f"{usd:+,.2f} USD" + (f" ({pct:+.2f} %)" if pct is not None else "")


def _table(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max(len(label) for label, _ in rows)
    return [f"{indent}{label:<{width}}  {value}" for label, value in rows]


def model_sections(report: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The live strategy's decision tables: rejections by rule, each model's accuracy and net edge."""
    out = []
    if report.get("rejections_by_rule"):
        total = sum(report["rejections_by_rule"].values())
        out.append(("rejections by deciding rule (the first reason the risk manager gave)",
                    [(rule, f"{count:>8,}  {count / total:6.1%}") for rule, count in report["rejections_by_rule"].items()]))
    for model, accuracy in (report.get("model_accuracy") or {}).items():
        out.append((f"model {model} against persistence (the price stays the same)", [
            ("predictions scored", _num(accuracy["scored"])),
            ("directional accuracy", f"{accuracy['directional_accuracy_pct']:.1f} % "
                                     f"(persistence {accuracy['persistence_directional_accuracy_pct']:.1f} %)"),
            ("mean abs error", f"{accuracy['mae_pct']:.3f} % (persistence {accuracy['persistence_mae_pct']:.3f} %)"),
            ("skill vs persistence", _num(accuracy["skill_vs_persistence"], digits=3)
             + " (1 - MAE/MAE of persistence; a diagnostic, the weight follows the net edge)"),
        ]))
    for model, edge in (report.get("walk_forward") or {}).items():
        out.append((f"model {model}, walk-forward decision quality (its own calls, after costs)", [
            ("calls", f"{edge['calls']:,} of {edge['scored']:,} scored predictions"),
            ("hit rate", f"{edge['hit_rate']:.1%} (break-even {edge['break_even_hit_rate']:.1%} at "
                         f"{edge['cost_bps_per_leg']:g} bps a leg)" if edge.get("hit_rate") is not None else "-"),
            ("net per call", _num(edge.get("mean_net_bps"), " bps", signed=True)
             + (f" (Newey-West t {edge['t_stat_newey_west']:+.2f})" if edge.get("t_stat_newey_west") is not None
                else "")),
            ("weight", f"{edge['final_weight']:g} at the end (prior {edge['prior_weight']:g})"),
        ]))
    return out


def render_text(report: dict[str, Any]) -> str:
    """The report as aligned text tables (what `btc-trader backtest` prints)."""
    lines: list[str] = []
    for title, rows in sections(report) + model_sections(report):
        lines += [title, *_table(rows), ""]
    notes = list(report.get("notes") or [])
    if report.get("annualised_caveat"):
        notes.insert(0, "* " + report["annualised_caveat"])
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines).rstrip()


# --- charts --------------------------------------------------------------------------------------


def _figure(bars: Bars, result: Result, report: dict[str, Any], title: str) -> Any:
    """Price with every fill, equity against buy and hold, drawdown: one figure, shared time axis."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works on servers and in CI
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    times = (bars.timestamps + bars.bar_seconds).astype("datetime64[s]")  # a bar is known at its close
    step = max(1, len(bars) // MAX_LINE_POINTS)
    line = slice(None, None, step)
    cash = float(report["cash"])
    hold = cash * bars.close / bars.open[0]
    peak = np.maximum.accumulate(result.equity)
    drawdown = (result.equity / peak - 1) * 100

    figure, (price, equity, under) = plt.subplots(3, 1, figsize=(12, 8.5), sharex=True,
                                                  gridspec_kw={"height_ratios": [3, 2, 1]})
    price.plot(times[line], bars.close[line], color="#444", linewidth=0.8, label="close")
    opened = (bars.timestamps).astype("datetime64[s]")  # fills happen at a bar's open
    for side, marker, color in (("BUY", "^", "#1a7f37"), ("SELL", "v", "#cf222e")):
        chosen = [f for f in result.fills if f.side == side]
        price.scatter(opened[[f.index for f in chosen]], [f.price for f in chosen], marker=marker, color=color,
                      s=30, zorder=3, label=f"{side.lower()} ({len(chosen)})")
    price.set_ylabel("price (USD)")
    price.set_title(title)
    price.legend(loc="upper left")
    equity.plot(times[line], result.equity[line], color="#0969da", linewidth=1,
                label=f"strategy {report['total_return_pct']:+.2f} %")
    equity.plot(times[line], hold[line], color="#999", linewidth=1, linestyle="--",
                label=f"buy and hold {report['buy_and_hold_pct']:+.2f} %")
    equity.set_ylabel("equity (USD)")
    equity.legend(loc="upper left")
    under.fill_between(times[line], drawdown[line], 0, color="#cf222e", alpha=0.4, linewidth=0)
    under.set_ylabel("drawdown (%)")
    under.set_xlabel("time (UTC)")
    locator = mdates.AutoDateLocator()
    under.xaxis.set_major_locator(locator)
    under.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for axis in (price, equity, under):
        axis.grid(True, color="#ddd", linewidth=0.6)
    figure.tight_layout()
    return figure


def write_png(path: Path, bars: Bars, result: Result, report: dict[str, Any], title: str) -> Path:
    """The charts as a PNG."""
    import matplotlib.pyplot as plt

    figure = _figure(bars, result, report, title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _svg(bars: Bars, result: Result, report: dict[str, Any], title: str) -> str:
    import matplotlib.pyplot as plt

    figure = _figure(bars, result, report, title)
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "btc-trader"}):  # text stays text
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)  # RDF boilerplate with URLs
    return svg[svg.index("<svg"):]  # drop the XML prolog and DOCTYPE: it goes inline


def write_report(path: Path, bars: Bars, result: Result, report: dict[str, Any], title: str) -> Path:
    """A self-contained HTML report: the charts inline, the report's tables, the closed trades."""
    tables = []
    for heading, rows in sections(report) + model_sections(report):
        body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        tables.append(f"<h3>{html.escape(heading)}</h3><table>{body}</table>")
    notes = (["* " + report["annualised_caveat"]] if report.get("annualised_caveat") else []) + list(report.get("notes") or [])
    note_html = "".join(f"<p class=note>{html.escape(n)}</p>" for n in notes)
    trades = _trade_rows(bars, result)["closed_trades"]
    shown = trades[:500]
    trade_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(t[c]))}</td>" for c in _CLOSED_COLUMNS) + "</tr>" for t in shown)
    more = f"<p>{len(trades) - len(shown):,} more in the --trades export.</p>" if len(trades) > len(shown) else ""
    document = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}th{{text-align:left;padding-right:1em;
font-weight:normal;color:#555}}td{{padding-right:1em}}.note{{color:#9a6700}}svg{{width:100%;height:auto}}
.tables{{display:flex;flex-wrap:wrap;gap:2em}}</style></head><body><h1>{html.escape(title)}</h1>
<p>Green triangles: BUY fills, red: SELL fills, at the bar's open where they filled. Dashed: buy and hold.</p>
{_svg(bars, result, report, title)}
{note_html}<div class=tables>{''.join(tables)}</div>
<h2>Closed trades ({len(trades):,})</h2><table><tr>{''.join(f'<th>{c}</th>' for c in _CLOSED_COLUMNS)}</tr>
{trade_rows}</table>{more}</body></html>"""
    path.write_text(document)
    return path


# --- trade export --------------------------------------------------------------------------------

_FILL_COLUMNS = ["time", "side", "quantity_btc", "price", "fee_usd", "notional_usd"]
_CLOSED_COLUMNS = ["entry_time", "exit_time", "entry_price", "exit_price", "pnl_usd", "fees_usd", "holding_hours"]


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}" if isinstance(value, float) else str(value)


def _iso(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _trade_rows(bars: Bars, result: Result) -> dict[str, list[dict[str, Any]]]:
    fills = [{"time": _iso(int(bars.timestamps[f.index])), "side": f.side, "quantity_btc": f.quantity_btc,
              "price": f.price, "fee_usd": f.fee_usd, "notional_usd": f.quantity_btc * f.price}
             for f in result.fills]
    closed = [{"entry_time": _iso(int(bars.timestamps[t.entry_index])), "exit_time": _iso(int(bars.timestamps[
              t.exit_index])), "entry_price": float(t.entry_price), "exit_price": float(t.exit_price),
               "pnl_usd": float(t.pnl_usd), "fees_usd": float(t.fees_usd),
               "holding_hours": (t.exit_index - t.entry_index) * bars.bar_seconds / 3600}
              for t in result.trades if t.exit_index is not None]
    return {"fills": fills, "closed_trades": closed}


def write_trades(path: Path, bars: Bars, result: Result) -> Path:
    """Every fill and every closed trade: JSON {fills, closed_trades}, or CSV with a `record` column."""
    rows = _trade_rows(bars, result)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=1))
        return path
    columns = ["record", *_FILL_COLUMNS, *_CLOSED_COLUMNS]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({"record": "fill", **row} for row in rows["fills"])
        writer.writerows({"record": "closed_trade", **row} for row in rows["closed_trades"])
    return path
