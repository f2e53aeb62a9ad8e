"""What the handlers measure, and where each measure goes: a CloudWatch metric or a log line.

CloudWatch bills every custom metric series (one per name and dimension values) by the month,
whether anybody looks at it or not; a structured log line costs only its bytes, and CloudWatch Logs
Insights turns the lines into graphs and breakdowns when the dashboard is opened. So a measure is a
**metric** only when an alarm watches it (an alarm needs a metric); everything else, the breakdowns
by venue, rule, model or reason included, is a **log** measure that the dashboard queries with
Logs Insights. This catalogue is the one list: the handlers record through it, the Monitoring
component draws its widgets from it, and `btc-trader cost` counts the billed series from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Sink = Literal["metric", "log"]
# The key of a log measure in the handlers' JSON logs (Logs Insights filters on it).
MEASURE_FIELD = "measure"
VALUE_FIELD = "value"


@dataclass(frozen=True)
class Measure:
    """One thing a handler measures: its unit, its dimensions, where it goes and why there."""

    name: str
    service: str  # the function that records it (Powertools' `service`)
    unit: str  # a Powertools MetricUnit value
    dimensions: tuple[str, ...]
    sink: Sink
    why: str


def _metric(name: str, service: str, unit: str, dimensions: tuple[str, ...], why: str) -> Measure:
    return Measure(name, service, unit, dimensions, "metric", why)


def _log(name: str, service: str, unit: str, dimensions: tuple[str, ...], why: str) -> Measure:
    return Measure(name, service, unit, dimensions, "log", why)


COLLECTOR, PREDICTOR, EVALUATOR, RISK, EXECUTOR = (
    "price-collector", "ml-predictor", "prediction-evaluator", "risk-manager", "trade-executor")

CATALOGUE: dict[str, Measure] = {m.name: m for m in (
    # --- alarmed: metrics ------------------------------------------------------------------
    _metric("CollectedPrice", COLLECTOR, "None", ("symbol",), "alarm no-price-<symbol> (SampleCount per interval)"),
    _metric("DrawdownPct", RISK, "Percent", (), "alarm drawdown-near-limit"),
    _metric("KillSwitchEngaged", RISK, "Count", (), "alarm kill-switch-engaged"),
    _metric("ModelNetEdgeT", EVALUATOR, "None", ("model",), "alarm model-skill-<model>"),
    # --- everything else: structured logs, graphed by Logs Insights ------------------------
    _log("PricesCollected", COLLECTOR, "Count", (), "collections per period"),
    _log("DuplicateCollections", COLLECTOR, "Count", (), "re-delivered schedule events"),
    _log("SourceDivergenceBps", COLLECTOR, "None", ("symbol",), "spread of the venues"),
    _log("SourceFailures", COLLECTOR, "Count", ("source",), "failures by venue (a breakdown)"),
    _log("InsufficientSources", COLLECTOR, "Count", (), "collections with too few venues"),
    _log("ModelLatency", PREDICTOR, "Milliseconds", ("model",), "latency by model"),
    _log("ModelSuccess", PREDICTOR, "Count", ("model",), "answers by model"),
    _log("ModelFailure", PREDICTOR, "Count", ("model",), "failures by model (a breakdown)"),
    _log("BedrockInputTokens", PREDICTOR, "Count", (), "the Bedrock bill"),
    _log("BedrockOutputTokens", PREDICTOR, "Count", (), "the Bedrock bill"),
    _log("PriceAgeSeconds", PREDICTOR, "Seconds", ("symbol",), "freshness at decision time"),
    _log("EnsembleConfidence", PREDICTOR, "None", (), "what riskThreshold gates"),
    _log("PredictionRefused", PREDICTOR, "Count", ("reason",), "refusals by reason (a breakdown)"),
    _log("HistoryItemsRead", PREDICTOR, "Count", (), "DynamoDB reads per prediction"),
    _log("PredictionAccuracy", EVALUATOR, "Percent", ("model",), "direction hits by model"),
    _log("PredictionsScored", EVALUATOR, "Count", (), "evaluator throughput"),
    _log("RiskScore", RISK, "None", (), "nearest risk limit, 0..1"),
    _log("RiskRejections", RISK, "Count", ("rule",), "rejections by deciding rule (a breakdown)"),
    _log("TradeSuccessRate", EXECUTOR, "Percent", (), "fills against attempts"),
    _log("TradesExecuted", EXECUTOR, "Count", ("mode", "side"), "trades by side"),
    _log("PortfolioValue", EXECUTOR, "None", ("mode",), "equity over time"),
)}


@dataclass(frozen=True)
class LogWidget:
    """A Logs Insights graph of log measures (btc_trader.telemetry): no metric is billed for it;
    the query scans the function's log group for the dashboard's time range when it is viewed."""

    title: str
    measures: tuple[str, ...]
    stats: str
    by: tuple[str, ...]
    view: str  # timeSeries (grouped by bin), bar or table (a breakdown over the range)
    only_with_model: str | None = None  # shown only when the stack runs this model

    @property
    def service(self) -> str:
        return CATALOGUE[self.measures[0]].service

    def query(self, log_group: str) -> str:
        measures = ", ".join(f'"{name}"' for name in self.measures)
        return (f"SOURCE '{log_group}' | filter {MEASURE_FIELD} in [{measures}] "
                f"| stats {self.stats} by {', '.join(self.by)}")


BIN = "bin(5m)"  # the dashboard's period
# What the dashboard shows from the logs. A breakdown (by venue, rule, model, reason) is a bar
# chart over the dashboard's range: its values are open-ended, and as metrics each value would be
# a billed series of its own.
LOG_WIDGETS = (
    LogWidget("Source failures by venue", ("SourceFailures",), f"sum({VALUE_FIELD}) as failures", ("source",), "bar"),
    LogWidget("Collections with too few venues", ("InsufficientSources",), f"sum({VALUE_FIELD}) as collections",
              (BIN,), "timeSeries"),
    LogWidget("Source divergence, bps", ("SourceDivergenceBps",), f"max({VALUE_FIELD}) as bps", (BIN,), "timeSeries"),
    LogWidget("Price age at decision, s", ("PriceAgeSeconds",), f"max({VALUE_FIELD}) as seconds", (BIN,),
              "timeSeries"),
    LogWidget("Model latency p90, ms, by model", ("ModelLatency",), f"pct({VALUE_FIELD}, 90) as p90_ms", ("model",),
              "bar"),
    LogWidget("Model failures by model", ("ModelFailure",), f"sum({VALUE_FIELD}) as failures", ("model",), "bar"),
    LogWidget("Predictions refused by reason", ("PredictionRefused",), f"sum({VALUE_FIELD}) as refused",
              ("reason",), "bar"),
    LogWidget("Ensemble confidence", ("EnsembleConfidence",), f"avg({VALUE_FIELD}) as confidence", (BIN,),
              "timeSeries"),
    LogWidget("Prediction accuracy per model, % direction hits", ("PredictionAccuracy",),
              f"avg({VALUE_FIELD}) as hit_pct", ("model",), "bar"),
    LogWidget("Risk rejections by deciding rule", ("RiskRejections",), f"sum({VALUE_FIELD}) as rejections",
              ("rule",), "bar"),
    LogWidget("Risk score (nearest limit, 0..1)", ("RiskScore",), f"max({VALUE_FIELD}) as risk", (BIN,),
              "timeSeries"),
    LogWidget("Trades by side", ("TradesExecuted",), f"sum({VALUE_FIELD}) as trades", ("side",), "bar"),
    LogWidget("Trade success rate, %", ("TradeSuccessRate",), f"avg({VALUE_FIELD}) as success_pct", (BIN,),
              "timeSeries"),
    LogWidget("Portfolio value, USD", ("PortfolioValue",), f"avg({VALUE_FIELD}) as equity_usd", (BIN,),
              "timeSeries"),
    LogWidget("Bedrock tokens", ("BedrockInputTokens", "BedrockOutputTokens"), f"sum({VALUE_FIELD}) as tokens",
              (MEASURE_FIELD,), "bar",
              only_with_model="bedrock"),
)


class UnknownMeasureError(KeyError):
    """A handler recorded something the catalogue does not list (a typo, or a missing entry)."""


def metric_measures() -> list[Measure]:
    """The measures billed as custom metrics."""
    return [m for m in CATALOGUE.values() if m.sink == "metric"]


def log_measures() -> list[Measure]:
    """The measures written as structured log lines."""
    return [m for m in CATALOGUE.values() if m.sink == "log"]


def series_count(cardinality: dict[str, int]) -> int:
    """Custom metric series the catalogue's metrics make, given how many values each dimension takes."""
    return sum(math.prod(cardinality[d] for d in m.dimensions) for m in metric_measures())


class Telemetry:
    """Records measures for one handler: EMF through Powertools Metrics, or a JSON log line."""

    def __init__(self, metrics: Any, logger: Any):
        self.metrics, self.logger = metrics, logger

    def record(self, name: str, value: float, **dimensions: str) -> None:
        """Record one value of a catalogued measure with exactly its dimensions."""
        from aws_lambda_powertools.metrics import single_metric

        measure = CATALOGUE.get(name)
        if measure is None:
            raise UnknownMeasureError(f"{name!r} is not in btc_trader.telemetry.CATALOGUE")
        if set(dimensions) != set(measure.dimensions):
            raise UnknownMeasureError(
                f"{name} takes dimensions {list(measure.dimensions)}, got {sorted(dimensions)}")
        if measure.sink == "log":
            self.logger.info(name, extra={MEASURE_FIELD: name, VALUE_FIELD: value, **dimensions})
        elif dimensions:
            # A dimension value is its own series: kept apart from the handler's shared metric set.
            with single_metric(name=name, unit=measure.unit, value=value) as metric:
                for key, dimension_value in dimensions.items():
                    metric.add_dimension(name=key, value=str(dimension_value))
        else:
            self.metrics.add_metric(name=name, unit=measure.unit, value=value)
