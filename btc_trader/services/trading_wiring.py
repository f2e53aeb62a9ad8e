"""Turning a function's TradingConfig into the domain's parameters (shared by both handlers)."""

from __future__ import annotations

from btc_trader.domain.risk import RiskLimits
from btc_trader.runtime_config import TradingConfig
from btc_trader.services.trading import TradingParams


def trading_params(config: TradingConfig) -> TradingParams:
    """The risk limits and execution parameters of a stack."""
    return TradingParams(
        limits=RiskLimits(
            max_trade_usd=config.max_trade_usd,
            risk_threshold=config.risk_threshold,
            buy_threshold_pct=config.buy_threshold_pct,
            sell_threshold_pct=config.sell_threshold_pct,
            fee_bps=config.fee_bps,
            max_position_pct=config.max_position_pct,
            daily_loss_limit_pct=config.daily_loss_limit_pct,
            max_drawdown_pct=config.max_drawdown_pct,
            cooldown_minutes=config.cooldown_minutes,
            max_trades_per_day=config.max_trades_per_day,
            max_price_age_s=config.max_price_age_seconds,
            max_divergence_bps=config.max_divergence_bps,
        ),
        starting_cash=config.starting_cash,
        slippage_bps=config.slippage_bps,
        mode=config.mode,
        symbols=config.symbols,
        lease_seconds=config.lease_seconds,
    )
