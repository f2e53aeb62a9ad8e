"""Decision quality: what acting on a model's calls would have earned, net of costs.

MAE against persistence rewards calibrated magnitudes, not a tradable direction: a model whose
calls are right far more often than chance but whose predicted moves are larger than the
conditional mean scores below persistence. So a model's weight follows this instead.

The calls. Every scored prediction is one step of the model's record (oldest first). Its call is
the position the risk manager would take on it alone: +1 when the predicted move reaches
`buyThresholdPct`, -1 when it reaches `sellThresholdPct`, 0 (no call) between them.

Net return of a step, in bps of the notional of one call (a "tranche"):

    x_i = position_i * realised_return_i - cost_bps * |position_i - position_{i-k}|

with cost_bps one way (fee + slippage) and k = calls per horizon (horizon / trading interval).
Calls every interval with a longer horizon overlap: read as k staggered tranches, at each step
the tranche opened k steps ago expires and a new one opens, so the traded amount is the
difference of the two positions. Consecutive calls the same way cost nothing more; a flip pays
two legs, an exit one. Positions before the record starts count as 0.

Per model: calls (steps with a position), hit rate (sign of the call = sign of the realised move)
against the break-even hit rate (0.5 + mean cost per call / (2 * mean |realised move| per call):
the hit rate at which equal-sized wins and losses pay the costs), the mean net return per call
in bps (sum of x / calls, so exit costs count), and the significance of the net edge: the
Newey-West t-statistic of the mean of x over the steps (Bartlett kernel, lags = max(k - 1,
floor(4 (W/100)^(2/9)))), which accounts for the overlap of consecutive horizons.

The window is the newest W calls (`skill_window`, 1000): the steps from the W-th newest call to
now. Counting calls, not steps, means a model that calls rarely is still judged on W calls.

The weight rule (`evidence_factor`). `modelWeights` is the prior. With c calls in the window and
N = `full_evidence_calls`, lambda = min(1, c / N) and

    weight = prior * ((1 - lambda) + lambda * supported)
    supported = 1 if t >= t_required and the mean net return is positive, else 0

so a model keeps its prior while it has no calls, moves towards what the evidence supports as
calls accumulate, and after N calls has weight 0 unless its net edge is positive with t at least
`t_required` (2.0: one-sided about 97.7 %).

The probability of a positive net edge (`edge_probability`): Phi(t) from the same evidence
(the normal approximation of the posterior of the mean under a flat prior), blended in the same
way from 1 (a configured model is trusted as configured until its calls arrive) to Phi(t).
The ensemble's confidence multiplies each agreeing model's own confidence (its call's strength)
by it, so `riskThreshold` keeps reading as "how sure are we that acting pays".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BPS = 10_000


@dataclass(frozen=True)
class EdgeParams:
    """What a call is and what acting on it costs, from the stack's settings."""

    buy_threshold_pct: float
    sell_threshold_pct: float
    cost_bps: float  # one way: fee + slippage
    overlap: int = 1  # calls per horizon: horizon / trading interval, at least 1
    t_required: float = 2.0
    full_evidence_calls: int = 300
    window: int = 1000  # calls the evidence reads, newest first

    def __post_init__(self) -> None:
        if not self.buy_threshold_pct > 0 > self.sell_threshold_pct:
            raise ValueError(f"buy threshold must be > 0 > sell threshold, got {self.buy_threshold_pct}, "
                             f"{self.sell_threshold_pct}")
        if self.cost_bps < 0 or self.overlap < 1 or self.full_evidence_calls < 1 or self.window < 1:
            raise ValueError(f"invalid edge parameters: {self}")

    def is_call(self, predicted_move_pct: float) -> bool:
        """Whether a predicted move passes the buy or the sell threshold (as `positions`)."""
        return predicted_move_pct >= self.buy_threshold_pct or predicted_move_pct <= self.sell_threshold_pct

    @property
    def lags(self) -> int:
        """Newey-West lags: the overlap, or the usual rule of thumb for the window, the larger."""
        return max(self.overlap - 1, int(4 * (self.window / 100) ** (2 / 9)))


