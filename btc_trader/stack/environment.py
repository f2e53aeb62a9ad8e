"""Each function's environment, built from settings and names (no Pulumi, no AWS calls).

The Pulumi components and the local emulator call the same builders, so a handler sees the same
variables on a laptop as in Lambda; tests/infra prove it against what the Pulumi mocks capture.
"""

from __future__ import annotations

from btc_trader.runtime_config import CollectorConfig, PredictorConfig, TradingConfig
from btc_trader.stack.naming import (  # noqa: F401  (re-exported: the roles' historical home)
    FUNCTION_ROLES,
    ML_PREDICTOR,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
    TRADE_EXECUTOR,
    ResourceNames,
)
from btc_trader.stack.settings import StackSettings
from btc_trader.storage_schema import (
    IDEMPOTENCY,
    PREDICTION_SCORES,
    PREDICTIONS,
    PRICES,
    TRADES,
    TRADING_STATE,
)


def powertools_environment(service: str, names: ResourceNames, log_level: str = "INFO") -> dict[str, str]:
    """Powertools variables every handler gets."""
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": names.metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": log_level,
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    }


def collector_config(settings: StackSettings, names: ResourceNames) -> CollectorConfig:
    timestream = settings.timestream.enabled
    return CollectorConfig(
        stack=names.stack,
        prices_table=names.table(PRICES.role),
        raw_bucket=names.raw_bucket,
        timestream_database=names.timestream_database if timestream else None,
        timestream_table=names.timestream_table if timestream else None,
        symbols=settings.symbols,
        price_sources=settings.price_sources,
        min_sources=settings.min_sources,
        max_source_divergence_bps=settings.max_source_divergence_bps,
        max_source_staleness_seconds=settings.max_source_staleness_seconds,
        http_timeout_seconds=settings.http_timeout_seconds,
        http_retries=settings.http_retries,
        price_ttl_days=settings.price_retention_days,
        collection_interval_minutes=settings.price_collection_interval,
    )


def collector_environment(settings: StackSettings, names: ResourceNames) -> dict[str, str]:
    """The price collector's complete environment."""
    return {
        **powertools_environment(PRICE_COLLECTOR, names),
        **collector_config(settings, names).to_env(),
    }


def predictor_config(settings: StackSettings, names: ResourceNames) -> PredictorConfig:
    models = settings.ml_models
    return PredictorConfig(
        stack=names.stack,
        symbols=settings.symbols,
        prices_table=names.table(PRICES.role),
        predictions_table=names.table(PREDICTIONS.role),
        scores_table=names.table(PREDICTION_SCORES.role),
        ml_models=models,
        model_weights={m: settings.model_weights.get(m, 1.0) for m in models},
        horizon_minutes=settings.prediction_horizon_minutes,
        bar_minutes=settings.price_collection_interval,
        bedrock_model_id=settings.bedrock.model_id if "bedrock" in models else None,
        bedrock_max_tokens=settings.bedrock.max_tokens,
        bedrock_timeout_seconds=settings.bedrock.timeout_seconds,
        sagemaker_endpoint=settings.huggingface.endpoint_name if "huggingface" in models else None,
        sagemaker_timeout_seconds=settings.huggingface.timeout_seconds,
        prediction_ttl_days=settings.price_retention_days,
        buy_threshold_pct=settings.buy_threshold_pct,
        sell_threshold_pct=settings.sell_threshold_pct,
        fee_bps=settings.fee_bps,
        slippage_bps=settings.slippage_bps,
        trading_interval_minutes=settings.trading_interval,
    )


def predictor_environment(settings: StackSettings, names: ResourceNames, role: str) -> dict[str, str]:
    """The ml_predictor's or the prediction_evaluator's environment (they share a config)."""
    return {**powertools_environment(role, names), **predictor_config(settings, names).to_env()}


def kill_switch_parameter(names: ResourceNames) -> str:
    """The SSM parameter an operator sets to "on" to stop all trading without a deploy."""
    return f"{names.parameter_path}/kill-switch"


def trading_config(settings: StackSettings, names: ResourceNames) -> TradingConfig:
    live = settings.enable_real_trading
    return TradingConfig(
        stack=names.stack,
        trades_table=names.table(TRADES.role),
        state_table=names.table(TRADING_STATE.role),
        idempotency_table=names.table(IDEMPOTENCY.role),
        kill_switch_parameter=kill_switch_parameter(names),
        mode="live" if live else "paper",
        max_trade_usd=settings.max_trade_amount,
        risk_threshold=settings.risk_threshold,
        buy_threshold_pct=settings.buy_threshold_pct,
        sell_threshold_pct=settings.sell_threshold_pct,
        fee_bps=settings.fee_bps,
        slippage_bps=settings.slippage_bps,
        starting_cash=settings.paper_starting_cash,
        max_position_pct=settings.max_position_pct,
        daily_loss_limit_pct=settings.daily_loss_limit_pct,
        max_drawdown_pct=settings.max_drawdown_pct,
        cooldown_minutes=settings.cooldown_minutes,
        max_trades_per_day=settings.max_trades_per_day,
        max_price_age_seconds=settings.max_price_age_seconds,
        max_divergence_bps=settings.max_source_divergence_bps,
        exchange_id=settings.exchange.id,
        exchange_sandbox=settings.exchange.sandbox,
        exchange_secret_name=settings.exchange.secret_name if live else None,
        prices_table=names.table(PRICES.role),
        symbols=settings.symbols,
        lease_seconds=settings.lease_seconds,
    )


def trading_environment(settings: StackSettings, names: ResourceNames, role: str) -> dict[str, str]:
    return {**powertools_environment(role, names), **trading_config(settings, names).to_env()}


def function_environments(settings: StackSettings, names: ResourceNames) -> dict[str, dict[str, str]]:
    """Every function of the stack and its environment (the emulator's source of truth)."""
    return {
        PRICE_COLLECTOR: collector_environment(settings, names),
        ML_PREDICTOR: predictor_environment(settings, names, ML_PREDICTOR),
        PREDICTION_EVALUATOR: predictor_environment(settings, names, PREDICTION_EVALUATOR),
        RISK_MANAGER: trading_environment(settings, names, RISK_MANAGER),
        TRADE_EXECUTOR: trading_environment(settings, names, TRADE_EXECUTOR),
    }
