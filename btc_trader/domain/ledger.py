"""The live ledger: what the stack holds on the exchange, booked from the exchange's own fills.

Definition (README "Trading"): a live stack trades the whole exchange account, one symbol per
asset: the ledger of `BTC-USD` is the account's total (free + locked) base balance (BTC) and
quote balance (USDT on Binance). Assets already in the account when the ledger is first adopted
are part of the position, valued at the adoption price; no other asset is traded or counted
(fees paid in a third asset, e.g. BNB, are recorded with the trade but change neither balance).

Each fill is booked with its fees in their real currency: a fee in base reduces the BTC received,
a fee in quote the USDT. The ledger is compared with the exchange's balances; a difference is
"dust" when it is below what the market lets anyone trade (the base amount under the minimum
quantity or under the minimum notional at the price; a quote amount under the minimum notional),
and anything larger blocks new orders for the symbol until an operator adopts the exchange's side.

It also holds the protected-order rule: a limit IOC at the fresh best quote plus or minus
`maxSlippageBps`, sized so that the worst possible cost, fee included, stays within the approved
notional. Pure: balances, quotes and market rules are passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from btc_trader.domain.wallet import PaperWallet

Side = Literal["BUY", "SELL"]


@dataclass(frozen=True)
class Fee:
    """One fee as the exchange charged it."""

    amount: float
    currency: str


@dataclass(frozen=True)
class MarketRules:
    """The exchange's rules for one market (Binance: LOT_SIZE, PRICE_FILTER, NOTIONAL)."""

    base: str
    quote: str
    min_qty: float
    step: float
    tick: float
    min_notional: float


@dataclass(frozen=True)
class Quote:
    """The exchange's best bid and ask, fetched just before an order."""

    bid: float
    ask: float

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


class LedgerError(ValueError):
    """A fill or a balance the ledger cannot book; the message says why."""


@dataclass(frozen=True)
class BookedFill:
    side: Side
    quantity: float
    avg_price: float
    fee_value_quote: float  # every fee valued in the quote asset (a third-asset fee is not: see `other_fees`)
    other_fees: tuple[Fee, ...]
    realised_pnl: float
    shortfall: str | None  # the ledger could not hold this fill: the exchange and the ledger disagree


def book_fill(wallet: PaperWallet, side: Side, quantity: float, avg_price: float, fees: tuple[Fee, ...],
              rules: MarketRules) -> tuple[PaperWallet, BookedFill]:
    """Book an exchange fill with each fee in its own currency."""
    if not (quantity > 0 and avg_price > 0 and math.isfinite(quantity * avg_price)):
        raise LedgerError(f"a fill needs a positive quantity and price, got {quantity} at {avg_price}")
    base_fee = sum(f.amount for f in fees if f.currency == rules.base)
    quote_fee = sum(f.amount for f in fees if f.currency == rules.quote)
    others = tuple(f for f in fees if f.currency not in (rules.base, rules.quote) and f.amount)
    notional = quantity * avg_price
    if side == "BUY":
        btc_in, usd_out = quantity - base_fee, notional + quote_fee
        btc, usd = wallet.btc + btc_in, wallet.usd - usd_out
        avg_cost = (wallet.avg_cost * wallet.btc + usd_out) / btc if btc > 0 else 0.0
        pnl = 0.0
    else:
        btc_out, usd_in = quantity + base_fee, notional - quote_fee
        btc, usd = wallet.btc - btc_out, wallet.usd + usd_in
        avg_cost = wallet.avg_cost if btc > 0 else 0.0
        pnl = usd_in - wallet.avg_cost * btc_out
    shortfall = None
    if btc < -1e-12 or usd < -1e-9:
        shortfall = (f"the ledger cannot hold this {side} fill ({quantity:.8f} at {avg_price:.2f}): it would leave "
                     f"{btc:.8f} {rules.base} and {usd:.8f} {rules.quote}")
    fee_value = quote_fee + base_fee * avg_price
    booked = replace(wallet, btc=max(btc, 0.0), usd=max(usd, 0.0), avg_cost=avg_cost,
                     realised_pnl_usd=wallet.realised_pnl_usd + pnl, fees_paid_usd=wallet.fees_paid_usd + fee_value)
    return booked, BookedFill(side, quantity, avg_price, fee_value, others, pnl, shortfall)


def is_dust(asset: str, amount: float, rules: MarketRules, price: float) -> bool:
    """Below what the market lets anyone trade: too small to buy or sell, so not a difference."""
    amount = abs(amount)
    if asset == rules.base:
        return amount < rules.min_qty or amount * price < rules.min_notional
    return amount < rules.min_notional