@dataclass(frozen=True)
class EdgeStats:
    """A model's decision record over the window (see the module doc)."""

    steps: int
    calls: int
    hits: int
    mean_net_bps: float  # per call
    break_even_hit_rate: float | None
    t_stat: float

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.calls if self.calls else None


def positions(predicted_move_pct: np.ndarray, params: EdgeParams) -> np.ndarray:
    """+1 / -1 where the predicted move passes the buy / sell threshold, 0 between (and for NaN)."""
    move = np.asarray(predicted_move_pct, dtype=float)
    return np.where(move >= params.buy_threshold_pct, 1, np.where(move <= params.sell_threshold_pct, -1, 0)).astype(
        np.int8)


def net_returns(position: np.ndarray, realised_return: np.ndarray, params: EdgeParams) -> tuple[np.ndarray, np.ndarray]:
    """(x in bps per step, cost in bps per step) of the staggered tranches (see the module doc)."""
    pos = np.asarray(position, dtype=float)
    before = np.concatenate((np.zeros(min(params.overlap, len(pos))), pos[:-params.overlap] if len(pos) > params.overlap
                             else np.zeros(0)))[:len(pos)]
    cost = params.cost_bps * np.abs(pos - before)
    gross = np.where(pos != 0, pos * np.asarray(realised_return, dtype=float), 0.0)  # no call: nothing at stake
    return gross * BPS - cost, cost


def newey_west_t(x: np.ndarray, lags: int) -> float:
    """t-statistic of the mean of `x` with a Bartlett-kernel long-run variance; 0 when undefined."""
    n = len(x)
    if n < 2:
        return 0.0
    m = float(x.mean())
    d = x - m
    # Elementwise products, not `@`: a BLAS call per lag costs more than it saves at these sizes.
    lrv = float(np.sum(d * d)) / n
    for lag in range(1, min(lags, n - 1) + 1):
        lrv += 2 * (1 - lag / (lags + 1)) * float(np.sum(d[lag:] * d[:-lag])) / n
    if not lrv > 0:
        return 0.0
    return m / math.sqrt(lrv / n)


def edge_stats(predicted_move_pct: np.ndarray, realised_return: np.ndarray, params: EdgeParams) -> EdgeStats:
    """The record over the newest `params.window` calls; steps before them only set the first costs."""
    pos = positions(predicted_move_pct, params)
    realised = np.asarray(realised_return, dtype=float)
    x, cost = net_returns(pos, realised, params)
    call_steps = np.flatnonzero(pos)
    keep = slice(int(call_steps[-params.window]) if len(call_steps) > params.window else 0, len(x))
    pos, realised, x, cost = pos[keep], realised[keep], x[keep], cost[keep]
    called = pos != 0
    calls = int(called.sum())
    hits = int((np.nan_to_num(pos * realised) > 0).sum())
    mean_abs = float(np.abs(realised[called]).mean()) * BPS if calls else 0.0
    break_even = min(1.0, 0.5 + float(cost.sum()) / calls / (2 * mean_abs)) if calls and mean_abs > 0 else None
    return EdgeStats(
        steps=len(x), calls=calls, hits=hits,
        mean_net_bps=float(x.sum()) / calls if calls else 0.0,
        break_even_hit_rate=break_even,
        t_stat=newey_west_t(x, params.lags) if calls else 0.0,
    )


def normal_cdf(t: np.ndarray) -> np.ndarray:
    """Phi(t), vectorised (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7): numpy has no erf."""
    z = np.abs(np.asarray(t, dtype=float)) / math.sqrt(2)
    k = 1 / (1 + 0.3275911 * z)
    poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))))
    erf = 1 - poly * np.exp(-z * z)
    return 0.5 * (1 + np.sign(t) * erf)


def _phi(t: float) -> float:
    return float(normal_cdf(np.array([t]))[0])


