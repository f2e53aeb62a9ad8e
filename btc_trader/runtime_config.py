"""What each function reads from its environment: the contract between infra and handlers.

The Pulumi components and the local emulator both build a function's environment with
`to_env()`; the handler reads it back with `from_env()`. Field `foo_bar` travels as
`BTC_TRADER_FOO_BAR`; tuples travel as JSON. Only handlers (the `functions/` layer) call
`from_env`: the domain never reads the environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from btc_trader.domain.prediction.edge import EdgeParams

ENV_PREFIX = "BTC_TRADER_"


class RuntimeConfigError(RuntimeError):
    """A function's environment is missing or has a bad variable."""


class _EnvModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_env(self) -> dict[str, str]:
        """The environment variables that carry this config."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, (list, tuple, dict)):
                text = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            env[f"{ENV_PREFIX}{name.upper()}"] = text
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Read and validate this config from an environment mapping."""
        raw: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            key = f"{ENV_PREFIX}{name.upper()}"
            if key not in environ:
                continue
            text = environ[key]
            annotation = str(field.annotation)
            raw[name] = json.loads(text) if ("tuple" in annotation or "dict" in annotation) else text
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise RuntimeConfigError(f"{cls.__name__} environment is invalid: {problems}") from None


class CollectorConfig(_EnvModel):
    """Environment of the price collector."""

    stack: str
    prices_table: str
    raw_bucket: str
    raw_prefix: str = "raw/prices/"
    timestream_database: str | None = None
    timestream_table: str | None = None
    symbols: tuple[str, ...] = Field(min_length=1)
    price_sources: tuple[str, ...] = Field(min_length=1)
    min_sources: int = Field(ge=1)
    max_source_divergence_bps: float = Field(gt=0)
    max_source_staleness_seconds: int = Field(ge=1)
    http_timeout_seconds: float = Field(gt=0)
    http_retries: int = Field(ge=0)
    price_ttl_days: int = Field(ge=1)
    collection_interval_minutes: int = Field(ge=1)

    @property
    def timestream_enabled(self) -> bool:
        return bool(self.timestream_database and self.timestream_table)


class PredictorConfig(_EnvModel):
    """Environment of the ml_predictor and prediction_evaluator functions."""

    stack: str
    symbols: tuple[str, ...] = Field(min_length=1)
    prices_table: str
    predictions_table: str
    scores_table: str
    ml_models: tuple[str, ...] = Field(min_length=1)
    model_weights: dict[str, float]
    horizon_minutes: int = Field(ge=1)
    bar_minutes: int = Field(ge=1)
    bedrock_model_id: str | None = None
    bedrock_max_tokens: int = Field(400, ge=1)
    bedrock_timeout_seconds: float = Field(20, gt=0)
    sagemaker_endpoint: str | None = None
    sagemaker_timeout_seconds: float = Field(20, gt=0)
    # Calls after which a model's weight is what its net edge supports (see domain.prediction.edge).
    min_skill_samples: int = Field(300, ge=1)
    skill_window: int = Field(1000, ge=1)  # calls
    skill_t_required: float = Field(2.0, gt=0)
    prediction_ttl_days: int = Field(90, ge=1)
    # What a call is and what acting on it costs: the risk manager's thresholds and the fills' costs.
    buy_threshold_pct: float = Field(0.5, gt=0)
    sell_threshold_pct: float = Field(-0.5, lt=0)
    fee_bps: float = Field(10, ge=0)
    slippage_bps: float = Field(5, ge=0)
    trading_interval_minutes: int = Field(15, ge=1)

    def edge_params(self) -> EdgeParams:
        """The decision-quality rule's parameters (calls, costs, overlap, evidence)."""
        # Imported here: the edge maths needs numpy, which the price collector's bundle leaves out.
        from btc_trader.domain.prediction.edge import EdgeParams

        return EdgeParams(
            buy_threshold_pct=self.buy_threshold_pct, sell_threshold_pct=self.sell_threshold_pct,
            cost_bps=self.fee_bps + self.slippage_bps,
            overlap=max(1, round(self.horizon_minutes / self.trading_interval_minutes)),
            t_required=self.skill_t_required, full_evidence_calls=self.min_skill_samples, window=self.skill_window,
        )


class TradingConfig(_EnvModel):
    """Environment of the risk_manager and trade_executor functions."""

    stack: str
    trades_table: str
    state_table: str
    idempotency_table: str
    kill_switch_parameter: str
    mode: str = Field(pattern="^(paper|live)$")
    max_trade_usd: float = Field(gt=0)
    risk_threshold: float = Field(ge=0, le=1)
    buy_threshold_pct: float
    sell_threshold_pct: float
    fee_bps: float = Field(ge=0)
    slippage_bps: float = Field(ge=0)
    starting_cash: float = Field(gt=0)
    max_position_pct: float = Field(gt=0)
    daily_loss_limit_pct: float = Field(gt=0)
    max_drawdown_pct: float = Field(gt=0)
    cooldown_minutes: int = Field(ge=0)
    max_trades_per_day: int = Field(ge=1)
    max_price_age_seconds: int = Field(ge=1)
    max_divergence_bps: float = Field(gt=0)
    exchange_id: str
    exchange_sandbox: bool
    exchange_secret_name: str | None = None
    # What the risk manager checks its event against, and the per-symbol lease's expiry.
    prices_table: str
    symbols: tuple[str, ...] = Field(min_length=1)
    lease_seconds: int = Field(ge=1)
