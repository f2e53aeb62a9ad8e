"""Monitoring: the stack's CloudWatch dashboard and its alarms, all notifying the alerts topic.

What is watched is declared once, as data: `METRICS` lists every custom metric with the function
that emits it and its dimensions (a test proves each one is really emitted by that handler, and
that nothing on the dashboard or in an alarm is missing from it). The dashboard body and the
alarm specifications are pure functions of the settings and names; the component only turns
them into resources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.naming import ResourceNames
from components.runtime_env import (
    ML_PREDICTOR,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
    TRADE_EXECUTOR,
)
from components.settings import StackSettings

# name -> (emitting function, extra dimension names besides Powertools' `service`)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "PricesCollected": (PRICE_COLLECTOR, ()),
    "CollectedPrice": (PRICE_COLLECTOR, ("symbol",)),
    "SourceDivergenceBps": (PRICE_COLLECTOR, ("symbol",)),
    "SourceFailures": (PRICE_COLLECTOR, ("source",)),
    "InsufficientSources": (PRICE_COLLECTOR, ()),
    "ModelLatency": (ML_PREDICTOR, ("model",)),
    "ModelFailure": (ML_PREDICTOR, ("model",)),
    "BedrockInputTokens": (ML_PREDICTOR, ()),
    "BedrockOutputTokens": (ML_PREDICTOR, ()),
    "PriceAgeSeconds": (ML_PREDICTOR, ()),
    "EnsembleConfidence": (ML_PREDICTOR, ()),
    "PredictionRefused": (ML_PREDICTOR, ("reason",)),
    "PredictionAccuracy": (PREDICTION_EVALUATOR, ("model",)),
    "ModelSkillVsPersistence": (PREDICTION_EVALUATOR, ("model",)),
    "RiskScore": (RISK_MANAGER, ()),
    "RiskRejections": (RISK_MANAGER, ("rule",)),
    "KillSwitchEngaged": (RISK_MANAGER, ()),
    "DrawdownPct": (RISK_MANAGER, ()),
    "TradeSuccessRate": (TRADE_EXECUTOR, ()),
    "TradesExecuted": (TRADE_EXECUTOR, ("mode", "side")),
    "PortfolioValue": (TRADE_EXECUTOR, ("mode",)),
}
FUNCTIONS = (PRICE_COLLECTOR, ML_PREDICTOR, PREDICTION_EVALUATOR, RISK_MANAGER, TRADE_EXECUTOR)
REFUSALS = ("insufficient_history", "no_model")
RISK_RULES = ("prediction", "confidence", "price_age", "divergence", "position", "holdings", "daily_loss",
              "kill_switch", "manual_kill_switch", "cooldown", "max_trades")
DASHBOARD_PERIOD_S = 300


def custom_metric(names: ResourceNames, name: str, **dimensions: str) -> list[str]:
    """A dashboard metric row: namespace, name, then dimension pairs (service first)."""
    function, extra = METRICS[name]
    if set(dimensions) != set(extra):
        raise ValueError(f"{name} has dimensions {sorted(extra)}, got {sorted(dimensions)}")
    row = [names.metrics_namespace, name, "service", function]
    for key in extra:
        row += [key, dimensions[key]]
    return row


def _widget(title: str, metrics: list[list[Any]], region: str, stat: str = "Average",
            width: int = 8, **extra: Any) -> dict[str, Any]:
    return {"type": "metric", "width": width, "height": 6,
            "properties": {"title": title, "region": region, "stat": stat, "period": DASHBOARD_PERIOD_S,
                           "view": "timeSeries", "metrics": metrics, **extra}}


def dashboard_body(settings: StackSettings, names: ResourceNames, region: str, state_machine_arn: str,
                   mode: str) -> dict[str, Any]:
    """The dashboard, from what this stack runs (its symbols, sources, models, mode)."""
    m = lambda name, **dims: custom_metric(names, name, **dims)  # noqa: E731 - a local shorthand
    widgets = [
        _widget("Prices collected (sum)", [m("PricesCollected"), m("InsufficientSources")], region, "Sum"),
        _widget("Price (USD)", [m("CollectedPrice", symbol=s) for s in settings.symbols], region),
        _widget("Price freshness at prediction (s)", [m("PriceAgeSeconds")], region, "Maximum"),
        _widget("Source failures", [m("SourceFailures", source=s) for s in settings.price_sources], region, "Sum"),
        _widget("Source divergence (bps)", [m("SourceDivergenceBps", symbol=s) for s in settings.symbols], region,
                "Maximum"),
        _widget("Prediction accuracy per model (%)",
                [m("PredictionAccuracy", model=model) for model in settings.ml_models], region),
        _widget("Skill vs persistence per model (>0 beats it)",
                [m("ModelSkillVsPersistence", model=model) for model in settings.ml_models], region),
        _widget("Predictions refused", [m("PredictionRefused", reason=r) for r in REFUSALS]
                + [m("ModelFailure", model=model) for model in settings.ml_models], region, "Sum"),
        _widget("Model latency (ms)", [m("ModelLatency", model=model) for model in settings.ml_models], region,
                "p90"),
        _widget("Risk score and drawdown (%)", [m("RiskScore"), m("DrawdownPct"), m("KillSwitchEngaged")], region,
                "Maximum"),
        _widget("Risk rejections by rule", [m("RiskRejections", rule=r) for r in RISK_RULES], region, "Sum"),
        _widget("Trade success rate (%)", [m("TradeSuccessRate")], region),
        _widget(f"Portfolio value (USD, {mode})", [m("PortfolioValue", mode=mode)], region, "Average"),
        _widget("Trades", [m("TradesExecuted", mode=mode, side=side) for side in ("BUY", "SELL")], region, "Sum"),
    ]
    if "bedrock" in settings.ml_models:
        widgets.append(_widget("Bedrock tokens", [m("BedrockInputTokens"), m("BedrockOutputTokens")], region, "Sum"))
    for metric, stat in (("Errors", "Sum"), ("Duration", "p90"), ("Throttles", "Sum")):
        widgets.append(_widget(f"Lambda {metric.lower()}",
                               [["AWS/Lambda", metric, "FunctionName", names.function(f)] for f in FUNCTIONS],
                               region, stat))
    widgets.append(_widget("Trading workflow executions",
                           [["AWS/States", metric, "StateMachineArn", state_machine_arn]
                            for metric in ("ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut")],
                           region, "Sum", width=12))
    return {"widgets": widgets}


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm, as CloudWatch's PutMetricAlarm sees it (single metric or metric math)."""

    name: str
    description: str
    comparison: str
    threshold: float
    evaluation_periods: int
    treat_missing_data: str = "notBreaching"
    metric: dict[str, Any] = field(default_factory=dict)  # namespace, name, dimensions, period, statistic
    queries: list[dict[str, Any]] = field(default_factory=list)  # metric math instead of `metric`


