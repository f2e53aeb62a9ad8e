"""Monitoring: one CloudWatch dashboard per stack and the alarms that page the alerts topic.

Every custom metric here is one a handler emits through Powertools (EMF): the namespace is the
stack's, and each metric carries the `service` dimension Powertools adds (the function's
`POWERTOOLS_SERVICE_NAME`) plus the dimensions the handler sets. tests/infra/test_monitoring.py
runs the handlers and proves the dashboard and every alarm watch exactly what they emit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from btc_trader.stack.environment import (
    ORDER_RECONCILER,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
)
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import StackSettings
from btc_trader.telemetry import LOG_WIDGETS, LogWidget

LAMBDA_NAMESPACE = "AWS/Lambda"
STATES_NAMESPACE = "AWS/States"
# Execution outcomes Step Functions publishes per state machine.
WORKFLOW_OUTCOMES = ("ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
WORKFLOW_FAILURES = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
LAMBDA_ERROR_PERIOD_S = 300
MODEL_SKILL_PERIOD_S = 3600
DASHBOARD_PERIOD_S = 300


@dataclass(frozen=True)
class MetricRef:
    """One CloudWatch metric: namespace, name and every dimension, as a widget or alarm names it."""

    namespace: str
    name: str
    dimensions: dict[str, str]
    stat: str = "Average"
    label: str | None = None

    def widget_entry(self) -> list[Any]:
        entry: list[Any] = [self.namespace, self.name]
        for key, value in self.dimensions.items():
            entry += [key, value]
        entry.append({"stat": self.stat, **({"label": self.label} if self.label else {})})
        return entry


@dataclass
class MonitoringArgs:
    settings: StackSettings
    names: ResourceNames
    alerts_topic_arn: pulumi.Input[str]
    # role (e.g. "price-collector") -> the function; every function of the stack
    functions: dict[str, aws.lambda_.Function]
    state_machine: aws.sfn.StateMachine


def custom(names: ResourceNames, service: str, name: str, stat: str = "Average", label: str | None = None,
           **dimensions: str) -> MetricRef:
    """A metric a handler emits: the stack's namespace, its dimensions, then Powertools' `service`."""
    return MetricRef(names.metrics_namespace, name, {**dimensions, "service": service}, stat, label)


class Monitoring(pulumi.ComponentResource):
    """The stack's dashboard and alarms; alarms notify the alerts topic on ALARM and on OK."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("btc-trader:monitoring:Monitoring", name, None, opts)
        self.args = args
        settings, names = args.settings, args.names
        self._child = pulumi.ResourceOptions(parent=self)
        self._actions = [args.alerts_topic_arn]
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}

        for symbol in settings.symbols:
            self._no_price_alarm(name, symbol)
        self._workflow_alarm(name)
        for role, function in args.functions.items():
            self._error_rate_alarm(name, role, function)
        self._drawdown_alarm(name)
        self._kill_switch_alarm(name)
        self._unresolved_orders_alarm(name)
        for model in settings.ml_models:
            self._model_skill_alarm(name, model)

        self.dashboard_name = names.prefix
        function_names = {role: f.name for role, f in args.functions.items()}
        body = pulumi.Output.all(
            functions=function_names,
            state_machine=args.state_machine.arn,
            alarms={key: alarm.arn for key, alarm in self.alarms.items()},
        ).apply(lambda resolved: json.dumps(self.dashboard_body(
            resolved["functions"], resolved["state_machine"], list(resolved["alarms"].values()))))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=self.dashboard_name, dashboard_body=body, opts=self._child,
        )
        self.dashboard_url = (
            f"https://{names.region}.console.aws.amazon.com/cloudwatch/home?region={names.region}"
            f"#dashboards/dashboard/{self.dashboard_name}"
        )
        self.register_outputs({
            "dashboard": self.dashboard.dashboard_name,
            "dashboard_url": self.dashboard_url,
            "alarms": [alarm.name for alarm in self.alarms.values()],
        })

    # --- alarms ------------------------------------------------------------------------------

    def _alarm(self, resource: str, key: str, alarm_name: str, description: str, **kwargs: Any) -> None:
        self.alarms[key] = aws.cloudwatch.MetricAlarm(
            f"{resource}-{key}",
            name=f"{self.args.names.prefix}-{alarm_name}",
            alarm_description=description,
            alarm_actions=self._actions,
            ok_actions=self._actions,
            actions_enabled=True,
            opts=self._child,
            **kwargs,
        )

    @staticmethod
    def _single(metric: MetricRef, period: int) -> dict[str, Any]:
        return {"namespace": metric.namespace, "metric_name": metric.name, "dimensions": metric.dimensions,
                "statistic": metric.stat, "period": period}

    def _no_price_alarm(self, resource: str, symbol: str) -> None:
        settings, names = self.args.settings, self.args.names
        missed = settings.monitoring.missed_collections
        # CollectedPrice is emitted once per stored price; no sample in a period is a missed
        # collection, and no data at all (collector dead, schedule off) must page too.
        metric = custom(names, PRICE_COLLECTOR, "CollectedPrice", "SampleCount", symbol=symbol)
        self._alarm(
            resource, f"no-price-{symbol.lower()}", f"no-price-{symbol.lower()}",
            f"No {symbol} price stored for {missed} collection intervals of {settings.price_collection_interval} "
            "min (btc-trader:monitoring.missedCollections)",
            comparison_operator="LessThanThreshold", threshold=1, evaluation_periods=missed,
            datapoints_to_alarm=missed, treat_missing_data="breaching",
            **self._single(metric, settings.price_collection_interval * 60),
        )

    def _workflow_alarm(self, resource: str) -> None:
        settings = self.args.settings
        period = settings.trading_interval * 60
        queries = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=f"m{i}", return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=STATES_NAMESPACE, metric_name=outcome, stat="Sum", period=period,
                    dimensions={"StateMachineArn": self.args.state_machine.arn},
                ),
            )
            for i, outcome in enumerate(WORKFLOW_FAILURES, start=1)
        ]
        expression = " + ".join(f"FILL(m{i}, 0)" for i in range(1, len(WORKFLOW_FAILURES) + 1))
        queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id="failures", expression=expression, label="failed, timed-out and aborted executions",
            return_data=True,
        ))
        self._alarm(
            resource, "workflow-failures", "workflow-failures",
            f"Trading workflow executions failed, timed out or were aborted (at least "
            f"{settings.monitoring.workflow_failures} in {settings.trading_interval} min; "
            "btc-trader:monitoring.workflowFailures)",
            comparison_operator="GreaterThanOrEqualToThreshold", threshold=settings.monitoring.workflow_failures,
            evaluation_periods=1, treat_missing_data="notBreaching", metric_queries=queries,
        )

    def _error_rate_alarm(self, resource: str, role: str, function: aws.lambda_.Function) -> None:
        monitoring = self.args.settings.monitoring
        queries = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id, return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=LAMBDA_NAMESPACE, metric_name=metric_name, stat="Sum", period=LAMBDA_ERROR_PERIOD_S,
                    dimensions={"FunctionName": function.name},
                ),
            )
            for query_id, metric_name in (("errors", "Errors"), ("invocations", "Invocations"))
        ]
        queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id="errorRate", expression="IF(invocations > 0, 100 * errors / invocations, 0)",
            label=f"{role} error rate (%)", return_data=True,
        ))
        self._alarm(
            resource, f"{role}-error-rate", f"{role}-error-rate",
            f"{role}: more than {monitoring.lambda_error_rate_percent:g}% of invocations failed in each of "
            f"{monitoring.lambda_error_periods} periods of 5 min (btc-trader:monitoring.lambdaErrorRatePercent, "
            "lambdaErrorPeriods)",
            comparison_operator="GreaterThanThreshold", threshold=monitoring.lambda_error_rate_percent,
            evaluation_periods=monitoring.lambda_error_periods, datapoints_to_alarm=monitoring.lambda_error_periods,
            treat_missing_data="notBreaching", metric_queries=queries,
        )

    def drawdown_threshold(self) -> float:
        settings = self.args.settings
        return round(settings.max_drawdown_pct * settings.monitoring.drawdown_alarm_pct_of_limit / 100, 4)

    def _drawdown_alarm(self, resource: str) -> None:
        settings = self.args.settings
        metric = custom(self.args.names, RISK_MANAGER, "DrawdownPct", "Maximum")
        self._alarm(
            resource, "drawdown-near-limit", "drawdown-near-limit",
            f"Drawdown reached {self.drawdown_threshold():g}% ({settings.monitoring.drawdown_alarm_pct_of_limit:g}% "
            f"of maxDrawdownPct {settings.max_drawdown_pct:g}%, where the kill switch engages; "
            "btc-trader:monitoring.drawdownAlarmPctOfLimit)",
            comparison_operator="GreaterThanOrEqualToThreshold", threshold=self.drawdown_threshold(),
            evaluation_periods=1, treat_missing_data="notBreaching",
            **self._single(metric, settings.trading_interval * 60),
        )

    def _kill_switch_alarm(self, resource: str) -> None:
        self._engaged_alarm(
            resource, "kill-switch", "kill-switch-engaged",
            custom(self.args.names, RISK_MANAGER, "KillSwitchEngaged", "Maximum"),
            "The drawdown kill switch is engaged: no trades until an operator resets it "
            "(`btc-trader trading reset-kill-switch`)")

    def _unresolved_orders_alarm(self, resource: str) -> None:
        self._engaged_alarm(
            resource, "unresolved-orders", "unresolved-orders",
            custom(self.args.names, ORDER_RECONCILER, "UnresolvedOrders", "Maximum"),
            "An order's fate is unknown or it is still open: its symbol trades no more until the reconciler "
            "resolves it (README Trading: what an operator does when an order's fate is unknown)")

    def _engaged_alarm(self, resource: str, key: str, alarm_name: str, metric: MetricRef, description: str) -> None:
        """Alarms while a trading-interval's maximum of `metric` is at least 1 (a state that stops trading)."""
        self._alarm(
            resource, key, alarm_name, description,
            comparison_operator="GreaterThanOrEqualToThreshold", threshold=1,
            evaluation_periods=1, treat_missing_data="notBreaching",
            **self._single(metric, self.args.settings.trading_interval * 60),
        )

    def _model_skill_alarm(self, resource: str, model: str) -> None:
        monitoring = self.args.settings.monitoring
        metric = custom(self.args.names, PREDICTION_EVALUATOR, "ModelNetEdgeT", "Maximum", model=model)
        self._alarm(
            resource, f"model-skill-{model}", f"model-skill-{model}",
            f"Acting on model {model}'s calls lost money after fees and slippage (net-edge t below "
            f"{monitoring.min_model_skill:g}) over its scoring window for {monitoring.model_skill_hours} h; its "
            "ensemble weight is already falling to 0 (btc-trader:monitoring.minModelSkill, modelSkillHours)",
            comparison_operator="LessThanThreshold", threshold=monitoring.min_model_skill,
            evaluation_periods=monitoring.model_skill_hours, datapoints_to_alarm=monitoring.model_skill_hours,
            treat_missing_data="notBreaching", **self._single(metric, MODEL_SKILL_PERIOD_S),
        )

    # --- dashboard ---------------------------------------------------------------------------

    def dashboard_metrics(self, functions: dict[str, str], state_machine_arn: str) -> dict[str, list[MetricRef]]:
        """Every metric graph on the dashboard, by widget title: the alarmed custom metrics (the only
        ones billed) and the free AWS/Lambda and AWS/States metrics."""
        settings, names = self.args.settings, self.args.names
        symbols, models = settings.symbols, settings.ml_models
        return {
            "Prices stored per period (CollectedPrice samples)": [
                custom(names, PRICE_COLLECTOR, "CollectedPrice", "SampleCount", label=s, symbol=s) for s in symbols],
            "Net edge t per model (>= 2 earns weight)": [
                custom(names, PREDICTION_EVALUATOR, "ModelNetEdgeT", "Average", label=m, model=m)
                for m in models],
            "Drawdown, % and kill switch": [
                custom(names, RISK_MANAGER, "DrawdownPct", "Maximum", label="drawdown %"),
                custom(names, RISK_MANAGER, "KillSwitchEngaged", "Maximum", label="kill switch"),
            ],
            "Unresolved orders (the reconciler's count)": [
                custom(names, ORDER_RECONCILER, "UnresolvedOrders", "Maximum")],
            "Lambda errors": [MetricRef(LAMBDA_NAMESPACE, "Errors", {"FunctionName": n}, "Sum", role)
                              for role, n in functions.items()],
            "Lambda duration p95, ms": [MetricRef(LAMBDA_NAMESPACE, "Duration", {"FunctionName": n}, "p95", role)
                                        for role, n in functions.items()],
            "Lambda throttles": [MetricRef(LAMBDA_NAMESPACE, "Throttles", {"FunctionName": n}, "Sum", role)
                                 for role, n in functions.items()],
            "Trading workflow outcomes": [
                MetricRef(STATES_NAMESPACE, outcome, {"StateMachineArn": state_machine_arn}, "Sum",
                          outcome.removeprefix("Executions"))
                for outcome in WORKFLOW_OUTCOMES],
        }

    def dashboard_log_widgets(self) -> list[LogWidget]:
        """Graphs and breakdowns of the log measures, queried with Logs Insights when viewed."""
        models = self.args.settings.ml_models
        return [widget for widget in LOG_WIDGETS if widget.only_with_model in (None, *models)]

    def _annotations(self, title: str) -> list[dict[str, Any]]:
        settings = self.args.settings
        if title.startswith("Drawdown"):
            return [{"label": "alarm", "value": self.drawdown_threshold(), "color": "#ff7f0e"},
                    {"label": "kill switch (maxDrawdownPct)", "value": settings.max_drawdown_pct, "color": "#d62728"}]
        if title.startswith("Source divergence"):
            return [{"label": "maxSourceDivergenceBps", "value": settings.max_source_divergence_bps}]
        if title.startswith("Price age"):
            return [{"label": "maxPriceAgeSeconds", "value": settings.max_price_age_seconds}]
        if title.startswith("Net edge t"):
            return [{"label": "minModelSkill", "value": settings.monitoring.min_model_skill}]
        return []

    def dashboard_body(self, functions: dict[str, str], state_machine_arn: str, alarm_arns: list[str]) -> dict:
        """The dashboard JSON: a text header, the alarms' states, then one graph per metric group."""
        settings, names = self.args.settings, self.args.names
        width, height = 8, 6
        mode = "LIVE" if settings.enable_real_trading else "paper"
        widgets: list[dict[str, Any]] = [
            {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown": (
                f"# btc-trader `{names.stack}` — {mode} trading, models {', '.join(settings.ml_models)}\n"
                f"Symbols {', '.join(settings.symbols)}; prices every {settings.price_collection_interval} min, "
                f"trading every {settings.trading_interval} min. Custom metrics: namespace "
                f"`{names.metrics_namespace}`.")}},
            {"type": "alarm", "x": 0, "y": 2, "width": 24, "height": 3,
             "properties": {"title": "Alarms", "alarms": sorted(alarm_arns)}},
        ]
        graphs: list[tuple[str, list[Any]]] = [
            (title, [metric.widget_entry() for metric in metrics])
            for title, metrics in self.dashboard_metrics(functions, state_machine_arn).items()
        ]
        for index, (title, entries) in enumerate(graphs):
            properties: dict[str, Any] = {
                "title": title, "view": "timeSeries", "region": names.region, "period": DASHBOARD_PERIOD_S,
                "metrics": entries,
            }
            annotations = self._annotations(title)
            if annotations:
                properties["annotations"] = {"horizontal": annotations}
            widgets.append({"type": "metric", "x": (index % 3) * width, "y": 5 + (index // 3) * height,
                            "width": width, "height": height, "properties": properties})
        for index, widget in enumerate(self.dashboard_log_widgets(), start=len(graphs)):
            log_group = f"/aws/lambda/{functions[widget.service]}"
            widgets.append({"type": "log", "x": (index % 3) * width, "y": 5 + (index // 3) * height,
                            "width": width, "height": height, "properties": {
                                "title": widget.title, "region": names.region, "view": widget.view,
                                "query": widget.query(log_group)}})
        return {"start": "-PT24H", "periodOverride": "inherit", "widgets": widgets}