def evidence_factor(calls: int, t_stat: float, mean_net_bps: float, params: EdgeParams) -> float:
    """weight / prior: 1 with no calls, towards 1 or 0 as calls accumulate (see the module doc)."""
    lam = min(1.0, calls / params.full_evidence_calls)
    supported = 1.0 if t_stat >= params.t_required and mean_net_bps > 0 else 0.0
    return (1 - lam) + lam * supported


def edge_probability(calls: int, t_stat: float, params: EdgeParams) -> float:
    """P(net edge > 0 | evidence), blended from 1 (the prior's trust) to Phi(t) as calls accumulate."""
    lam = min(1.0, calls / params.full_evidence_calls)
    return (1 - lam) + lam * _phi(t_stat)


@dataclass(frozen=True)
class RollingEdge:
    """Per query point: the evidence over the steps back to the `window`-th newest call before it (arrays)."""

    steps: np.ndarray
    calls: np.ndarray
    hits: np.ndarray
    mean_net_bps: np.ndarray
    t_stat: np.ndarray
    factor: np.ndarray  # evidence_factor
    probability: np.ndarray  # edge_probability


def rolling_edge(predicted_move_pct: np.ndarray, realised_return: np.ndarray, known: np.ndarray,
                 params: EdgeParams) -> RollingEdge:
    """Vectorised `edge_stats` + weight rule: at each query, over the first `known` steps.

    `known[j]` is how many of the (chronological) steps were scored before query j. Equal to
    `edge_stats` on each prefix (a test proves it); used by the backtester.
    """
    pos = positions(predicted_move_pct, params)
    realised = np.asarray(realised_return, dtype=float)
    x, _ = net_returns(pos, realised, params)
    called = (pos != 0).astype(float)
    hit = (np.nan_to_num(pos * realised) > 0).astype(float)

    def prefix(values: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(values)))

    k = np.asarray(known, dtype=np.int64)
    px, pc, ph = prefix(x), prefix(called), prefix(hit)
    call_steps = np.flatnonzero(called)
    so_far = pc[k].round().astype(np.int64)
    # The window opens at the window-th newest call before the query (or at the first step).
    lo = np.where(so_far > params.window, call_steps[np.clip(so_far - params.window, 0, max(len(call_steps) - 1, 0))]
                  if len(call_steps) else 0, 0).astype(np.int64)
    n = k - lo
    sx = px[k] - px[lo]
    calls = (pc[k] - pc[lo]).round().astype(np.int64)
    hits = (ph[k] - ph[lo]).round().astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n > 0, sx / np.maximum(n, 1), 0.0)
        # Bartlett long-run variance from prefix sums of x_i * x_{i-l} (pairs inside the window).
        pxx = prefix(x * x)
        lrv = (pxx[k] - pxx[lo]) - 2 * m * sx + n * m * m
        for lag in range(1, params.lags + 1):
            prod = np.concatenate((np.zeros(min(lag, len(x))), x[lag:] * x[:-lag]))
            pp = prefix(prod)
            start = np.minimum(lo + lag, k)
            pairs = np.maximum(n - lag, 0)
            s_prod = pp[k] - pp[start]
            s_late = px[k] - px[start]  # x_i, i in [lo + lag, k)
            s_early = px[np.maximum(k - lag, lo)] - px[lo]  # x_{i-lag}
            gamma = s_prod - m * (s_late + s_early) + pairs * m * m
            valid = lag <= n - 1
            lrv = lrv + np.where(valid, 2 * (1 - lag / (params.lags + 1)) * gamma, 0.0)
        lrv = lrv / np.maximum(n, 1)
        t = np.where((n >= 2) & (calls > 0) & (lrv > 0), m / np.sqrt(lrv / np.maximum(n, 1)), 0.0)
        mean_net = np.where(calls > 0, sx / np.maximum(calls, 1), 0.0)
    lam = np.minimum(1.0, calls / params.full_evidence_calls)
    supported = (t >= params.t_required) & (mean_net > 0)
    factor = (1 - lam) + lam * supported
    return RollingEdge(n, calls, hits, mean_net, t, factor, (1 - lam) + lam * normal_cdf(t))
