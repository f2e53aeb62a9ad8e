"""The risk manager: a prediction becomes an order intent, then every protection has its say.

Protections follow freqtrade's: each is a small function of (intent, context) returning a
`RuleOutcome` with a human-readable reason; all failing reasons are kept, not only the first.
Kill switches (the drawdown one and the operator's manual one) and per-trade sanity rules block
every trade; loss limits, cooldown and the position cap block new exposure (BUY) but never a SELL
that reduces it. Pure: the time, the wallet and the state are passed in.

The event is not trusted: with `Evidence` (what the stack itself knows: the latest stored price
and its time, the configured symbols, the distance between the run's clock and the wall clock)
the prediction's price must match the stored one, its age is measured from the stored price's
time against the run's clock, and the wallet is marked to the stored price, so a bogus price can
neither size an order nor move the equity peak or engage the drawdown kill switch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from btc_trader.contracts import PredictionResult, RiskResult
from btc_trader.domain.wallet import DUST_BTC, PaperWallet

Action = Literal["BUY", "SELL", "HOLD"]
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Lease:
    """A symbol's lease: who holds it and until when (epoch s); `acquired` for the caller."""

    symbol: str
    holder: str
    expires_at: int
    acquired: bool


@dataclass(frozen=True)
class Evidence:
    """What the stack knows, to hold the event against (read by the service, passed in)."""

    symbol: str
    symbols: tuple[str, ...]  # the configured symbols
    stored_price: float | None  # the newest stored price at or before the run's clock
    stored_at: int | None  # its time (epoch s)
    clock_skew_s: float | None = None  # live mode: |wall clock - requested_at|; None in paper mode
    unresolved_orders: tuple[str, ...] = ()  # live: trade ids whose order is open or of unknown fate
    order_block: str | None = None  # live: a ledger/exchange difference an operator must resolve


@dataclass(frozen=True)
class RiskLimits:
    """The stack's risk settings, as the domain needs them."""

    max_trade_usd: float
    risk_threshold: float
    buy_threshold_pct: float
    sell_threshold_pct: float
    fee_bps: float
    max_position_pct: float
    daily_loss_limit_pct: float
    max_drawdown_pct: float
    cooldown_minutes: int
    max_trades_per_day: int
    max_price_age_s: int
    max_divergence_bps: float
    min_order_usd: float = 5.0  # below every major venue's minimum notional
    min_order_btc: float = 1e-5  # Binance's BTC LOT_SIZE minQty; smaller positions are dust


@dataclass(frozen=True)
class RiskState:
    """What the risk manager remembers between runs (persisted per stack and symbol)."""

    day: int = -1  # UTC day number of the counters
    day_start_equity_usd: float = 0.0
    trades_today: int = 0
    last_loss_at: int | None = None
    kill_switch: bool = False  # engaged by the drawdown rule; only an operator resets it
    kill_reason: str | None = None
    last_price: float = 0.0  # the last trusted price: what a decision without one marks equity at

    def roll_to(self, now: int, equity: float) -> RiskState:
        """Start a new UTC day's counters when `now` is in a new day."""
        day = now // SECONDS_PER_DAY
        if day == self.day:
            return self
        return replace(self, day=day, day_start_equity_usd=equity, trades_today=0)

    def after_trade(self, now: int, realised_pnl_usd: float) -> RiskState:
        """Count a trade; a losing one starts the cooldown."""
        return replace(
            self, trades_today=self.trades_today + 1,
            last_loss_at=now if realised_pnl_usd < 0 else self.last_loss_at,
        )

    def reset_kill_switch(self) -> RiskState:
        """The operator's reset (`btc-trader ... reset-kill-switch`)."""
        return replace(self, kill_switch=False, kill_reason=None)


def reset_kill_switch(wallet: PaperWallet, state: RiskState, price: float) -> tuple[PaperWallet, RiskState]:
    """Re-arm trading: the switch is off and the equity peak is today's marked equity.

    Keeping the old peak would leave the drawdown at or beyond the limit, and the very next
    run would engage the switch again.
    """
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"resetting the kill switch needs a positive price to mark equity at, got {price}")
    return replace(wallet, peak_equity_usd=wallet.equity(price)), replace(state.reset_kill_switch(), last_price=price)


@dataclass(frozen=True)
class Intent:
    action: Action
    quantity_btc: float
    notional_usd: float
    price: float
    move_pct: float


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    passed: bool
    reason: str = ""
    utilisation: float = 0.0  # how close to its limit this rule is: 0 far, 1 at or beyond