def _custom(names: ResourceNames, name: str, period: int, statistic: str, **dims: str) -> dict[str, Any]:
    row = custom_metric(names, name, **dims)
    return {"namespace": row[0], "name": row[1], "dimensions": dict(zip(row[2::2], row[3::2], strict=True)),
            "period": period, "statistic": statistic}


def alarm_specs(settings: StackSettings, names: ResourceNames, state_machine_arn: Any) -> list[AlarmSpec]:
    """Every alarm of the stack, thresholds from `monitoring` and the risk settings."""
    watch = settings.monitoring
    collect = settings.price_collection_interval * 60
    trade = settings.trading_interval * 60
    warn_at = round(settings.max_drawdown_pct * watch.drawdown_warning_fraction, 4)
    alarms = [
        AlarmSpec(
            f"{names.prefix}-no-price", f"No price stored for {watch.missing_price_intervals} collection intervals",
            "LessThanThreshold", 1, watch.missing_price_intervals, "breaching",
            metric=_custom(names, "PricesCollected", collect, "Sum")),
        AlarmSpec(
            f"{names.prefix}-workflow-failures", "A trading workflow execution failed or timed out",
            "GreaterThanOrEqualToThreshold", 1, 1,
            queries=[
                {"id": "failed", "metric": {"namespace": "AWS/States", "name": "ExecutionsFailed",
                                            "dimensions": {"StateMachineArn": state_machine_arn},
                                            "period": trade, "statistic": "Sum"}},
                {"id": "timedout", "metric": {"namespace": "AWS/States", "name": "ExecutionsTimedOut",
                                              "dimensions": {"StateMachineArn": state_machine_arn},
                                              "period": trade, "statistic": "Sum"}},
                {"id": "failures", "expression": "failed + timedout", "label": "failed or timed out"},
            ]),
        AlarmSpec(
            f"{names.prefix}-drawdown-near-limit",
            f"Drawdown reached {watch.drawdown_warning_fraction:.0%} of maxDrawdownPct ({settings.max_drawdown_pct:g}%)",
            "GreaterThanOrEqualToThreshold", warn_at, 1, metric=_custom(names, "DrawdownPct", trade, "Maximum")),
        AlarmSpec(
            f"{names.prefix}-kill-switch", "The drawdown kill switch is engaged: trading stopped until reset",
            "GreaterThanOrEqualToThreshold", 1, 1, metric=_custom(names, "KillSwitchEngaged", trade, "Maximum")),
    ]
    for function in FUNCTIONS:
        physical = names.function(function)
        alarms.append(AlarmSpec(
            f"{physical}-error-rate", f"{function} errors above {watch.lambda_error_rate_pct:g}% of invocations",
            "GreaterThanThreshold", watch.lambda_error_rate_pct, 1,
            queries=[
                {"id": "errors", "metric": {"namespace": "AWS/Lambda", "name": "Errors",
                                            "dimensions": {"FunctionName": physical}, "period": 300,
                                            "statistic": "Sum"}},
                {"id": "invocations", "metric": {"namespace": "AWS/Lambda", "name": "Invocations",
                                                 "dimensions": {"FunctionName": physical}, "period": 300,
                                                 "statistic": "Sum"}},
                {"id": "rate", "expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                 "label": "error rate %"},
            ]))
    for model in settings.ml_models:
        alarms.append(AlarmSpec(
            f"{names.prefix}-{model}-worse-than-persistence",
            f"{model} forecasts worse than 'no change' for {watch.model_skill_alarm_hours} h (the ensemble drops it)",
            "LessThanThreshold", 0, watch.model_skill_alarm_hours,
            metric=_custom(names, "ModelSkillVsPersistence", 3600, "Maximum", model=model)))
    return alarms


def _alarm_args(spec: AlarmSpec, topic_arn: pulumi.Input[str]) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": spec.name, "alarm_description": spec.description, "comparison_operator": spec.comparison,
        "threshold": spec.threshold, "evaluation_periods": spec.evaluation_periods,
        "datapoints_to_alarm": spec.evaluation_periods, "treat_missing_data": spec.treat_missing_data,
        "alarm_actions": [topic_arn], "ok_actions": [topic_arn],
    }
    if spec.metric:
        metric = spec.metric
        return args | {"namespace": metric["namespace"], "metric_name": metric["name"],
                       "dimensions": metric["dimensions"], "period": metric["period"],
                       "statistic": metric["statistic"]}
    queries = []
    for query in spec.queries:
        if "expression" in query:
            queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query["id"], expression=query["expression"], label=query["label"], return_data=True))
        else:
            metric = query["metric"]
            queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query["id"], return_data=False, metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=metric["namespace"], metric_name=metric["name"], dimensions=metric["dimensions"],
                    period=metric["period"], stat=metric["statistic"])))
    return args | {"metric_queries": queries}


