"""The one place stack configuration is read and validated.

Stack config lives in ``Pulumi.<stack>.yaml`` under the ``btc-trader:`` namespace. It is read once,
validated in two steps (shape, then cross-field rules) and turned into an immutable
``StackSettings``. Every error names the stack key, the bad value and what is allowed, e.g.
``btc-trader:riskThreshold must be between 0 and 1, got 1.7``.

Two loaders share the same model: ``settings_from_pulumi_config()`` takes the config a Pulumi
program was given (``components/stack_config.py`` reads it), ``load_stack_file()`` reads the YAML
directly for the local runner and the CLI, so the local emulator and the deployed stack can never
disagree about what a stack means. Plain Python: no Pulumi import here.
"""

from __future__ import annotations

import configparser
import difflib
import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from btc_trader.stack.project import ProjectNotFoundError, find_project_root

NAMESPACE = "btc-trader"

PriceSource = Literal["coingecko", "binance", "binanceus", "coinbase", "kraken"]
ModelName = Literal["bedrock", "huggingface", "custom"]

# Bedrock's original model (anthropic.claude-3-sonnet-20240229-v1:0) is legacy and closed to new
# customers; a current Anthropic model through its cross-region inference profile is the default.
DEFAULT_BEDROCK_MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
# Weights are relative; a bound keeps their sum finite.
MAX_MODEL_WEIGHT = 1000.0


# Where a stack's region came from, in Pulumi's order: the stack's `aws:region`, then the AWS SDK's
# environment and shared config (as the pulumi-aws provider resolves it).
REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
DEFAULT_REGION = "us-east-1"
# EventBridge accepts at most 5 targets per rule; the trading schedule has one target per symbol.
MAX_SYMBOLS = 5
# Exchanges (ccxt ids) known to refuse orders from a stack's region, with what to use instead.
# binance.com answers US addresses with HTTP 451 "restricted location"; as a price *source* that
# 451 is reported per source and the other venues carry the price, but it cannot be the live venue.
RESTRICTED_LIVE_EXCHANGES: dict[str, tuple[tuple[str, ...], str]] = {
    "binance": (("us-",), "binance.com refuses US addresses (HTTP 451); use `binanceus`, `coinbase` or `kraken`"),
}
# Bedrock cross-region inference profiles serve only their own geography.
INFERENCE_PROFILE_GEOGRAPHIES: dict[str, tuple[str, ...]] = {
    "us": ("us-", "ca-"),
    "eu": ("eu-",),
    "apac": ("ap-",),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
}


@dataclass(frozen=True)
class StackRegion:
    """A stack's AWS region and where it was read, so messages can say which source won."""

    name: str
    source: str

    def __str__(self) -> str:
        return f"{self.name} (from {self.source})"