@dataclass(frozen=True)
class Context:
    prediction: PredictionResult
    wallet: PaperWallet
    state: RiskState
    limits: RiskLimits
    now: int
    manual_kill_switch: bool
    price: float  # the mark price: the stored price when there is evidence, else the prediction's
    evidence: Evidence | None = None


@dataclass(frozen=True)
class RiskDecision:
    intent: Intent
    outcomes: list[RuleOutcome]
    state: RiskState  # to persist: day counters, kill switch
    approved: bool
    reasons: list[str] = field(default_factory=list)
    risk_score: float = 0.0
    drawdown_pct: float = 0.0  # equity below its peak at the decision's price (the kill switch's measure)

    def to_result(self, **identity: object) -> RiskResult:
        """The workflow's `risk` contract; `identity` adds the lease, state version and order ids."""
        price = self.intent.price
        return RiskResult(
            approved=self.approved,
            action=self.intent.action,
            quantity_btc=round(self.intent.quantity_btc, 8),
            notional_usd=round(self.intent.notional_usd, 2),
            reasons=self.reasons,
            risk_score=round(self.risk_score, 4),
            reference_price=price if math.isfinite(price) and price > 0 else None,
            **identity,
        )


def lease_refusal(lease: Lease) -> RiskDecision:
    """Another execution holds the symbol's lease: refuse, touching nothing (a result, not an error)."""
    reason = (f"lease: {lease.symbol} is held by execution {lease.holder} until epoch {lease.expires_at}; "
              "this run neither decides nor trades")
    outcome = RuleOutcome("lease", False, reason.split(": ", 1)[1], 1)
    return RiskDecision(Intent("HOLD", 0.0, 0.0, 0.0, 0.0), [outcome], RiskState(), False, [reason], 1.0)


def _finite_positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def size_intent(prediction: PredictionResult, wallet: PaperWallet, limits: RiskLimits,
                mark_price: float | None = None) -> Intent:
    """BUY / SELL / HOLD from the predicted move, sized by maxTradeAmount, position cap, balance.

    The move is the prediction's own (predicted against its current price); the size is at the
    mark price (the stored one when the service passes it).
    """
    current = prediction.current_price
    price = float(mark_price if mark_price is not None else (current or 0))
    if prediction.status != "ok" or not _finite_positive(current) or not _finite_positive(prediction.predicted_price):
        return Intent("HOLD", 0.0, 0.0, price, math.nan)  # no move to speak of: no "hold" reason either
    move = (prediction.predicted_price / current - 1) * 100
    if not _finite_positive(price):  # nothing to size at: the market rules say why
        return Intent("HOLD", 0.0, 0.0, price, move)
    equity = wallet.equity(price)
    if move >= limits.buy_threshold_pct:
        room = max(0.0, equity * limits.max_position_pct / 100 - wallet.btc * price)
        cash = wallet.usd / (1 + limits.fee_bps / 10_000)
        notional = max(0.0, min(limits.max_trade_usd, room, cash))
        return Intent("BUY", notional / price, notional, price, move)
    if move <= limits.sell_threshold_pct:
        quantity = min(wallet.btc, limits.max_trade_usd / price)
        return Intent("SELL", quantity, quantity * price, price, move)
    return Intent("HOLD", 0.0, 0.0, price, move)


# --- the protections -----------------------------------------------------------------------


def inputs_valid(intent: Intent, c: Context) -> RuleOutcome:
    p = c.prediction
    numbers = {"current_price": p.current_price, "predicted_price": p.predicted_price}
    bad = [f"{k}={v}" for k, v in numbers.items() if v is not None and not _finite_positive(v)]
    if p.price_age_s is not None and not (math.isfinite(p.price_age_s) and p.price_age_s >= 0):
        bad.append(f"price_age_s={p.price_age_s}")
    if not math.isfinite(p.confidence):
        bad.append(f"confidence={p.confidence}")
    if bad:
        return RuleOutcome("inputs", False, f"prediction numbers must be finite and positive: {', '.join(bad)}", 1)
    return RuleOutcome("inputs", True)


def symbol_configured(intent: Intent, c: Context) -> RuleOutcome:
    e = c.evidence
    if e is not None and e.symbol not in e.symbols:
        return RuleOutcome("symbol", False, f"{e.symbol} is not a configured symbol {list(e.symbols)}", 1)
    return RuleOutcome("symbol", True)


