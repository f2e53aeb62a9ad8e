"""The backtest engine: the paper wallet's fill convention, vectorised, and the metrics.

Conventions (shared with paper trading, see btc_trader.domain.wallet): a decision is taken at
the close of bar t and filled at the open of bar t+1, moved against us by the slippage; the fee
is `fee_bps` of the filled notional. No decision is taken on a bar that follows a gap longer
than MAX_GAP_BARS (its indicators would span missing time); positions are still marked there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from btc_trader.backtest.data import Bars

MAX_GAP_BARS = 3
SECONDS_PER_YEAR = 365.25 * 86_400


@dataclass(frozen=True)
class Trade:
    entry_index: int  # bar whose open filled the entry
    exit_index: int | None  # bar whose open filled the exit; None = still open at the end
    entry_price: float
    exit_price: float | None
    pnl_usd: float
    fees_usd: float


class Fill(NamedTuple):  # a tuple, not a dataclass: a busy run creates one per order, cheaply
    """One filled order: at the open of `index`, slippage included in `price`."""

    index: int
    side: str  # BUY or SELL
    quantity_btc: float
    price: float
    fee_usd: float


@dataclass
class Result:
    equity: np.ndarray  # marked at every bar's close
    position: np.ndarray  # 1 while long at the bar's close
    trades: list[Trade]  # round trips, flat -> position -> flat (the last may be open)
    fees_usd: float
    metrics: dict[str, float | int | str | None] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)  # every order filled, oldest first


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average ending at each bar; NaN before the window fills."""
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        csum = np.cumsum(np.insert(values, 0, 0.0))
        out[window - 1:] = (csum[window:] - csum[:-window]) / window
    return out


def sma_cross_targets(close: np.ndarray, gap_before: np.ndarray, fast: int = 20, slow: int = 50) -> np.ndarray:
    """Long-only, all-in: 1 after SMA(fast) crosses above SMA(slow), 0 after it crosses below.

    The target decided at bar t's close is filled at bar t+1's open. Before the first upward
    cross there is no position even if the fast average starts above the slow one.
    """
    above = sma(close, fast) > sma(close, slow)  # NaN compares False
    defined = ~np.isnan(sma(close, slow))
    crossed_up = np.zeros(len(close), dtype=bool)
    crossed_up[1:] = above[1:] & ~above[:-1] & defined[:-1]
    target = above.astype(np.int8)
    first = int(np.argmax(crossed_up)) if crossed_up.any() else len(close)
    target[:first] = 0
    # After a long gap, hold the previous decision instead of acting on indicators across it.
    frozen = gap_before > MAX_GAP_BARS
    for i in np.flatnonzero(frozen):
        if i > 0:
            target[i] = target[i - 1]
    return target


def simulate(bars: Bars, target: np.ndarray, cash: float, fee_bps: float, slippage_bps: float) -> Result:
    """All-in long/flat simulation of decided targets with the paper wallet's fill rules."""
    n = len(bars)
    fee, slip = fee_bps / 10_000, slippage_bps / 10_000
    held = np.zeros(n, dtype=np.int8)
    held[1:] = target[:-1]  # decided at t close, in force from t+1 open
    changes = np.flatnonzero(np.diff(np.concatenate(([0], held))))
    equity = np.full(n, cash, dtype=float)
    trades: list[Trade] = []
    fills: list[Fill] = []
    fees = 0.0
    usd = cash
    for k in range(0, len(changes), 2):
        entry = changes[k]
        exit_ = changes[k + 1] if k + 1 < len(changes) else None
        buy_price = bars.open[entry] * (1 + slip)
        btc = usd / (buy_price * (1 + fee))
        buy_fee = btc * buy_price * fee
        fills.append(Fill(int(entry), "BUY", btc, buy_price, buy_fee))
        stop = exit_ if exit_ is not None else n
        equity[entry:stop] = btc * bars.close[entry:stop]
        if exit_ is None:
            trades.append(Trade(entry, None, buy_price, None, btc * bars.close[-1] - usd, buy_fee))
            fees += buy_fee
            equity_after = None
        else:
            sell_price = bars.open[exit_] * (1 - slip)
            proceeds = btc * sell_price
            sell_fee = proceeds * fee
            fills.append(Fill(int(exit_), "SELL", btc, sell_price, sell_fee))
            new_usd = proceeds - sell_fee
            trades.append(Trade(entry, exit_, buy_price, sell_price, new_usd - usd, buy_fee + sell_fee))
            fees += buy_fee + sell_fee
            usd = new_usd
            equity_after = usd
        next_change = changes[k + 2] if k + 2 < len(changes) else n
        if equity_after is not None:
            equity[exit_:next_change] = equity_after
    return Result(equity, held, trades, fees, fills=fills)