def resolve_region(stack_config: Mapping[str, Any], stack: str,
                   environ: Mapping[str, str] | None = None) -> StackRegion:
    """The region `pulumi up` would deploy to: `aws:region`, AWS_REGION, AWS_DEFAULT_REGION, the
    shared config file's profile; the local default when none is set."""
    environ = os.environ if environ is None else environ
    if stack_config.get("aws:region"):
        return StackRegion(str(stack_config["aws:region"]), f"Pulumi.{stack}.yaml aws:region")
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(variable):
            return StackRegion(environ[variable], f"the {variable} environment variable")
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    config_file = Path(environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config").expanduser()
    if config_file.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(config_file)
        except configparser.Error:
            parser = configparser.ConfigParser()
        section = profile if profile == "default" else f"profile {profile}"
        if parser.has_option(section, "region"):
            return StackRegion(parser.get(section, "region"), f"[{section}] in {config_file}")
    return StackRegion(DEFAULT_REGION, f"the default: no aws:region in Pulumi.{stack}.yaml, no AWS_REGION, "
                                       "AWS_DEFAULT_REGION or profile region")


class SettingsError(ValueError):
    """Stack configuration is invalid; the message names every offending key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TimestreamSettings(_Section):
    """Opt-in sink: Timestream for LiveAnalytics takes no new customers since 2025-06-20."""

    enabled: bool = False
    memory_retention_hours: int = Field(24, alias="memoryRetentionHours", ge=1, le=8766)
    magnetic_retention_days: int = Field(365, alias="magneticRetentionDays", ge=1, le=73000)


class ExchangeSettings(_Section):
    """The exchange used for live orders (through ccxt)."""

    id: str = Field("binance", min_length=1, pattern=r"^[a-z0-9]+$")
    sandbox: bool = True
    # Name of the Secrets Manager secret holding {"apiKey": ..., "secret": ...}; never the keys.
    secret_name: str | None = Field(None, alias="secretName", min_length=1)


class BedrockSettings(_Section):
    model_id: str = Field(DEFAULT_BEDROCK_MODEL_ID, alias="modelId", min_length=1)
    max_tokens: int = Field(400, alias="maxTokens", ge=50, le=4000)
    timeout_seconds: float = Field(20, alias="timeoutSeconds", gt=0, le=120)


class HuggingFaceSettings(_Section):
    endpoint_name: str = Field(
        "btc-trader-chronos-bolt", alias="endpointName", min_length=1, max_length=63,
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$",
    )
    deploy_endpoint: bool = Field(False, alias="deployEndpoint")
    model_id: str = Field("amazon/chronos-bolt-small", alias="modelId", min_length=1)
    timeout_seconds: float = Field(20, alias="timeoutSeconds", gt=0, le=120)


class LambdaSettings(_Section):
    memory_mb: int = Field(256, alias="memoryMb", ge=128, le=10240)
    timeout_seconds: int = Field(60, alias="timeoutSeconds", ge=3, le=900)
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    python_runtime: Literal["python3.12", "python3.13"] = Field("python3.12", alias="pythonRuntime")


# Services a function can reach through an interface endpoint instead of the NAT gateway.
# Timestream is not offered: its ingest endpoints are per cell (`timestream.ingest-<cell>`, found
# with DescribeEndpoints), so no fixed name would reach it; it goes through the NAT.
InterfaceEndpoint = Literal[
    "sns", "ssm", "secretsmanager", "states", "bedrock-runtime", "sagemaker.runtime", "logs", "monitoring",
    "xray",
]


class NetworkSettings(_Section):
    """Optional VPC: the functions run in private subnets, egress through NAT (the exchanges and
    price venues are on the internet), S3 and DynamoDB through free gateway endpoints."""

    vpc: bool = False
    cidr: str = "10.20.0.0/16"
    azs: int = Field(2, ge=2, le=6)
    # One NAT gateway is the cheap choice; one per AZ survives the loss of an AZ.
    nat_gateways: int = Field(1, alias="natGateways", ge=1, le=6)
    interface_endpoints: tuple[InterfaceEndpoint, ...] = Field((), alias="interfaceEndpoints")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError:
            raise ValueError("must be an IPv4 network such as 10.20.0.0/16 (host bits zero)") from None
        if not network.is_private or not 16 <= network.prefixlen <= 24:
            raise ValueError("must be a private IPv4 network from /16 to /24, e.g. 10.20.0.0/16")
        return value


class MonitoringSettings(_Section):
    """Alarm thresholds; every alarm notifies the alerts topic when it fires and when it clears."""

    lambda_error_rate_percent: float = Field(5, alias="lambdaErrorRatePercent", gt=0, le=100)
    # Alarm periods of the error-rate alarm; a single failed run of a 5-minute job is 100 %.
    lambda_error_periods: int = Field(3, alias="lambdaErrorPeriods", ge=1, le=24)
    missed_collections: int = Field(3, alias="missedCollections", ge=1, le=100)
    workflow_failures: int = Field(1, alias="workflowFailures", ge=1, le=1000)
    drawdown_alarm_pct_of_limit: float = Field(80, alias="drawdownAlarmPctOfLimit", gt=0, lt=100)
    min_model_skill: float = Field(0.0, alias="minModelSkill", ge=-10, le=1)
    model_skill_hours: int = Field(6, alias="modelSkillHours", ge=1, le=24)


class StackSettings(_Section):
    """Every key of a stack, with safe defaults. Aliases are the stack keys users edit."""

    # --- the seed's keys: names and dev/prod values unchanged -------------------------------
    price_collection_interval: int = Field(5, alias="priceCollectionInterval", ge=1, le=1440)
    max_trade_amount: float = Field(100, alias="maxTradeAmount", gt=0, le=1_000_000)
    enable_real_trading: bool = Field(False, alias="enableRealTrading")
    ml_models: tuple[ModelName, ...] = Field(("bedrock",), alias="mlModels", min_length=1)
    risk_threshold: float = Field(0.7, alias="riskThreshold", ge=0, le=1)

    # --- market data -----------------------------------------------------------------------
    symbols: tuple[str, ...] = Field(("BTC-USD",), min_length=1)
    price_sources: tuple[PriceSource, ...] = Field(
        ("coingecko", "binance", "coinbase", "kraken"), alias="priceSources", min_length=1
    )
    min_sources: int = Field(2, alias="minSources", ge=1, le=10)
    max_source_divergence_bps: float = Field(150, alias="maxSourceDivergenceBps", gt=0, le=10_000)
    max_source_staleness_seconds: int = Field(
        300, alias="maxSourceStalenessSeconds", ge=10, le=86_400
    )
    http_timeout_seconds: float = Field(5, alias="httpTimeoutSeconds", gt=0, le=30)
    http_retries: int = Field(2, alias="httpRetries", ge=0, le=5)

    # --- trading ---------------------------------------------------------------------------
    trading_interval: int = Field(15, alias="tradingInterval", ge=1, le=1440)
    prediction_horizon_minutes: int = Field(60, alias="predictionHorizonMinutes", ge=1, le=10_080)
    buy_threshold_pct: float = Field(0.5, alias="buyThresholdPct", gt=0, le=50)
    sell_threshold_pct: float = Field(-0.5, alias="sellThresholdPct", ge=-50, lt=0)
    fee_bps: float = Field(10, alias="feeBps", ge=0, le=500)
    slippage_bps: float = Field(5, alias="slippageBps", ge=0, le=500)
    max_slippage_bps: float = Field(30, alias="maxSlippageBps", gt=0, le=500)
    paper_starting_cash: float = Field(10_000, alias="paperStartingCash", gt=0, le=100_000_000)
    max_position_pct: float = Field(50, alias="maxPositionPct", gt=0, le=100)
    daily_loss_limit_pct: float = Field(3, alias="dailyLossLimitPct", gt=0, le=100)
    max_drawdown_pct: float = Field(10, alias="maxDrawdownPct", gt=0, le=100)
    cooldown_minutes: int = Field(60, alias="cooldownMinutes", ge=0, le=10_080)
    max_trades_per_day: int = Field(10, alias="maxTradesPerDay", ge=1, le=1_000)
    max_price_age_seconds: int = Field(600, alias="maxPriceAgeSeconds", ge=10, le=86_400)
    # Opt-in: the per-symbol lease serialises trades; reserved concurrency needs spare account
    # concurrency, which a new account does not have.
    executor_reserved_concurrency: int | None = Field(None, alias="executorReservedConcurrency", ge=1, le=1000)
    model_weights: dict[ModelName, float] = Field(
        {"bedrock": 1.0, "huggingface": 1.0, "custom": 1.0}, alias="modelWeights"
    )

    # --- integrations ----------------------------------------------------------------------
    exchange: ExchangeSettings = ExchangeSettings()
    bedrock: BedrockSettings = BedrockSettings()
    huggingface: HuggingFaceSettings = HuggingFaceSettings()
    timestream: TimestreamSettings = TimestreamSettings()
    alert_email: str | None = Field(
        None, alias="alertEmail", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )

    # --- operations ------------------------------------------------------------------------
    log_retention_days: Literal[
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653
    ] = Field(14, alias="logRetentionDays")
    price_retention_days: int = Field(90, alias="priceRetentionDays", ge=1, le=3650)
    raw_expire_after_days: int = Field(90, alias="rawExpireAfterDays", ge=2, le=3650)
    lambda_settings: LambdaSettings = Field(LambdaSettings(), alias="lambda")
    network: NetworkSettings = NetworkSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @field_validator("model_weights")
    @classmethod
    def _finite_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        bad = {m: w for m, w in weights.items() if not (math.isfinite(w) and 0 <= w <= MAX_MODEL_WEIGHT)}
        if bad:
            raise ValueError(f"weights must be finite numbers from 0 to {MAX_MODEL_WEIGHT:g}, bad: {bad}")
        return weights

    @model_validator(mode="after")
    def _some_enabled_model_has_weight(self) -> StackSettings:
        # A missing model's weight is 1 (the ensemble's default); all zero would trust no model.
        if all(self.model_weights.get(m, 1.0) == 0 for m in self.ml_models):
            raise SettingsError([
                f"{NAMESPACE}:modelWeights gives every enabled model ({', '.join(self.ml_models)}) weight 0: "
                "the ensemble could never trust a forecast; give at least one a positive weight"
            ])
        return self

    @model_validator(mode="after")
    def _known_exchange_for_real_trading(self) -> StackSettings:
        if self.enable_real_trading:
            problem = unknown_exchange_problem(self.exchange.id)
            if problem:
                raise SettingsError([problem])
        return self

    # --- step two: cross-field rules ---------------------------------------------------------
    @model_validator(mode="after")
    def _cross_field_rules(self) -> StackSettings:
        problems: list[str] = []
        if self.min_sources > len(self.price_sources):
            problems.append(
                f"{NAMESPACE}:minSources must be at most the number of priceSources "
                f"({len(self.price_sources)}), got {self.min_sources}"
            )
        if len(set(self.price_sources)) != len(self.price_sources):
            problems.append(f"{NAMESPACE}:priceSources must not repeat a source, got {list(self.price_sources)}")
        if len(set(self.ml_models)) != len(self.ml_models):
            problems.append(f"{NAMESPACE}:mlModels must not repeat a model, got {list(self.ml_models)}")
        for symbol in self.symbols:
            if not _is_symbol(symbol):
                problems.append(
                    f"{NAMESPACE}:symbols entries must look like BASE-QUOTE (e.g. BTC-USD), got {symbol!r}"
                )
        if self.max_price_age_seconds < self.price_collection_interval * 60:
            problems.append(
                f"{NAMESPACE}:maxPriceAgeSeconds must be at least priceCollectionInterval in seconds "
                f"({self.price_collection_interval * 60}), got {self.max_price_age_seconds}: "
                "every decision would be rejected as stale"
            )
        if self.trading_interval < self.price_collection_interval:
            problems.append(
                f"{NAMESPACE}:tradingInterval must be at least priceCollectionInterval "
                f"({self.price_collection_interval}), got {self.trading_interval}"
            )
        if self.enable_real_trading and not self.exchange.secret_name:
            problems.append(
                f"{NAMESPACE}:enableRealTrading is true but {NAMESPACE}:exchange.secretName is not set: "
                "real trading needs both (create the secret in Secrets Manager, then "
                f"`pulumi config set --path {NAMESPACE}:exchange.secretName <name>`)"
            )
        if self.huggingface.deploy_endpoint and "huggingface" not in self.ml_models:
            problems.append(
                f"{NAMESPACE}:huggingface.deployEndpoint is true but 'huggingface' is not in "
                f"{NAMESPACE}:mlModels {list(self.ml_models)}: the endpoint would cost money unused"
            )
        steps = self.prediction_horizon_minutes / self.price_collection_interval
        if "huggingface" in self.ml_models and steps > 64:
            problems.append(
                f"{NAMESPACE}:predictionHorizonMinutes must be at most 64 bars of priceCollectionInterval "
                f"for Chronos-Bolt ({64 * self.price_collection_interval}), got {self.prediction_horizon_minutes}"
            )
        unknown_weights = set(self.model_weights) - set(ModelName.__args__)
        if unknown_weights:
            problems.append(f"{NAMESPACE}:modelWeights has unknown models {sorted(unknown_weights)}")
        if any(w < 0 for w in self.model_weights.values()):
            problems.append(f"{NAMESPACE}:modelWeights must be >= 0, got {dict(self.model_weights)}")
        problems += self._network_problems()
        problems += self._live_ledger_problems()
        # CloudWatch evaluates an alarm over at most one day.
        if self.monitoring.missed_collections * self.price_collection_interval > 1440:
            problems.append(
                f"{NAMESPACE}:monitoring.missedCollections times priceCollectionInterval must be at most "
                f"1440 minutes (CloudWatch alarms look back one day at most), got "
                f"{self.monitoring.missed_collections} x {self.price_collection_interval}"
            )
        if problems:
            raise SettingsError(problems)
        return self

    def _live_ledger_problems(self) -> list[str]:
        """A live ledger is the account's whole balance of its symbol's two assets (README
        "Trading"), so two live symbols may not share an asset."""
        if not self.enable_real_trading:
            return []
        seen: dict[str, str] = {}
        problems = []
        for symbol in self.symbols:
            for asset in symbol.split("-"):
                if asset in seen and seen[asset] != symbol:
                    problems.append(
                        f"{NAMESPACE}:symbols {seen[asset]} and {symbol} share {asset}: a live ledger is the "
                        "account's whole balance of each asset, so live symbols must not share one"
                    )
                seen.setdefault(asset, symbol)
        return problems

    def _network_problems(self) -> list[str]:
        network, problems = self.network, []
        if network.nat_gateways > network.azs:
            problems.append(
                f"{NAMESPACE}:network.natGateways must be at most network.azs ({network.azs}), "
                f"got {network.nat_gateways}"
            )
        if len(set(network.interface_endpoints)) != len(network.interface_endpoints):
            problems.append(
                f"{NAMESPACE}:network.interfaceEndpoints must not repeat a service, "
                f"got {list(network.interface_endpoints)}"
            )
        options = sorted(
            NetworkSettings.model_fields[name].alias or name for name in network.model_fields_set - {"vpc"}
        )
        if not network.vpc and options:
            problems.append(
                f"{NAMESPACE}:network has VPC options {options} but network.vpc is false: "
                "set `network.vpc: true` or remove them"
            )
        return problems

    def check_for_stack(self, stack: str, region: StackRegion | None = None) -> StackSettings:
        """Rules that depend on the stack's name and region: what `pulumi up` would otherwise only
        find out half-way through, and what could never trade from there."""
        region = region or StackRegion(DEFAULT_REGION, "the default")
        problems: list[str] = []
        if stack == "dev" and self.enable_real_trading:
            problems.append(f"{NAMESPACE}:enableRealTrading must be false on the dev stack, got true")
        problems += _stack_name_problems(stack, region)
        if len(self.symbols) > MAX_SYMBOLS:
            problems.append(
                f"{NAMESPACE}:symbols may hold at most {MAX_SYMBOLS} symbols (one EventBridge rule takes at "
                f"most {MAX_SYMBOLS} targets, one per symbol), got {len(self.symbols)}: "
                "split them over several stacks"
            )
        restricted = RESTRICTED_LIVE_EXCHANGES.get(self.exchange.id)
        # The exchange's testnet (sandbox) is a different host and is not what geo-blocks.
        live_venue = self.enable_real_trading and not self.exchange.sandbox
        if live_venue and restricted and region.name.startswith(restricted[0]):
            problems.append(
                f"{NAMESPACE}:exchange.id {self.exchange.id!r} cannot trade from {region}: {restricted[1]} "
                f"(`pulumi config set --path {NAMESPACE}:exchange.id <id>`)"
            )
        if "bedrock" in self.ml_models:
            geography = self.bedrock.model_id.split(".", 1)[0]
            served = INFERENCE_PROFILE_GEOGRAPHIES.get(geography)
            if served and not region.name.startswith(served):
                problems.append(
                    f"{NAMESPACE}:bedrock.modelId {self.bedrock.model_id!r} is a {geography!r} inference "
                    f"profile, which does not serve {region}: use the profile of the region's geography "
                    f"or a `global.` profile"
                )
        if problems:
            raise SettingsError(problems)
        return self

    def check_workflow_lease(self) -> StackSettings:
        """A stack that runs the trading workflow (deployed, or on the local emulator) needs its
        per-symbol lease shorter than two trading intervals. Backtests replay the decisions
        without the workflow, so they may study any cadence."""
        if self.lease_seconds >= 2 * self.trading_interval * 60:
            raise SettingsError([
                f"{NAMESPACE}:tradingInterval must be longer than half the per-symbol lease "
                f"({self.lease_seconds} s: the trading workflow's worst case from CheckRisk to the release, "
                f"with lambda.timeoutSeconds {self.lambda_settings.timeout_seconds}), got {self.trading_interval} min: "
                "the lease must be shorter than two trading intervals; raise tradingInterval or lower "
                "lambda.timeoutSeconds"
            ])
        return self

    @property
    def lease_seconds(self) -> int:
        """The per-symbol lease's expiry, derived from the trading workflow's definition."""
        from btc_trader.workflow import lease_seconds, trading_workflow

        timeout = self.lambda_settings.timeout_seconds
        return lease_seconds(trading_workflow("predict", "risk", "execute", "topic", state_table="state",
                                              lambda_timeout_s=timeout))

    @property
    def models_enabled(self) -> frozenset[str]:
        return frozenset(self.ml_models)


def _stack_name_problems(stack: str, region: StackRegion) -> list[str]:
    """A stack name must fit every name derived from it, in its region, before `pulumi up` runs."""
    from btc_trader.stack.naming import (
        ACCOUNT_ID_LENGTH,
        FUNCTION_ROLES,
        SCHEDULE_PURPOSES,
        STACK_NAME,
        ResourceNames,
    )

    if not STACK_NAME.match(stack):
        return [
            f"stack name {stack!r} must be lowercase letters, digits and single hyphens, starting with a "
            "letter (it becomes part of S3 bucket names): `pulumi stack rename <name>`"
        ]
    if not REGION_PATTERN.match(region.name):
        return [f"aws:region {region.name!r} is not an AWS region name (from {region.source}), e.g. us-east-1"]
    names = ResourceNames(stack, "0" * ACCOUNT_ID_LENGTH, region.name)
    too_long = [n for n in names.physical_names(FUNCTION_ROLES, SCHEDULE_PURPOSES) if len(n.name) > n.max_length]
    if not too_long:
        return []
    worst = max(too_long, key=lambda n: len(n.name) - n.max_length)
    longest_stack = len(stack) - (len(worst.name) - worst.max_length)
    return [
        f"stack name {stack!r} is too long for {region}: the {worst.kind} name {worst.name!r} "
        f"({len(worst.name)} characters with a 12-digit account id) passes its limit of {worst.max_length}; "
        f"use a stack name of at most {longest_stack} characters"
    ]


def _is_symbol(symbol: str) -> bool:
    parts = symbol.split("-")
    return len(parts) == 2 and all(p.isalnum() and p.isupper() and 2 <= len(p) <= 10 for p in parts)


# ------------------------------------------------------------------------------------------------
# Error formatting: pydantic's messages are rewritten to name the stack key and what is allowed.


def _field_constraints(model: type[BaseModel], loc: tuple[Any, ...]) -> dict[str, Any]:
    """Walk the model along an error location and collect ge/le/gt/lt of the field found."""
    current: Any = model
    field = None
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            break
        field = next(
            (f for name, f in current.model_fields.items() if part in (name, f.alias)), None
        )
        if field is None:
            break
        current = field.annotation
    constraints: dict[str, Any] = {}
    if field is not None:
        for meta in field.metadata:
            for attr in ("ge", "le", "gt", "lt"):
                value = getattr(meta, attr, None)
                if value is not None:
                    constraints[attr] = value
    return constraints


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    loc = tuple(p for p in error["loc"] if not isinstance(p, int))
    key = f"{NAMESPACE}:{'.'.join(str(p) for p in loc)}" if loc else NAMESPACE
    got = _fmt(error.get("input"))
    kind = error["type"]
    bounds = _field_constraints(model, loc)
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        low = bounds.get("ge", bounds.get("gt"))
        high = bounds.get("le", bounds.get("lt"))
        if low is not None and high is not None:
            return f"{key} must be between {_fmt(low)} and {_fmt(high)}, got {got}"
        return f"{key} {error['msg'].lower()}, got {got}"
    if kind == "literal_error":
        allowed = error["ctx"]["expected"]
        return f"{key} must be one of {allowed}, got {got}"
    if kind == "extra_forbidden":
        return f"{key} is not a known setting (check the spelling; see the README's stack keys)"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"{key} must be a whole number, got {got}"
    if kind in {"float_parsing", "float_type"}:
        return f"{key} must be a number, got {got}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"{key} must be true or false, got {got}"
    if kind in {"tuple_type", "list_type"}:
        return f"{key} must be a list, got {got}"
    if kind == "too_short":
        return f"{key} must not be empty, got {got}"
    if kind == "value_error":
        return f"{key} {error['ctx']['error']}, got {got}"
    if kind == "string_pattern_mismatch":
        return f"{key} has an invalid format, got {got}"
    return f"{key}: {error['msg']}, got {got}"


def parse_settings(raw: Mapping[str, Any], stack: str, region: StackRegion | None = None) -> StackSettings:
    """Validate a mapping of stack keys (without namespace) into StackSettings."""
    try:
        settings = StackSettings.model_validate(dict(raw))
    except SettingsError:
        raise
    except ValidationError as exc:
        nested = [e for e in exc.errors() if isinstance(e.get("ctx", {}).get("error"), SettingsError)]
        if nested:
            raise nested[0]["ctx"]["error"] from None
        errors = exc.errors()
        # A list with a bad item also reports itself as too short; the item error says more.
        has_item_error = {e["loc"][0] for e in errors if any(isinstance(p, int) for p in e["loc"])}
        errors = [e for e in errors if not (e["type"] == "too_short" and e["loc"][0] in has_item_error)]
        raise SettingsError(list(dict.fromkeys(_describe(e, StackSettings) for e in errors))) from None
    return settings.check_for_stack(stack, region)


def _strip_namespace(config: Mapping[str, Any], where: str = "stack config") -> dict[str, Any]:
    check_namespaces(config, where)
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}


def project_root(root: Path | None = None) -> Path:
    """`root`, else the checkout around the current directory (see btc_trader.stack.project)."""
    if root is not None:
        return root
    try:
        return find_project_root()
    except ProjectNotFoundError as exc:
        raise SettingsError([str(exc)]) from None


def stack_file(stack: str, root: Path | None = None) -> Path:
    return project_root(root) / f"Pulumi.{stack}.yaml"


def read_stack_file(stack: str, root: Path | None = None) -> dict[str, Any]:
    """Raw `config:` mapping of Pulumi.<stack>.yaml (all namespaces)."""
    path = stack_file(stack, root)
    if not path.is_file():
        raise SettingsError([f"stack file {path} not found (stacks: dev, prod)"])
    return _stack_config(load_yaml_mapping(path), path)


def _stack_config(document: dict[str, Any], path: Path) -> dict[str, Any]:
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise SettingsError([f"{path}: 'config' must be a mapping"])
    return config


def load_stack_file(stack: str = "dev", root: Path | None = None) -> StackSettings:
    """Settings of a stack read straight from its YAML (local runs, CLI, tests)."""
    config = read_stack_file(stack, root)
    return parse_settings(_strip_namespace(config, str(stack_file(stack, root))), stack,
                          resolve_region(config, stack)).check_workflow_lease()


# Pulumi.<stack>.yaml path -> (its bytes, its config, settings by the region they resolved to).
_PARSED_STACK_FILES: dict[Path, tuple[bytes, dict[str, Any], dict[tuple[str, str], StackSettings]]] = {}


def load_stack_file_cached(stack: str = "dev", root: Path | None = None) -> StackSettings:
    """`load_stack_file`, parsed again only when the file's bytes or the region it resolves to change.

    For per-invocation paths: a local run invokes a handler several times per decision, and the
    YAML parse and validation cost milliseconds each time. The file is still read (cheap) on every
    call, so an edit takes effect at the next call; StackSettings is frozen, so sharing is safe.
    """
    path = stack_file(stack, root)
    try:
        data = path.read_bytes()
    except OSError:
        return load_stack_file(stack, root)  # the uncached load names what is wrong with the file
    entry = _PARSED_STACK_FILES.get(path)
    if entry is None or entry[0] != data:
        entry = (data, _stack_config(load_yaml_mapping(path, data), path), {})
        _PARSED_STACK_FILES[path] = entry
    _, config, by_region = entry
    region = resolve_region(config, stack)  # reads the environment: AWS_REGION may differ per call
    settings = by_region.get((region.name, region.source))
    if settings is None:
        settings = parse_settings(_strip_namespace(config, str(path)), stack, region).check_workflow_lease()
        by_region[(region.name, region.source)] = settings
    return settings


def load_stack_with_overrides(stack: str, overrides: Mapping[str, str], root: Path | None = None) -> StackSettings:
    """A stack's settings with `key=value` overrides (values in YAML syntax; dots reach into
    objects, e.g. `exchange.sandbox=false`), validated like the stack itself."""
    config = read_stack_file(stack, root)
    raw = _strip_namespace(config, str(stack_file(stack, root)))
    for key, text in overrides.items():
        apply_override(raw, key, text)
    return parse_settings(raw, stack, resolve_region(config, stack))


def stack_region(stack: str = "dev", root: Path | None = None) -> str:
    """The region the stack deploys to (see resolve_region for the order of sources)."""
    return resolve_region(read_stack_file(stack, root), stack).name


def settings_from_pulumi_config(config: Mapping[str, Any], stack: str) -> StackSettings:
    """Settings from the whole config a Pulumi program was given (every namespace, string values)."""
    # Read the whole namespace rather than field by field, so a misspelt key is an error
    # instead of being silently ignored.
    check_namespaces(config, f"stack {stack}")
    raw = {
        key.split(":", 1)[1]: _decode_config_value(value)
        for key, value in config.items()
        if key.startswith(f"{NAMESPACE}:")
    }
    return parse_settings(raw, stack, resolve_region(config, stack)).check_workflow_lease()


def _decode_config_value(text: Any) -> Any:
    """Pulumi hands every value over as a string; numbers, booleans, objects and lists as JSON."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# ------------------------------------------------------------------------------------------------