def market_price(intent: Intent, c: Context) -> RuleOutcome:
    e, claimed, limit = c.evidence, c.prediction.current_price, c.limits.max_divergence_bps
    if e is None or (claimed is None and c.prediction.status != "ok"):
        return RuleOutcome("market_price", True)  # no evidence (backtests), or a refusal without a price
    if e.stored_price is None:
        return RuleOutcome("market_price", False, f"no stored price of {e.symbol} to check the prediction against", 1)
    if not _finite_positive(claimed):
        return RuleOutcome("market_price", False, f"prediction price {claimed} is not a price", 1)
    distance = abs(claimed / e.stored_price - 1) * 10_000
    if distance > limit:
        return RuleOutcome("market_price", False, f"prediction price {claimed:.2f} is {distance:.0f} bps from the "
                           f"stored price {e.stored_price:.2f}, limit maxSourceDivergenceBps {limit:g}", 1)
    return RuleOutcome("market_price", True, utilisation=distance / limit)


def direction_consistent(intent: Intent, c: Context) -> RuleOutcome:
    wanted = {"BUY": "up", "SELL": "down"}.get(intent.action)
    if wanted and c.prediction.direction != wanted:
        return RuleOutcome("direction", False, f"a {intent.action} needs an '{wanted}' prediction, the prediction "
                           f"says '{c.prediction.direction}' with a {intent.move_pct:+.2f}% predicted move", 1)
    return RuleOutcome("direction", True)


def clock(intent: Intent, c: Context) -> RuleOutcome:
    skew = c.evidence.clock_skew_s if c.evidence else None
    limit = c.limits.max_price_age_s
    if skew is not None and skew > limit:
        return RuleOutcome("clock", False, f"requested_at is {skew:.0f} s from the wall clock, limit "
                           f"maxPriceAgeSeconds {limit}: live trading acts only on the present", 1)
    return RuleOutcome("clock", True)


def prediction_usable(intent: Intent, c: Context) -> RuleOutcome:
    if c.prediction.status != "ok":
        return RuleOutcome("prediction", False, f"prediction unusable ({c.prediction.status}): {c.prediction.reason}", 1)
    return RuleOutcome("prediction", True)


def confidence(intent: Intent, c: Context) -> RuleOutcome:
    conf, limit = c.prediction.confidence, c.limits.risk_threshold
    # Utilisation: how much of the allowed doubt (1 - riskThreshold) this prediction uses.
    use = min(1.0, (1 - conf) / (1 - limit)) if limit < 1 else 1.0
    if conf < limit:
        return RuleOutcome("confidence", False, f"{conf:.2f} below riskThreshold {limit:.2f}", 1)
    return RuleOutcome("confidence", True, utilisation=use)


def price_freshness(intent: Intent, c: Context) -> RuleOutcome:
    age, limit = c.prediction.price_age_s, c.limits.max_price_age_s
    e = c.evidence
    if e is not None and e.stored_at is not None:
        # The stored price's time against the run's clock, never younger than the event claims.
        stored_age = max(0, c.now - e.stored_at)
        age = stored_age if age is None or not math.isfinite(age) else max(age, stored_age)
    if age is None or not math.isfinite(age):
        return RuleOutcome("price_age", False, "price age unknown", 1)
    if age > limit:
        return RuleOutcome("price_age", False, f"price is {age:.0f} s old, limit maxPriceAgeSeconds {limit}", 1)
    return RuleOutcome("price_age", True, utilisation=age / limit)


def source_divergence(intent: Intent, c: Context) -> RuleOutcome:
    divergence, limit = c.prediction.source_divergence_bps, c.limits.max_divergence_bps
    if divergence is None:  # backfilled history has no venue spread; nothing to hold against it
        return RuleOutcome("divergence", True)
    if divergence > limit:
        return RuleOutcome("divergence", False, f"sources diverge by {divergence:.0f} bps, limit {limit:.0f}", 1)
    return RuleOutcome("divergence", True, utilisation=divergence / limit)


def position_cap(intent: Intent, c: Context) -> RuleOutcome:
    if intent.action != "BUY":
        return RuleOutcome("position_cap", True)
    equity = c.wallet.equity(c.price)
    cap = equity * c.limits.max_position_pct / 100
    held = c.wallet.btc * c.price
    use = min(1.0, held / cap) if cap > 0 else 1.0
    if intent.notional_usd < c.limits.min_order_usd:
        if c.wallet.usd < c.limits.min_order_usd:
            return RuleOutcome("position_cap", False, f"no cash to buy with ({c.wallet.usd:.2f} USD)", 1)
        return RuleOutcome("position_cap", False, f"position {held:.2f} USD at maxPositionPct "
                           f"{c.limits.max_position_pct:g}% of equity ({cap:.2f} USD)", 1)
    return RuleOutcome("position_cap", True, utilisation=use)


