"""Turning a function's TradingConfig into the domain's parameters and the execution service
(shared by the trading handlers and the order reconciler)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from btc_trader.adapters.dynamodb_trading import DynamoDBTradingStore
from btc_trader.domain.risk import RiskLimits
from btc_trader.runtime_config import TradingConfig
from btc_trader.services.trading import ExecutionService, TradingParams


def execution_service(config: TradingConfig, read_keys: Callable[[str], dict[str, Any]]) -> ExecutionService:
    """Paper, or live through ccxt with the exchange keys `read_keys(secret_name)` returns (the
    handler reads them through Powertools Parameters, cached)."""
    live = None
    if config.mode == "live":
        # Imported only for live stacks: ccxt is the largest import of the bundle's cold start.
        from btc_trader.adapters.exchange.ccxt_executor import CcxtExecutor

        keys = read_keys(config.exchange_secret_name)
        live = CcxtExecutor(config.exchange_id, keys["apiKey"], keys["secret"], config.exchange_sandbox)
    store = DynamoDBTradingStore(config.trades_table, config.state_table)
    return ExecutionService(store, trading_params(config), live)


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
        max_slippage_bps=config.max_slippage_bps,
        symbols=config.symbols,
        lease_seconds=config.lease_seconds,
    )