# What is read before the model sees it: the YAML file, overrides and namespaces (#16).

# Namespaces that belong in a stack file besides ours: Pulumi's own and its providers'.
KNOWN_NAMESPACES = frozenset({"aws", "pulumi", "awsx", "aws-native", "random", "tls", "command", "docker"})


def check_namespaces(config: Mapping[str, Any], where: str) -> None:
    """Refuse keys in a namespace that looks like a misspelt `btc-trader:` (silently ignored otherwise).

    A key without a namespace is refused as Pulumi refuses it; a provider's namespace passes.
    """
    problems = []
    for key in config:
        namespace, sep, name = str(key).partition(":")
        if not sep:
            problems.append(
                f"{where}: key {key!r} has no namespace; stack keys are written {NAMESPACE}:{key}"
            )
            continue
        if namespace == NAMESPACE or namespace in KNOWN_NAMESPACES:
            continue
        if difflib.get_close_matches(namespace.lower(), [NAMESPACE], n=1, cutoff=0.6):
            problems.append(
                f"{where}: {key!r} is in namespace {namespace!r}, which is not {NAMESPACE!r}; "
                f"did you mean {NAMESPACE}:{name}?"
            )
    if problems:
        raise SettingsError(problems)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (YAML keeps the last silently)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is written twice (first on line {seen[key]})", key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_yaml_mapping(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; every problem is a SettingsError with file and line.

    `data`: the file's bytes, when the caller has read them already.
    """
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SettingsError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError([f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x}); save it as UTF-8"]) from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SettingsError([f"{path}{line}: invalid YAML: {problem}"]) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise SettingsError([f"{path}: invalid YAML: {type(exc).__name__}"]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise SettingsError([
            f"{path}:1: the top level must be a mapping with a 'config:' key, got a {type(document).__name__}"
        ])
    return document


def apply_override(raw: dict[str, Any], key: str, text: str) -> None:
    """Set one `key=value` override (YAML value; dots reach into objects) into `raw`, in place."""
    namespace, sep, _ = key.partition(":")
    if sep and namespace != NAMESPACE:
        check_namespaces({key: text}, "override")
        raise SettingsError([f"override {key!r}: only {NAMESPACE}: keys can be overridden"])
    shown = f"{NAMESPACE}:{key.removeprefix(f'{NAMESPACE}:')}"
    parts = key.removeprefix(f"{NAMESPACE}:").split(".")
    if not all(parts):
        raise SettingsError([f"{shown}: not a stack key (empty part in {key!r})"])
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        raise SettingsError([f"{shown}: the value {text[:60]!r} is not valid YAML; quote it or fix it"]) from None
    target = raw
    *parents, leaf = parts
    for parent in parents:
        child = target.setdefault(parent, {})
        if not isinstance(child, dict):
            raise SettingsError([f"{shown}: {parent} is not an object"])
        target = child
    target[leaf] = value


def unknown_exchange_problem(exchange_id: str) -> str | None:
    """Why `exchange_id` cannot trade (not a ccxt exchange), or None; ccxt is imported only here."""
    try:
        import ccxt
    except ImportError:
        return f"{NAMESPACE}:exchange.id cannot be checked: ccxt is not installed (needed for real trading)"
    if exchange_id in ccxt.exchanges:
        return None
    close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else " (see ccxt.exchanges)"
    return f"{NAMESPACE}:exchange.id {exchange_id!r} is not an exchange ccxt knows, so real trading cannot use it{hint}"


def stack_keys() -> dict[str, Any]:
    """Every top-level stack key with its default (used by the README check)."""
    defaults = StackSettings()
    return {
        (field.alias or name): getattr(defaults, name)
        for name, field in StackSettings.model_fields.items()
    }


# ------------------------------------------------------------------------------------------------
# Documentation of every key: the README's table is generated from this and checked by a test.

KEY_DOCS: dict[str, str] = {
    "priceCollectionInterval": "Minutes between price collections (EventBridge schedule).",
    "maxTradeAmount": "Largest order notional, USD.",
    "enableRealTrading": "Live orders through the exchange; needs `exchange.secretName` too, never on dev.",
    "mlModels": "Models in the ensemble: `bedrock`, `huggingface` (Chronos-Bolt), `custom` (technical).",
    "riskThreshold": "Minimum ensemble confidence (0..1) to trade.",
    "symbols": "Symbols to collect and trade, `BASE-QUOTE`.",
    "priceSources": "Venues to collect from: coingecko, binance, binanceus, coinbase, kraken.",
    "minSources": "Fewest valid sources for a price to be stored.",
    "maxSourceDivergenceBps": "A source further than this from the median is an outlier (bps).",
    "maxSourceStalenessSeconds": "A venue quote older than this is rejected.",
    "httpTimeoutSeconds": "Read timeout of each venue request.",
    "httpRetries": "Retries of a venue request on connection errors and 5xx (never on 4xx).",
    "tradingInterval": "Minutes between trading-workflow runs.",
    "predictionHorizonMinutes": "How far ahead predictions look.",
    "buyThresholdPct": "Predicted rise (%) from which the risk manager considers a BUY.",
    "sellThresholdPct": "Predicted fall (%, negative) from which it considers a SELL.",
    "feeBps": "Fee per fill, bps of notional (paper wallet and backtests).",
    "slippageBps": "Adverse slippage per fill, bps (paper wallet and backtests).",
    "maxSlippageBps": "Live: limit IOC price = fresh best ask (bid) plus (minus) this many bps; the worst cost the limits hold on.",
    "paperStartingCash": "Paper wallet's starting USD.",
    "maxPositionPct": "Largest BTC position, % of equity.",
    "dailyLossLimitPct": "No new trades after this realised+unrealised loss in a UTC day (%).",
    "maxDrawdownPct": "Drawdown from peak equity that engages the kill switch (%).",
    "cooldownMinutes": "Pause after a losing trade.",
    "maxTradesPerDay": "Most trades per UTC day.",
    "maxPriceAgeSeconds": "Refuse to trade on a price older than this; in live mode also the furthest a run's clock may be from the wall clock.",
    "executorReservedConcurrency": "Opt-in reserved concurrency of the trade executor (null: none; the per-symbol lease already serialises trades).",
    "modelWeights": "Prior ensemble weights; each model's scored calls move it towards what its net edge supports.",
    "exchange": "`id` (ccxt exchange id), `sandbox` (testnet), `secretName` (Secrets Manager secret with the API keys).",
    "bedrock": "`modelId` (inference-profile id), `maxTokens`, `timeoutSeconds`.",
    "huggingface": "`endpointName`, `deployEndpoint` (create a serverless Chronos-Bolt endpoint), `modelId`, `timeoutSeconds`.",
    "timestream": "`enabled` (opt-in; closed to new AWS customers since 2025-06-20), `memoryRetentionHours`, `magneticRetentionDays`.",
    "alertEmail": "E-mail subscribed to the alerts topic (confirm the subscription mail).",
    "logRetentionDays": "CloudWatch Logs retention of every function.",
    "priceRetentionDays": "TTL of price items in DynamoDB.",
    "rawExpireAfterDays": "Raw payloads are deleted after this many days.",
    "lambda": "`memoryMb`, `timeoutSeconds`, `architecture` (x86_64/arm64), `pythonRuntime`.",
    "network": "`vpc` (run the functions in private subnets; adds NAT cost, see Security), `cidr`, `azs`, `natGateways`, `interfaceEndpoints` (services reached without NAT; each costs per AZ-hour).",
    "monitoring": "Alarm thresholds: `lambdaErrorRatePercent` over `lambdaErrorPeriods` 5-min periods, `missedCollections`, `workflowFailures` per trading interval, `drawdownAlarmPctOfLimit` (of `maxDrawdownPct`), `minModelSkill` over `modelSkillHours` (see Monitoring).",
}


def _cell(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, exclude_none=True)
    if isinstance(value, tuple):
        value = list(value)
    text = json.dumps(value, separators=(", ", ": ")) if not isinstance(value, str) else value
    return f"`{text}`"


def stack_keys_markdown(root: Path | None = None) -> str:
    """The README's table of stack keys: default, dev and prod values, meaning."""
    root = project_root(root)
    dev_raw = _strip_namespace(read_stack_file("dev", root))
    prod_raw = _strip_namespace(read_stack_file("prod", root))
    rows = ["| key (`btc-trader:`) | default | dev | prod | meaning |", "|---|---|---|---|---|"]
    for key, default in stack_keys().items():
        dev = _cell(dev_raw[key]) if key in dev_raw else ""
        prod = _cell(prod_raw[key]) if key in prod_raw else ""
        rows.append(f"| `{key}` | {_cell(default)} | {dev} | {prod} | {KEY_DOCS[key]} |")
    return "\n".join(rows)


def write_readme_table(readme: Path | None = None) -> Path:
    """Replace the table between the stack-keys markers of the README; returns the file written."""
    readme = readme or project_root() / "README.md"
    text = readme.read_text()
    begin, end = "<!-- stack-keys:begin -->\n", "\n<!-- stack-keys:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + begin + stack_keys_markdown(readme.parent) + end + tail)
    return readme


if __name__ == "__main__":
    # `python -m btc_trader.stack.settings` rewrites the README's table of stack keys.
    written = write_readme_table()
    print(f"wrote the stack-keys table ({len(stack_keys())} keys) to {written}")