def holdings(intent: Intent, c: Context) -> RuleOutcome:
    if intent.action == "SELL" and intent.notional_usd < c.limits.min_order_usd:
        return RuleOutcome("holdings", False, f"nothing to sell ({c.wallet.btc:.8f} BTC held)", 1)
    return RuleOutcome("holdings", True)


def daily_loss(intent: Intent, c: Context) -> RuleOutcome:
    start = c.state.day_start_equity_usd
    if start <= 0:
        return RuleOutcome("daily_loss", True)
    loss_pct = max(0.0, (1 - c.wallet.equity(c.price) / start) * 100)
    limit = c.limits.daily_loss_limit_pct
    if loss_pct >= limit and intent.action == "BUY":
        return RuleOutcome("daily_loss", False, f"down {loss_pct:.2f}% today (realised + unrealised), "
                           f"dailyLossLimitPct {limit:g}%", 1)
    return RuleOutcome("daily_loss", True, utilisation=min(1.0, loss_pct / limit))


def drawdown_kill_switch(intent: Intent, c: Context) -> RuleOutcome:
    if c.state.kill_switch:
        return RuleOutcome("kill_switch", False, f"kill switch engaged: {c.state.kill_reason}", 1)
    drawdown = c.wallet.drawdown_pct(c.price)
    limit = c.limits.max_drawdown_pct
    if drawdown >= limit:
        return RuleOutcome("kill_switch", False, f"drawdown {drawdown:.2f}% reached maxDrawdownPct {limit:g}%: "
                           "kill switch engaged until an operator resets it", 1)
    return RuleOutcome("kill_switch", True, utilisation=drawdown / limit)


def manual_kill_switch(intent: Intent, c: Context) -> RuleOutcome:
    if c.manual_kill_switch:
        return RuleOutcome("manual_kill_switch", False, "manual kill switch is on (SSM parameter)", 1)
    return RuleOutcome("manual_kill_switch", True)


def orders_resolved(intent: Intent, c: Context) -> RuleOutcome:
    """Nothing new is sent for a symbol while one of its orders has an unknown fate or its ledger
    disagrees with the exchange (the exchange is the truth; the reconciler finds out)."""
    evidence = c.evidence
    if evidence is not None and evidence.order_block:
        return RuleOutcome("orders", False, f"blocked until an operator reconciles ({evidence.order_block}): "
                           "`btc-trader trading reconcile --stack NAME --aws`", 1)
    if evidence is not None and evidence.unresolved_orders:
        return RuleOutcome("orders", False, f"order(s) of unresolved fate ({', '.join(evidence.unresolved_orders)}): "
                           "nothing new is sent until the reconciler knows what happened to them", 1)
    return RuleOutcome("orders", True)


def cooldown(intent: Intent, c: Context) -> RuleOutcome:
    if intent.action != "BUY" or c.state.last_loss_at is None or c.limits.cooldown_minutes == 0:
        return RuleOutcome("cooldown", True)
    remaining = c.state.last_loss_at + c.limits.cooldown_minutes * 60 - c.now
    if remaining > 0:
        return RuleOutcome("cooldown", False, f"cooling down after a losing trade, {math.ceil(remaining / 60)} "
                           f"of {c.limits.cooldown_minutes} min left", 1)
    return RuleOutcome("cooldown", True)


def trades_per_day(intent: Intent, c: Context) -> RuleOutcome:
    used, limit = c.state.trades_today, c.limits.max_trades_per_day
    if used >= limit:
        return RuleOutcome("max_trades", False, f"{used} trades today, maxTradesPerDay {limit}", 1)
    return RuleOutcome("max_trades", True, utilisation=used / limit)


RULES: tuple[Callable[[Intent, Context], RuleOutcome], ...] = (
    inputs_valid, symbol_configured, market_price, clock, prediction_usable, direction_consistent, confidence,
    price_freshness, source_divergence, position_cap, holdings, daily_loss, drawdown_kill_switch,
    manual_kill_switch, orders_resolved, cooldown, trades_per_day,
)
# What a price must pass before anything is sold on it, even the kill switch's flatten.
MARKET_RULES = frozenset({"inputs", "symbol", "market_price", "clock", "price_age", "divergence"})