@dataclass(frozen=True)
class BalanceDiff:
    asset: str
    ledger: float
    exchange: float

    @property
    def difference(self) -> float:
        return self.exchange - self.ledger


@dataclass(frozen=True)
class Reconciliation:
    """The ledger beside the exchange's balances, and whether they agree up to dust."""

    diffs: tuple[BalanceDiff, ...]
    beyond_dust: tuple[BalanceDiff, ...]

    @property
    def agrees(self) -> bool:
        return not self.beyond_dust

    def describe(self) -> str:
        """One line an operator can read: each asset's ledger and exchange amounts."""
        parts = [f"{d.asset} ledger {d.ledger:.8f} exchange {d.exchange:.8f} (diff {d.difference:+.8f})"
                 for d in self.diffs]
        return "; ".join(parts)


def reconcile(wallet: PaperWallet, balances: dict[str, float], rules: MarketRules, price: float) -> Reconciliation:
    """Compare the ledger with the exchange's total balances of the market's two assets."""
    diffs = (
        BalanceDiff(rules.base, wallet.btc, float(balances.get(rules.base, 0.0))),
        BalanceDiff(rules.quote, wallet.usd, float(balances.get(rules.quote, 0.0))),
    )
    beyond = tuple(d for d in diffs if not is_dust(d.asset, d.difference, rules, price))
    return Reconciliation(diffs, beyond)


def adopt(wallet: PaperWallet, balances: dict[str, float], rules: MarketRules, price: float) -> PaperWallet:
    """The ledger takes the exchange's balances; BTC it did not know of is valued at `price`."""
    btc = float(balances.get(rules.base, 0.0))
    usd = float(balances.get(rules.quote, 0.0))
    if btc <= 0:
        avg_cost = 0.0
    elif btc > wallet.btc:
        avg_cost = (wallet.avg_cost * wallet.btc + (btc - wallet.btc) * price) / btc
    else:
        avg_cost = wallet.avg_cost
    adopted = replace(wallet, btc=btc, usd=usd, avg_cost=avg_cost)
    return replace(adopted, peak_equity_usd=max(wallet.peak_equity_usd, adopted.equity(price))) \
        if wallet.peak_equity_usd else replace(adopted, peak_equity_usd=adopted.equity(price))


# --- protected orders -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtectedOrder:
    side: Side
    quantity: float
    limit_price: float
    worst_cost: float  # BUY: quantity x limit x (1 + fee); SELL: the least it can bring, fee deducted


def _floor(value: float, step: float) -> float:
    return math.floor(value / step + 1e-9) * step


def _ceil(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


def protect(side: Side, quantity: float, notional_budget: float, quote: Quote, reference_price: float,
            wallet: PaperWallet, rules: MarketRules, max_slippage_bps: float, fee_bps: float,
            max_divergence_bps: float) -> ProtectedOrder | str:
    """The limit IOC to send, or the reason none may be sent."""
    if not (quote.bid > 0 and quote.ask >= quote.bid):
        return f"quote: the exchange's book is unusable (bid {quote.bid}, ask {quote.ask})"
    divergence = abs(quote.mid / reference_price - 1) * 10_000
    if divergence > max_divergence_bps:
        return (f"divergence: the exchange quotes {quote.mid:.2f}, {divergence:.0f} bps from the stored price "
                f"{reference_price:.2f} (limit maxSourceDivergenceBps {max_divergence_bps:g})")
    slip, fee = max_slippage_bps / 10_000, fee_bps / 10_000
    if side == "BUY":
        limit = _floor(quote.ask * (1 + slip), rules.tick)
        affordable = min(notional_budget, wallet.usd) / (limit * (1 + fee))
        size = _floor(min(quantity, affordable), rules.step)
        worst = size * limit * (1 + fee)
    else:
        limit = _ceil(quote.bid * (1 - slip), rules.tick)
        size = _floor(min(quantity, wallet.btc), rules.step)
        worst = size * limit * (1 - fee)
    size = round(size, 12)
    if size < rules.min_qty or size * limit < rules.min_notional:
        return (f"size: {size:.8f} {rules.base} at the limit {limit:.2f} is below the market minimums "
                f"({rules.min_qty:g} {rules.base}, {rules.min_notional:g} {rules.quote})")
    return ProtectedOrder(side, size, round(limit, 10), worst)
