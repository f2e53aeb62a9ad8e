"""The `live` strategy: the stack's own decision code replayed over candles, fast.

What runs is what the Lambdas run. The `custom` model's forecasts come from
`technical_forecasts` (proven equal to the per-prediction model bar by bar); its ensemble weight
and its probability of a positive net edge are the evaluator's decision record walked forward
(`rolling_edge`, proven equal to `edge_stats` over each prefix: the configured weight is the
prior, moved by the calls scored before each decision); the risk manager's `decide`, the paper
wallet's `fill` and the risk state's `after_trade` are the domain functions themselves.

Where the work goes: forecasts, skills, marks and drawdowns are arrays. The event path — a
`PredictionResult`, `decide`, a fill — runs only on the decision bars where something can change:
an intent to BUY or SELL that passes the prediction and confidence rules, and the first bar where
the drawdown kill switch engages while a position is open. Every other decision is a refusal
whose deciding rule (the first reason the risk manager would give: `prediction`, `hold` or
`confidence`) is known from the arrays; a parity test checks those against `decide`.

Timing, as in the deployed stack: the decision at bar t uses the bars up to t's close and the
skills scored before it (the evaluator runs after each decision); a fill uses bar t+1's open
with the slippage; `after_trade` is stamped at the decision time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from btc_trader.backtest.data import Bars
from btc_trader.backtest.engine import MAX_GAP_BARS, Result, Trade
from btc_trader.backtest.recorded import RecordedModels
from btc_trader.contracts import ModelOutput, PredictionResult
from btc_trader.domain.prediction.edge import EdgeParams, edge_stats, rolling_edge
from btc_trader.domain.prediction.model import STABLE_BAND_PCT, direction_of
from btc_trader.domain.prediction.technical import technical_forecasts
from btc_trader.domain.risk import RiskLimits, RiskState, decide
from btc_trader.domain.wallet import DUST_BTC, PaperWallet, WalletError
from btc_trader.runtime_config import PredictorConfig
from btc_trader.stack.settings import StackSettings

OFFLINE_MODELS = ("custom",)
_DIRECTION = {1: "up", -1: "down", 0: "stable"}


@dataclass
class LiveRun:
    """The outcome of a `live` backtest, with what the metrics and the parity test read."""

    result: Result
    decisions: np.ndarray  # bar indices where a decision was taken
    status: np.ndarray  # per bar: 0 ok, 1 insufficient_history, 2 no_model (decision bars only)
    predicted_price: np.ndarray
    confidence: np.ndarray
    direction: np.ndarray
    weight: np.ndarray
    samples: np.ndarray
    rejections: Counter = field(default_factory=Counter)
    approvals: int = 0
    fills: list[tuple[int, str, float, float, float]] = field(default_factory=list)  # bar, side, qty, price, fee
    kill_switch_bar: int | None = None
    model_accuracy: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    walk_forward: dict[str, dict] = field(default_factory=dict)  # per model: the decision record, weight per day
    probability: np.ndarray | None = None  # per bar: P(net edge > 0) the ensemble multiplied in
    notes: list[str] = field(default_factory=list)
    events: int = 0


def risk_limits(settings: StackSettings) -> RiskLimits:
    return RiskLimits(
        max_trade_usd=settings.max_trade_amount, risk_threshold=settings.risk_threshold,
        buy_threshold_pct=settings.buy_threshold_pct, sell_threshold_pct=settings.sell_threshold_pct,
        fee_bps=settings.fee_bps, max_position_pct=settings.max_position_pct,
        daily_loss_limit_pct=settings.daily_loss_limit_pct, max_drawdown_pct=settings.max_drawdown_pct,
        cooldown_minutes=settings.cooldown_minutes, max_trades_per_day=settings.max_trades_per_day,
        max_price_age_s=settings.max_price_age_seconds, max_divergence_bps=settings.max_source_divergence_bps,
    )


@dataclass(frozen=True)
class Ensemble:
    """The ensemble at each decision bar (arrays), as `combine` computes it for one prediction."""

    status: np.ndarray  # 0 ok, 1 no forecast at all, 2 no model with weight (no_model)
    predicted_price: np.ndarray
    direction: np.ndarray  # +1 / -1 / 0
    confidence: np.ndarray
    share: dict[str, np.ndarray]


def _combine(current: np.ndarray, predicted: dict[str, np.ndarray], strength: dict[str, np.ndarray],
             weights: dict[str, np.ndarray], trust: dict[str, np.ndarray]) -> Ensemble:
    """`combine`, vectorised over decision bars: weighted vote on direction, agreeing models' price.

    Same arithmetic in the same model order, so one model alone gives its own price exactly.
    """
    models = list(predicted)
    price = np.vstack([predicted[m] for m in models])
    has = ~np.isnan(price)
    w = np.vstack([weights[m] for m in models])
    usable = has & (w > 0)
    total = np.where(usable, w, 0.0).sum(axis=0)
    share = np.where(usable, w, 0.0) / np.where(total > 0, total, 1.0)
    with np.errstate(invalid="ignore"):
        move = (price / current - 1) * 100
    vote = np.where(move > STABLE_BAND_PCT, 1, np.where(move < -STABLE_BAND_PCT, -1, 0))
    votes = np.vstack([np.where(usable & (vote == d), share, 0.0).sum(axis=0) for d in (1, -1, 0)])  # DIRECTIONS
    top = votes.max(axis=0)
    tied = (votes == top).sum(axis=0) > 1
    leader = np.array([1, -1, 0])[votes.argmax(axis=0)]
    agreeing = usable & (vote == leader)
    agreement = np.where(tied, 1.0, top)
    with np.errstate(invalid="ignore", divide="ignore"):
        price_of_vote = np.where(agreeing, share * np.nan_to_num(price), 0.0).sum(axis=0) / agreement
    conviction = np.where(agreeing, share * np.vstack([trust[m] for m in models])
                          * np.vstack([strength[m] for m in models]), 0.0).sum(axis=0)
    status = np.where(~has.any(axis=0), 1, np.where(usable.any(axis=0), 0, 2)).astype(np.int8)
    ok = status == 0
    return Ensemble(
        status=status,
        predicted_price=np.where(ok & ~tied, price_of_vote, current),
        direction=np.where(ok & ~tied, leader, 0).astype(np.int8),
        confidence=np.where(ok & ~tied, np.minimum(1.0, conviction), 0.0),
        share={m: share[i] for i, m in enumerate(models)},
    )


def _outputs(predicted: dict[str, np.ndarray], strength: dict[str, np.ndarray], ensemble: Ensemble, j: int,
             t: int, current: float) -> list[ModelOutput]:
    """Every model's output at decision j (bar t), as the predictor would list it."""
    outputs = []
    for m, price in predicted.items():
        p = float(price[t])
        ok = not math.isnan(p)
        outputs.append(ModelOutput.model_construct(
            model=m, predicted_price=p if ok else None,
            direction=direction_of((p / current - 1) * 100) if ok else None,
            confidence=float(strength[m][t]) if ok else None, weight=round(float(ensemble.share[m][j]), 6), ok=ok,
            error=None if ok else "no recorded prediction at this bar"))
    return outputs


