"""The paper wallet and the one fill convention shared by paper trading and backtests.

Convention: an order decided on a reference price fills at that price moved against us by the
slippage (buy higher, sell lower); the fee is `fee_bps` of the filled notional, paid in USD.
The wallet never goes negative, never sells BTC it does not hold, and never buys more than it
can pay for including the fee: an order that does not fit is shrunk to what fits, and one that
cannot fill at all is refused with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

Side = Literal["BUY", "SELL"]
DUST_BTC = 1e-8  # one satoshi: smaller positions or orders are nothing


class WalletError(ValueError):
    """The order cannot fill at all; the message says why."""


@dataclass(frozen=True)
class Fill:
    side: Side
    quantity_btc: float
    price: float  # after slippage
    notional_usd: float
    fee_usd: float
    realised_pnl_usd: float  # SELL only: (price - average cost) x quantity - fee
    shrunk: bool  # the requested quantity did not fit


@dataclass(frozen=True)
class PaperWallet:
    usd: float
    btc: float = 0.0
    avg_cost: float = 0.0  # USD per BTC of the position, fees included
    realised_pnl_usd: float = 0.0
    fees_paid_usd: float = 0.0
    peak_equity_usd: float = 0.0

    @classmethod
    def start(cls, cash: float) -> PaperWallet:
        if not (math.isfinite(cash) and cash > 0):
            raise WalletError(f"starting cash must be positive, got {cash}")
        return cls(usd=cash, peak_equity_usd=cash)

    def equity(self, price: float) -> float:
        """Cash plus the position marked to `price`."""
        return self.usd + self.btc * price

    def drawdown_pct(self, price: float) -> float:
        """How far equity is below its peak, in %."""
        peak = max(self.peak_equity_usd, self.equity(price))
        return 0.0 if peak <= 0 else (1 - self.equity(price) / peak) * 100

    def mark(self, price: float) -> PaperWallet:
        """Record a new equity peak if `price` makes one."""
        return replace(self, peak_equity_usd=max(self.peak_equity_usd, self.equity(price)))

    def fill(self, side: Side, quantity_btc: float, reference_price: float, fee_bps: float,
             slippage_bps: float) -> tuple[PaperWallet, Fill]:
        """Execute a market order against the wallet."""
        if not (math.isfinite(reference_price) and reference_price > 0):
            raise WalletError(f"reference price must be positive, got {reference_price}")
        if not (math.isfinite(quantity_btc) and quantity_btc > 0):
            raise WalletError(f"quantity must be positive, got {quantity_btc}")
        fee_rate = fee_bps / 10_000
        slip = slippage_bps / 10_000
        if side == "BUY":
            price = reference_price * (1 + slip)
            quantity = min(quantity_btc, self.usd / (price * (1 + fee_rate)))
            if quantity < DUST_BTC:
                raise WalletError(f"cannot buy: {self.usd:.2f} USD does not pay for any BTC at {price:.2f}")
        else:
            price = reference_price * (1 - slip)
            quantity = min(quantity_btc, self.btc)
            if quantity < DUST_BTC:
                raise WalletError(f"cannot sell: the wallet holds {self.btc:.8f} BTC")
        wallet, fill = self.apply_fill(side, quantity, price, quantity * price * fee_rate)
        shrunk = quantity < quantity_btc
        return wallet.mark(reference_price), Fill(side, fill.quantity_btc, fill.price, fill.notional_usd,
                                                  fill.fee_usd, fill.realised_pnl_usd, shrunk)

    def apply_fill(self, side: Side, quantity: float, price: float, fee_usd: float) -> tuple[PaperWallet, Fill]:
        """Book an executed fill (ours or the exchange's); refuses one the wallet cannot hold."""
        notional = quantity * price
        if side == "BUY":
            if notional + fee_usd > self.usd * (1 + 1e-9):
                raise WalletError(f"a buy of {notional + fee_usd:.2f} USD exceeds the {self.usd:.2f} USD held")
            btc = self.btc + quantity
            wallet = replace(
                self, usd=max(0.0, self.usd - notional - fee_usd), btc=btc,
                avg_cost=(self.avg_cost * self.btc + notional + fee_usd) / btc,
                fees_paid_usd=self.fees_paid_usd + fee_usd,
            )
            return wallet, Fill(side, quantity, price, notional, fee_usd, 0.0, False)
        if quantity > self.btc * (1 + 1e-9):
            raise WalletError(f"a sell of {quantity:.8f} BTC exceeds the {self.btc:.8f} BTC held")
        quantity = min(quantity, self.btc)
        pnl = (price - self.avg_cost) * quantity - fee_usd
        btc = self.btc - quantity
        if btc < DUST_BTC:
            btc = 0.0
        wallet = replace(
            self, usd=self.usd + notional - fee_usd, btc=btc, avg_cost=self.avg_cost if btc else 0.0,
            realised_pnl_usd=self.realised_pnl_usd + pnl, fees_paid_usd=self.fees_paid_usd + fee_usd,
        )
        return wallet, Fill(side, quantity, price, notional, fee_usd, pnl, False)