def decide(
    prediction: PredictionResult,
    wallet: PaperWallet,
    state: RiskState,
    limits: RiskLimits,
    now: int,
    manual_kill_switch: bool = False,
    evidence: Evidence | None = None,
) -> RiskDecision:
    """The intent, every rule's outcome, the state to persist and the verdict.

    `evidence` is what the stack knows to check the prediction against (the service always
    passes it; backtests replay their own data and pass none). risk_score is the nearest limit's
    utilisation: 0 when every limit is far away, 1 when one is reached (documented in the README;
    emitted as `RiskScore`).
    """
    claimed = prediction.current_price if _finite_positive(prediction.current_price) else None
    if evidence is not None:
        price = evidence.stored_price if _finite_positive(evidence.stored_price) else 0.0
    else:
        price = claimed or 0.0
    # A day's first decision marks its starting equity at the last known price, never at 0.
    known = price or state.last_price or wallet.avg_cost
    state = state.roll_to(now, wallet.equity(known) if known > 0 else wallet.usd)
    if price > 0:
        state = replace(state, last_price=price)
    intent = size_intent(prediction, wallet, limits, price if evidence is not None else None)
    context = Context(prediction, wallet, state, limits, now, manual_kill_switch, price, evidence)
    outcomes = [rule(intent, context) for rule in RULES]
    market_ok = price > 0 and all(o.passed for o in outcomes if o.rule in MARKET_RULES)
    engaged = next((o for o in outcomes if o.rule == "kill_switch" and not o.passed), None)
    # Only a trusted price may engage the sticky switch: a bogus one must not stop trading for good.
    if engaged and not state.kill_switch and market_ok:
        state = replace(state, kill_switch=True, kill_reason=engaged.reason.split(":")[0])
    # "rule: detail", so reasons can be counted by rule and still read as sentences.
    reasons = [f"{o.rule}: {o.reason}" for o in outcomes if not o.passed]
    if intent.action == "HOLD" and prediction.status == "ok" and (
            limits.sell_threshold_pct < intent.move_pct < limits.buy_threshold_pct):
        reasons.insert(0, f"hold: predicted move {intent.move_pct:+.2f}% within thresholds "
                          f"(+{limits.buy_threshold_pct:g}% / {limits.sell_threshold_pct:g}%)")
    approved = intent.action != "HOLD" and intent.quantity_btc >= DUST_BTC and not reasons
    score = max((o.utilisation for o in outcomes), default=0.0)
    drawdown = wallet.drawdown_pct(price) if price > 0 else 0.0
    if state.kill_switch and not manual_kill_switch and wallet.btc >= DUST_BTC:
        if is_dust(wallet.btc, price, limits):
            reasons.insert(0, f"flatten: the position ({wallet.btc:.8f} BTC) is dust below the market's minimums "
                              f"({limits.min_order_btc:g} BTC, {limits.min_order_usd:g} USD); nothing to sell")
        elif not market_ok:
            reasons.insert(0, "flatten: not on this price; the kill switch's sale waits for a fresh, checked price")
        elif any(o.rule == "orders" and not o.passed for o in outcomes):
            reasons.insert(0, "flatten: waits until the symbol's orders are resolved (never a second sell blindly)")
        else:
            return _flatten(wallet, state, outcomes, reasons, price, drawdown)
        return RiskDecision(replace(intent, action="HOLD", quantity_btc=0.0, notional_usd=0.0), outcomes, state,
                            False, reasons, min(1.0, score), drawdown)
    return RiskDecision(intent, outcomes, state, approved, reasons, min(1.0, score), drawdown)


def is_dust(btc: float, price: float, limits: RiskLimits) -> bool:
    """A position below the market's minimum quantity or notional cannot be sold: it is dust."""
    return btc < limits.min_order_btc or (price > 0 and btc * price < limits.min_order_usd)


def _flatten(wallet: PaperWallet, state: RiskState, outcomes: list[RuleOutcome], reasons: list[str],
             price: float, drawdown: float) -> RiskDecision:
    """With the drawdown kill switch engaged, the only order allowed sells the whole position.

    Blocking every order would leave an open position riding the market down after the limit
    was hit; closing it bounds the drawdown to the limit plus the move until the next fill. The
    operator's manual kill switch means "touch nothing" and never flattens. Only on a price that
    passed the market rules, and never for dust the market would refuse.
    """
    exit_all = Intent("SELL", wallet.btc, wallet.btc * price, price, 0.0)
    why = [f"flatten: selling the whole position ({wallet.btc:.8f} BTC) because the kill switch is engaged",
           *reasons]
    return RiskDecision(exit_all, outcomes, state, True, why, 1.0, drawdown)