def edge_params(settings: StackSettings, horizon_bars: int, step_bars: int, cost_bps: float) -> EdgeParams:
    """The evaluator's decision-quality parameters for these settings (as `PredictorConfig.edge_params`)."""
    predictor = PredictorConfig.model_fields
    return EdgeParams(
        buy_threshold_pct=settings.buy_threshold_pct, sell_threshold_pct=settings.sell_threshold_pct,
        cost_bps=cost_bps, overlap=max(1, round(horizon_bars / step_bars)),
        t_required=predictor["skill_t_required"].default, full_evidence_calls=predictor["min_skill_samples"].default,
        window=predictor["skill_window"].default,
    )


def scored_skill(close: np.ndarray, predicted: np.ndarray, decisions: np.ndarray, horizon: int, step: int,
                 window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per decision bar: (samples, skill, model abs errors, persistence abs errors) as the evaluator sees them.

    A prediction made at decision bar j is scored against the price h bars later, by the first
    evaluation at or after j + h; a decision at t reads scores evaluated before it (up to t - step).
    """
    n = len(close)
    made = decisions[(decisions + horizon < n) & ~np.isnan(predicted[decisions])]
    realised = close[made + horizon]
    model_err = np.abs(predicted[made] - realised) / realised * 100
    persist_err = np.abs(close[made] - realised) / realised * 100
    prefix_m = np.concatenate(([0.0], np.cumsum(model_err)))
    prefix_p = np.concatenate(([0.0], np.cumsum(persist_err)))
    # Scored before the decision at t: made + horizon <= t - step.
    k = np.searchsorted(made + horizon, decisions - step, side="right")
    lo = np.maximum(0, k - window)
    samples = k - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        mae_m = (prefix_m[k] - prefix_m[lo]) / samples
        mae_p = (prefix_p[k] - prefix_p[lo]) / samples
        skill = np.where(mae_p > 0, 1 - mae_m / mae_p, np.where(mae_m > 0, 0.0, 1.0))
    return samples, np.where(samples > 0, skill, np.nan), model_err, persist_err


def _direction_hits(close: np.ndarray, predicted: np.ndarray, made: np.ndarray, horizon: int) -> tuple[float, float]:
    """Directional accuracy (%) of the model and of persistence, with `score`'s stable band."""
    base, realised = close[made], close[made + horizon]

    def direction(move: np.ndarray) -> np.ndarray:
        return np.where(move > STABLE_BAND_PCT, 1, np.where(move < -STABLE_BAND_PCT, -1, 0))

    truth = direction((realised / base - 1) * 100)
    model = direction((predicted[made] / base - 1) * 100)
    return float((model == truth).mean() * 100), float((truth == 0).mean() * 100)


def prediction_at(bars: Bars, t: int, status: int, predicted: float, confidence: float, direction: int,
                  weight: float, horizon_minutes: int, models: list[ModelOutput] | None = None) -> PredictionResult:
    """The `prediction` contract the predictor would return at bar t's close.

    Built without re-validation (`model_construct`): the values come from arrays already checked,
    and a backtest builds thousands per second; the parity test compares them with validated ones.
    """
    as_of = _iso(int(bars.timestamps[t]) + bars.bar_seconds)
    price = float(bars.close[t])
    build = PredictionResult.model_construct
    if status == 1:
        return build(status="insufficient_history", reason="insufficient_history: custom needs more bars",
                     as_of=as_of, current_price=None, price_age_s=None, predicted_price=None,
                     horizon_minutes=horizon_minutes, direction="stable", confidence=0.0, models=[],
                     source_divergence_bps=None)
    outputs = models if models is not None else [ModelOutput.model_construct(
        model="custom", predicted_price=predicted, direction=_DIRECTION[direction], confidence=confidence,
        weight=weight if status == 0 else 0.0, ok=True, error=None)]
    if status == 2:
        return build(status="no_model", reason="no model produced a usable forecast (custom: weight 0 "
                     "(no net edge after costs))", as_of=as_of, current_price=price, price_age_s=0,
                     predicted_price=None, horizon_minutes=horizon_minutes, direction="stable", confidence=0.0,
                     models=outputs, source_divergence_bps=None)
    return build(status="ok", reason=None, as_of=as_of, current_price=price, price_age_s=0, predicted_price=predicted,
                 horizon_minutes=horizon_minutes, direction=_DIRECTION[direction], confidence=min(1.0, confidence),
                 models=outputs, source_divergence_bps=None)


def _iso(epoch: int) -> str:
    from btc_trader.domain.prediction.result import iso

    return iso(epoch)


def run_live(bars: Bars, settings: StackSettings, cash: float, fee_bps: float, slippage_bps: float,
             progress: Callable[[int], None] | None = None, ignore_skill: bool = False,
             edge: EdgeParams | None = None, recorded: RecordedModels | None = None) -> LiveRun:
    """Replay the stack's decisions over `bars` (see the module doc).

    `ignore_skill` keeps the configured weights and full trust however the model's calls pay —
    NOT what the live stack does; for studying the risk rules. `edge` replaces the evaluator's
    defaults (evidence window, calls to full evidence), e.g. to study the weight rule. `recorded`
    replays Bedrock's and Chronos' stored outputs beside `custom` (`backtest --predictions`).
    """
    n = len(bars)
    close = bars.close
    bar_minutes = bars.bar_seconds / 60
    horizon = max(1, round(settings.prediction_horizon_minutes / bar_minutes))
    step = max(1, round(settings.trading_interval / bar_minutes))
    edge = edge or edge_params(settings, horizon, step, fee_bps + slippage_bps)
    limits = replace(risk_limits(settings), fee_bps=fee_bps)
    notes = []
    forecasts = technical_forecasts(close, horizon)
    # Each model's forecast per bar: `custom` computed here, the others as recorded (NaN: none).
    prices = {"custom": forecasts.predicted_price}
    strengths = {"custom": np.nan_to_num(forecasts.confidence)}
    if recorded is None:
        excluded = [m for m in settings.ml_models if m not in OFFLINE_MODELS]
        if excluded:
            notes.append(f"models {', '.join(excluded)} need AWS and are excluded (replay them with --predictions FILE from "
                         "`btc-trader predictions export`); the ensemble is the custom model alone")
    else:
        models = [m for m in settings.ml_models if m in OFFLINE_MODELS or m in recorded.predicted_price]
        missing_models = [m for m in settings.ml_models if m not in models]
        if not models:
            raise ValueError(f"the predictions file holds none of the stack's models {list(settings.ml_models)}")
        prices = {m: prices["custom"] if m == "custom" else recorded.predicted_price[m] for m in models}
        strengths = {m: strengths["custom"] if m == "custom" else np.nan_to_num(recorded.confidence[m])
                     for m in models}
        notes.append(f"replayed {recorded.lines} recorded predictions ({recorded.unmatched} outside these bars or "
                     f"of another symbol); models {models}"
                     + (f"; {missing_models} are in mlModels but not in the file, so excluded" if missing_models
                        else ""))
    if settings.prediction_horizon_minutes % bar_minutes:
        notes.append(f"predictionHorizonMinutes {settings.prediction_horizon_minutes} rounded to {horizon} bars")
    if ignore_skill:
        notes.append("--ignore-skill: every model keeps its configured weight and full trust whatever its calls "
                     "earned; the live stack would weigh it by its net edge")

    decisions = np.arange(0, n, step)
    # No decision right after a gap longer than MAX_GAP_BARS: its indicators would span missing time.
    decisions = decisions[bars.gap_before[decisions] <= MAX_GAP_BARS]
    # Each model's decision record as the evaluator builds it: a prediction made at decision bar j
    # is scored h bars later, by the first evaluation at or after j + h; the decision at t reads
    # the scores evaluated before it (made + h <= t - step).
    records, weights, trusts = {}, {}, {}
    for m, predicted in prices.items():
        made = decisions[(decisions + horizon < n) & ~np.isnan(predicted[decisions])]
        moves = (predicted[made] / close[made] - 1) * 100
        realised = close[made + horizon] / close[made] - 1
        known = np.searchsorted(made + horizon, decisions - step, side="right")
        record = rolling_edge(moves, realised, known, edge)
        records[m] = (made, moves, realised, record)
        prior = settings.model_weights.get(m, 1.0)
        weights[m] = np.full(len(decisions), prior) if ignore_skill else prior * record.factor
        trusts[m] = np.ones(len(decisions)) if ignore_skill else record.probability
    ensemble = _combine(close[decisions], {m: p[decisions] for m, p in prices.items()},
                        {m: c[decisions] for m, c in strengths.items()}, weights, trusts)
    status = np.full(n, -1, dtype=np.int8)
    status[decisions] = ensemble.status
    weight = np.zeros(n)
    weight[decisions] = weights.get("custom", 0.0)
    samples = np.zeros(n, dtype=np.int64)
    probability = np.ones(n)
    if "custom" in records:
        samples[decisions] = records["custom"][3].steps
        probability[decisions] = trusts["custom"]
    # Per bar: the ensemble where it is usable; elsewhere custom's own figures (what a refusal lists).
    usable = ensemble.status == 0
    predicted_price = forecasts.predicted_price.copy()
    predicted_price[decisions] = np.where(usable, ensemble.predicted_price, predicted_price[decisions])
    direction = forecasts.direction.copy()
    direction[decisions] = np.where(usable, ensemble.direction, direction[decisions])
    confidence = np.nan_to_num(forecasts.confidence) * probability
    confidence[decisions] = np.where(usable, ensemble.confidence, confidence[decisions])

    ok = ensemble.status == 0
    move = (ensemble.predicted_price / close[decisions] - 1) * 100
    action = np.where(move >= limits.buy_threshold_pct, 1, np.where(move <= limits.sell_threshold_pct, -1, 0))
    action = np.where(ok, action, 0)
    conf = np.where(ok, ensemble.confidence, 0.0)
    confident = conf >= limits.risk_threshold
    candidates = decisions[ok & (action != 0) & confident]

    run = LiveRun(Result(np.empty(0), np.empty(0), [], 0.0), decisions, status, predicted_price,
                  confidence, direction, weight, samples, notes=notes, probability=probability)
    # The deciding rule of every refusal the arrays already know (the risk manager's first reason).
    quiet = ~(ok & (action != 0) & confident)
    quiet_rule = np.where(~ok, 0, np.where(action == 0, 1, 2))
    rule_names = ("prediction", "hold", "confidence")
    for code, count in zip(*np.unique(quiet_rule[quiet], return_counts=True), strict=True):
        run.rejections[rule_names[code]] += int(count)

    # Scalars per bar as Python floats: the event path reads them one at a time.
    close_at, open_at = close.tolist(), bars.open.tolist()
    decided_at = (bars.timestamps + bars.bar_seconds).tolist()
    predicted_at, confidence_at = predicted_price.tolist(), confidence.tolist()
    direction_at, status_at, weight_at = direction.tolist(), status.tolist(), weight.tolist()
    wallet = PaperWallet.start(cash)
    state = RiskState()
    segment_start, usd_path = 0, []
    day = (bars.timestamps + bars.bar_seconds) // 86_400
    last_done, i = -1, 0
    while True:
        # The next decision bar where something can change: a candidate, or the drawdown kill
        # switch engaging while a position is open (the flatten happens in that same decision).
        next_candidate = int(candidates[i]) if i < len(candidates) else None
        next_kill = None
        if wallet.btc >= DUST_BTC and not state.kill_switch:
            upper = next_candidate if next_candidate is not None else n - 1
            span = decisions[np.searchsorted(decisions, last_done, "right"):np.searchsorted(decisions, upper, "right")]
            if len(span):
                equity = wallet.usd + wallet.btc * close[span]
                peak = np.maximum(wallet.peak_equity_usd, np.maximum.accumulate(equity))
                hit = np.flatnonzero((1 - equity / peak) * 100 >= limits.max_drawdown_pct)
                if len(hit):
                    next_kill = int(span[hit[0]])
        if next_candidate is None and next_kill is None:
            break
        if state.kill_switch and wallet.btc < DUST_BTC:
            # Sticky, flat and nothing left to sell: every remaining candidate is refused, by the
            # first rule in the risk manager's order that fails — `holdings` for a SELL (nothing
            # to sell), `kill_switch` for a BUY (a flat wallet passes the rules before it).
            rest = candidates[i:]
            sells = int((action[np.searchsorted(decisions, rest)] < 0).sum())
            run.rejections["holdings"] += sells
            run.rejections["kill_switch"] += len(rest) - sells
            break
        if next_kill is not None and (next_candidate is None or next_kill < next_candidate):
            t = next_kill
            # A quiet bar: its refusal was counted from the arrays; `decide` now says what happened.
            run.rejections[rule_names[quiet_rule[np.searchsorted(decisions, t)]]] -= 1
        else:
            t = next_candidate
            i += 1
        run.events += 1
        # What the live stack did on the quiet bars since the last event: marked the wallet at
        # every tick (new equity peaks) and rolled the day's counters at the day's first decision.
        span = decisions[np.searchsorted(decisions, last_done, "right"):np.searchsorted(decisions, t, "right")]
        if wallet.btc > 0 and len(span):
            wallet = wallet.mark(float(close[span].max()))
        today = span[day[span] == day[t]]
        if len(today) and day[t] != state.day:
            f = int(today[0])
            state = state.roll_to(int(bars.timestamps[f]) + bars.bar_seconds, wallet.equity(float(close[f])))
        last_done = t
        prediction = prediction_at(bars, t, status_at[t], predicted_at[t], confidence_at[t], direction_at[t],
                                   weight_at[t], settings.prediction_horizon_minutes,
                                   None if len(prices) == 1 else _outputs(prices, strengths, ensemble,
                                                                          int(np.searchsorted(decisions, t)), t,
                                                                          close_at[t]))
        now = decided_at[t]
        wallet = wallet.mark(close_at[t])  # as RiskService.check does before deciding
        decision = decide(prediction, wallet, state, limits, now)
        state = decision.state
        if state.kill_switch and run.kill_switch_bar is None:
            run.kill_switch_bar = t
        if not decision.approved or t + 1 >= n:
            reason = decision.reasons[0].split(":", 1)[0] if decision.reasons else "end_of_data"
            run.rejections[reason] += 1
            continue
        run.approvals += 1
        try:
            wallet_after, fill = wallet.fill(decision.intent.action, decision.intent.quantity_btc,
                                             open_at[t + 1], fee_bps, slippage_bps)
        except WalletError:
            run.rejections["wallet"] += 1
            continue
        usd_path.append((segment_start, t + 1, wallet.usd, wallet.btc))
        segment_start = t + 1
        wallet = wallet_after
        state = state.after_trade(now, fill.realised_pnl_usd)
        run.fills.append((t + 1, decision.intent.action, fill.quantity_btc, fill.price, fill.fee_usd))
        if progress:
            progress(t)
    usd_path.append((segment_start, n, wallet.usd, wallet.btc))
    equity = np.empty(n)
    position = np.zeros(n, dtype=np.int8)
    for start, stop, usd, btc in usd_path:
        equity[start:stop] = usd + btc * close[start:stop]
        position[start:stop] = 1 if btc >= DUST_BTC else 0
    run.result = Result(equity, position, _round_trips(run.fills, close), wallet.fees_paid_usd)
    for m, (made, moves, realised, record) in records.items():
        if not len(made):
            continue
        model_hits, persistence_hits = _direction_hits(close, prices[m], made, horizon)
        _, _, model_err, persist_err = scored_skill(close, prices[m], made, horizon, 0, max(1, len(made)))
        run.model_accuracy[m] = {
            "scored": int(len(made)), "directional_accuracy_pct": model_hits,
            "persistence_directional_accuracy_pct": persistence_hits,
            "mae_pct": float(model_err.mean()), "persistence_mae_pct": float(persist_err.mean()),
            "skill_vs_persistence": float(1 - model_err.mean() / persist_err.mean()) if persist_err.mean() > 0 else None,
        }
        model_weight = np.zeros(n)
        model_weight[decisions] = weights[m]
        run.walk_forward[m] = walk_forward(bars, decisions, moves, realised, record, model_weight, edge,
                                           settings.model_weights.get(m, 1.0))
    if progress:
        progress(n - 1)
    return run


def walk_forward(bars: Bars, decisions: np.ndarray, moves: np.ndarray, realised: np.ndarray, record,
                 weight: np.ndarray, edge: EdgeParams, prior: float) -> dict:
    """One model's decision record over the whole run, and its weight walked forward per day."""
    whole = edge_stats(moves, realised, replace(edge, window=max(1, len(moves))))
    called = np.sign(np.where(np.abs(moves) > STABLE_BAND_PCT, moves, 0.0))
    gross = called * realised * 10_000
    direction_calls = int((called != 0).sum())
    day = (bars.timestamps[decisions] + bars.bar_seconds) // 86_400
    first = np.flatnonzero(np.diff(np.concatenate(([-1], day))))
    last = np.concatenate((first[1:], [len(day)])) - 1
    sums = np.add.reduceat(weight[decisions], first) if len(first) else np.zeros(0)
    # Columns, not one object per day: a five-year hourly run has ~2,000 days per model.
    per_day = {
        "date": np.datetime_as_string(day[first].astype("datetime64[D]")).tolist(),
        "weight": np.round(sums / (last - first + 1), 4).tolist(),
        "calls": record.calls[last].tolist(),
        "t_stat": np.round(record.t_stat[last], 3).tolist(),
    }
    directional = gross[called != 0]
    spread = float(directional.std()) if direction_calls > 1 else 0.0
    return {
        "prior_weight": prior,
        "scored": int(len(moves)),
        "calls": whole.calls,
        "hit_rate": whole.hit_rate,
        "break_even_hit_rate": whole.break_even_hit_rate,
        "mean_net_bps": whole.mean_net_bps,
        "t_stat_newey_west": whole.t_stat,
        "newey_west_lags": replace(edge, window=max(1, len(moves))).lags,
        "cost_bps_per_leg": edge.cost_bps,
        # The raw directional measure (sign of every predicted move beyond the stable band x the
        # realised move, no costs, naive t): what a call is worth before the thresholds and fees.
        "direction_calls": direction_calls,
        "direction_gross_bps": float(directional.mean()) if direction_calls else None,
        "direction_naive_t": (float(directional.mean() / spread * np.sqrt(direction_calls)) if spread > 0
                              else None),
        "final_weight": float(weight[decisions[-1]]) if len(decisions) else None,
        "weight_per_day": per_day,
    }


def _round_trips(fills: list[tuple[int, str, float, float, float]], close: np.ndarray) -> list[Trade]:
    """Flat -> position -> flat, as trades (the last may still be open at the final close)."""
    trades: list[Trade] = []
    entry = None
    held = bought = spent = received = fees = 0.0
    for bar, side, quantity, price, fee in fills:
        if side == "BUY":
            if entry is None:
                entry, held, bought, spent, received, fees = bar, 0.0, 0.0, 0.0, 0.0, 0.0
            held += quantity
            bought += quantity
            spent += quantity * price + fee
        else:
            held -= quantity
            received += quantity * price - fee
        fees += fee
        if entry is not None and held < DUST_BTC:
            trades.append(Trade(entry, bar, spent / bought, price, received - spent, fees))
            entry = None
    if entry is not None:
        trades.append(Trade(entry, None, spent / bought, None, received + held * float(close[-1]) - spent, fees))
    return trades