SHORT_PERIOD_DAYS = 365  # annualising less than a year of data extrapolates; the report says so


def metrics(bars: Bars, result: Result, cash: float) -> dict[str, float | int | str | None]:
    """Return, risk and trade statistics, annualised from the bar interval.

    `closed_trades` are round trips (flat -> position -> flat); `fills` are the orders behind
    them (a round trip is at least two fills). Best/worst/holding figures are of closed trades.
    """
    equity = result.equity
    returns = np.diff(equity) / equity[:-1]
    bars_per_year = SECONDS_PER_YEAR / bars.bar_seconds
    years = max((bars.timestamps[-1] - bars.timestamps[0] + bars.bar_seconds) / SECONDS_PER_YEAR, 1e-9)
    total = equity[-1] / cash - 1
    cagr = (equity[-1] / cash) ** (1 / years) - 1 if equity[-1] > 0 else -1.0
    std = returns.std()
    downside = np.sqrt(np.mean(np.minimum(returns, 0) ** 2)) if len(returns) else 0.0
    peak = np.maximum.accumulate(equity)
    drawdown = equity / peak - 1
    max_dd = float(drawdown.min())
    edges = np.diff(np.concatenate(([0], (drawdown < 0).astype(np.int8), [0])))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    longest = int(runs.max()) if len(runs) else 0
    closed = [t for t in result.trades if t.exit_index is not None]
    pnl = np.fromiter((t.pnl_usd for t in closed), dtype=float, count=len(closed))
    held_bars = np.fromiter((t.exit_index - t.entry_index for t in closed), dtype=np.int64, count=len(closed))
    returns_pct = _returns_pct(closed, result.fills)
    days = years * 365.25
    gains, losses = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    return {
        "total_return_pct": total * 100,
        "cagr_pct": cagr * 100,
        "volatility_pct": std * math.sqrt(bars_per_year) * 100,
        "sharpe": float(returns.mean() / std * math.sqrt(bars_per_year)) if std > 0 else None,
        "sortino": float(returns.mean() / downside * math.sqrt(bars_per_year)) if downside > 0 else None,
        "max_drawdown_pct": max_dd * 100,
        "max_drawdown_duration_hours": longest * bars.bar_seconds / 3600,
        "calmar": float(cagr / abs(max_dd)) if max_dd < 0 else None,
        "closed_trades": len(closed),
        "open_trades": len(result.trades) - len(closed),
        "fills": len(result.fills),
        "avg_holding_hours": float(held_bars.mean() * bars.bar_seconds / 3600) if closed else None,
        "best_trade_usd": float(pnl.max()) if closed else None,
        "worst_trade_usd": float(pnl.min()) if closed else None,
        "best_trade_pct": max(returns_pct, default=None),
        "worst_trade_pct": min(returns_pct, default=None),
        "win_rate_pct": float((pnl > 0).mean() * 100) if closed else None,
        "profit_factor": (gains / losses) if losses > 0 else None,
        "exposure_pct": float(result.position.mean() * 100),
        "fees_paid_usd": result.fees_usd,
        "buy_and_hold_pct": (bars.close[-1] / bars.open[0] - 1) * 100,
        "final_equity_usd": float(equity[-1]),
        "period_days": days,
        "annualised_caveat": (f"annualised from {days:.1f} days of data: a short period extrapolated to a "
                              "year says little; read the total return") if days < SHORT_PERIOD_DAYS else None,
    }


def _returns_pct(closed: list[Trade], fills: list[Fill]) -> list[float]:
    """Each closed trade's PnL as % of what its buys cost (fees included); [] without fills."""
    if not fills or not closed:
        return []
    indices = np.fromiter((f.index for f in fills), dtype=np.int64, count=len(fills))
    cost = np.fromiter((f.quantity_btc * f.price + f.fee_usd if f.side == "BUY" else 0.0 for f in fills),
                       dtype=float, count=len(fills))
    prefix = np.concatenate(([0.0], np.cumsum(cost)))
    entries = np.fromiter((t.entry_index for t in closed), dtype=np.int64, count=len(closed))
    exits = np.fromiter((t.exit_index for t in closed), dtype=np.int64, count=len(closed))
    spent = prefix[np.searchsorted(indices, exits, "right")] - prefix[np.searchsorted(indices, entries, "left")]
    pnl = np.fromiter((t.pnl_usd for t in closed), dtype=float, count=len(closed))
    return (pnl[spent > 0] / spent[spent > 0] * 100).tolist()