class MonitoringArgs:
    def __init__(self, settings: StackSettings, names: ResourceNames, region: pulumi.Input[str],
                 state_machine_arn: pulumi.Input[str], alerts_topic_arn: pulumi.Input[str]):
        self.settings = settings
        self.names = names
        self.region = region
        self.state_machine_arn = state_machine_arn
        self.alerts_topic_arn = alerts_topic_arn


class Monitoring(pulumi.ComponentResource):
    """The dashboard and the alarms of one stack."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("btc-trader:ops:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings, names = args.settings, args.names
        mode = "live" if settings.enable_real_trading else "paper"
        body = pulumi.Output.all(args.region, args.state_machine_arn).apply(
            lambda values: json.dumps(dashboard_body(settings, names, values[0], values[1], mode)))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=names.prefix, dashboard_body=body, opts=child)
        self.alarms = []
        # Alarm dimensions take the state machine's ARN as an Output: known only at deploy time.
        self.alarms = [aws.cloudwatch.MetricAlarm(spec.name, **_alarm_args(spec, args.alerts_topic_arn), opts=child)
                       for spec in alarm_specs(settings, names, args.state_machine_arn)]
        self.dashboard_url = pulumi.Output.concat(
            "https://console.aws.amazon.com/cloudwatch/home?region=", args.region, "#dashboards:name=", names.prefix)
        self.register_outputs({"dashboard_url": self.dashboard_url,
                               "alarms": [alarm.name for alarm in self.alarms]})
