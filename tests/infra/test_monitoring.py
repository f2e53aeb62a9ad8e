"""The dashboard and the alarms watch only metrics that really exist.

The emitted set is not written down: tests/emitted_metrics.py runs every handler of the stack
on moto and collects the EMF it prints. Custom metrics must match it exactly (namespace, name,
every dimension including Powertools' `service`); AWS/Lambda and AWS/States metrics must name a
function or the state machine the program creates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file, load_stack_with_overrides
from btc_trader.telemetry import CATALOGUE, MEASURE_FIELD, VALUE_FIELD, metric_measures
from components.monitoring import LAMBDA_NAMESPACE, STATES_NAMESPACE, WORKFLOW_OUTCOMES
from tests.emitted_metrics import Emitted, Logged, collect_logged
from tests.infra.harness import ACCOUNT, REGION, RecordingMocks
from tests.infra.program_runs import outputs_of, run_main

LAMBDA_METRICS = {"Errors", "Invocations", "Duration", "Throttles", "ConcurrentExecutions"}
LOG_QUERY = re.compile(
    r"""SOURCE '/aws/lambda/([\w-]+)' \| filter measure in \[([^\]]+)\] \| stats \w+\(value(?:, \d+)?\) as \w+ by (.+)""")
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"


@dataclass
class Stack:
    name: str
    mocks: RecordingMocks
    emitted: set[Emitted]
    logged: set[Logged]

    @property
    def functions(self) -> set[str]:
        return outputs_of(self.mocks, "aws:lambda/function:Function", "name")

    @property
    def state_machines(self) -> set[str]:
        return outputs_of(self.mocks, "aws:sfn/stateMachine:StateMachine", "arn")

    @property
    def dashboard(self) -> dict[str, Any]:
        return json.loads(self.mocks.one(DASHBOARD).inputs["dashboardBody"])

    def alarms(self) -> dict[str, dict[str, Any]]:
        return {a.inputs["name"]: a.inputs for a in self.mocks.of_type(ALARM)}


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request) -> Stack:
    name = request.param
    emitted, logged = collect_logged(load_stack_file(name), ResourceNames(name, ACCOUNT, REGION))
    return Stack(name, run_main(name), emitted, logged)


def metric_problem(stack: Stack, namespace: str, name: str, dimensions: dict[str, str]) -> str | None:
    """Why this metric is not one the stack produces, or None when it is."""
    if namespace == LAMBDA_NAMESPACE:
        if name not in LAMBDA_METRICS or set(dimensions) != {"FunctionName"}:
            return f"{namespace} {name} {dimensions}: not a per-function Lambda metric"
        if dimensions["FunctionName"] not in stack.functions:
            return f"{namespace} {name}: no function {dimensions['FunctionName']!r} in the stack"
        return None
    if namespace == STATES_NAMESPACE:
        if name not in WORKFLOW_OUTCOMES or set(dimensions) != {"StateMachineArn"}:
            return f"{namespace} {name} {dimensions}: not a state-machine execution metric"
        if dimensions["StateMachineArn"] not in stack.state_machines:
            return f"{namespace} {name}: no state machine {dimensions['StateMachineArn']!r} in the stack"
        return None
    wanted = Emitted(namespace, name, frozenset(dimensions.items()))
    if wanted in stack.emitted:
        return None
    same_name = sorted(str(dict(e.dimensions)) for e in stack.emitted if (e.namespace, e.name) == (namespace, name))
    return f"{namespace} {name} {dimensions} is emitted by no handler (emitted with: {same_name or 'never'})"


def log_widget_problem(stack: Stack, query: str) -> str | None:
    """Why a Logs Insights widget would show nothing, or None when a handler logs what it reads."""
    match = LOG_QUERY.fullmatch(query)
    if not match:
        return f"unrecognised query {query!r}"
    function, measures, by = match.group(1), [m.strip().strip('"') for m in match.group(2).split(",")], match.group(3)
    if function not in stack.functions:
        return f"{query}: no function {function!r} in the stack"
    service = function.removeprefix(f"btc-trader-{stack.name}-")
    fields = {f.strip() for f in by.split(",") if not f.strip().startswith("bin(")}
    for measure in measures:
        logged = [entry for entry in stack.logged if (entry.service, entry.name) == (service, measure)]
        if not logged:
            return f"{query}: {service} never logs {measure}"
        if not all(fields <= entry.fields for entry in logged):
            return f"{query}: {measure} is logged without {sorted(fields)}"
    return None


def widget_entries(body: dict[str, Any]) -> list[list[Any]]:
    return [entry for w in body["widgets"] if w["type"] == "metric" for entry in w["properties"]["metrics"]]


def dashboard_problems(stack: Stack, body: dict[str, Any]) -> list[str]:
    problems = [log_widget_problem(stack, w["properties"]["query"]) for w in body["widgets"] if w["type"] == "log"]
    for entry in widget_entries(body):
        namespace, name, *rest = entry
        pairs = [item for item in rest if not isinstance(item, dict)]
        assert "." not in pairs, "no shorthand: every entry names its metric in full"
        problems.append(metric_problem(stack, namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return [p for p in problems if p]


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    if alarm.get("metricName"):
        return [(alarm["namespace"], alarm["metricName"], alarm.get("dimensions") or {})]
    return [(q["metric"]["namespace"], q["metric"]["metricName"], q["metric"].get("dimensions") or {})
            for q in alarm["metricQueries"] if q.get("metric")]


def test_every_dashboard_metric_is_emitted(stack):
    assert stack.emitted, "the handlers emitted nothing: the harness is broken"
    assert dashboard_problems(stack, stack.dashboard) == []


def test_every_alarm_watches_an_emitted_metric(stack):
    problems = [f"{name}: {problem}" for name, alarm in stack.alarms().items()
                for namespace, metric, dims in alarm_metrics(alarm)
                if (problem := metric_problem(stack, namespace, metric, dims))]
    assert problems == []


def test_the_check_catches_a_metric_nobody_emits(stack):
    body = stack.dashboard
    entry = next(e for e in widget_entries(body) if e[1] == "DrawdownPct")
    entry[entry.index("service") + 1] = "trade-executor"  # the right name, the wrong emitter
    body["widgets"].append({"type": "metric", "properties": {"metrics": [
        [f"BtcTrader/{stack.name}", "PortfolioValue", "service", "trade-executor", "mode", "paper", {}],
        [LAMBDA_NAMESPACE, "Errors", "FunctionName", "btc-trader-other-price-collector", {}],
    ]}})
    risk_log = f"/aws/lambda/btc-trader-{stack.name}-risk-manager"
    for query in (f"SOURCE '{risk_log}' | filter measure in [\"RiskRejections\"] | stats sum(value) as n by reason",
                  f"SOURCE '{risk_log}' | filter measure in [\"TradesExecuted\"] | stats sum(value) as n by side"):
        body["widgets"].append({"type": "log", "properties": {"query": query}})
    problems = dashboard_problems(stack, body)
    assert len(problems) == 5, problems


def test_only_alarmed_measures_are_billed_metrics(stack):
    """A custom metric costs a month's fee per series; every one must be watched by an alarm."""
    watched = {metric for alarm in stack.alarms().values() for _, metric, _ in alarm_metrics(alarm)}
    emitted_custom = {e.name for e in stack.emitted if e.namespace == f"BtcTrader/{stack.name}"}
    assert emitted_custom <= watched, emitted_custom - watched
    assert {m.name for m in metric_measures()} <= watched


def test_every_log_measure_has_a_dashboard_widget_or_a_reason(stack):
    shown = {m.strip().strip('"') for w in stack.dashboard["widgets"] if w["type"] == "log"
             for m in LOG_QUERY.fullmatch(w["properties"]["query"]).group(2).split(",")}
    logged = {entry.name for entry in stack.logged}
    assert logged, "the handlers logged no measure: the harness is broken"
    assert all(CATALOGUE[name].sink == "log" for name in logged)
    unshown = logged - shown
    # Throughput counters stay in the logs for ad-hoc queries (`btc-trader local logs`, Logs Insights).
    assert unshown <= {"PricesCollected", "DuplicateCollections", "ModelSuccess", "HistoryItemsRead",
                       "PredictionsScored"}, unshown
    for entry in stack.logged:
        assert {MEASURE_FIELD, VALUE_FIELD, *CATALOGUE[entry.name].dimensions} <= entry.fields


def test_dashboard_shows_what_the_issue_names(stack):
    settings = load_stack_file(stack.name)
    shown = {(e[0], e[1], tuple(e[2:-1])) for e in widget_entries(stack.dashboard) if isinstance(e[0], str)}
    logged_widgets = " ".join(w["properties"]["query"] for w in stack.dashboard["widgets"] if w["type"] == "log")
    names = {name for _, name, _ in shown} | set(re.findall(r'"(\w+)"', logged_widgets))
    assert {"PredictionAccuracy", "TradeSuccessRate", "PortfolioValue", "RiskScore", "PriceAgeSeconds",
            "CollectedPrice", "SourceFailures", "SourceDivergenceBps", "BedrockInputTokens", "BedrockOutputTokens",
            "DrawdownPct", "KillSwitchEngaged", "Errors", "Duration", "Throttles", "ExecutionsFailed",
            "ExecutionsSucceeded", "RiskRejections", "ModelFailure", "PredictionRefused"} <= names
    skill_models = {dims[1] for _, name, dims in shown if name == "ModelNetEdgeT"}
    assert skill_models == set(settings.ml_models)
    functions = {dims[1] for _, name, dims in shown if name == "Errors"}
    assert functions == stack.functions and len(functions) == 5
    alarm_widget = next(w for w in stack.dashboard["widgets"] if w["type"] == "alarm")
    assert set(alarm_widget["properties"]["alarms"]) == outputs_of(stack.mocks, ALARM, "arn")


def test_alarms_notify_the_alerts_topic_with_thresholds_from_settings(stack):
    settings = load_stack_file(stack.name)
    prefix = f"btc-trader-{stack.name}"
    topic = outputs_of(stack.mocks, "aws:sns/topic:Topic", "arn")
    alarms = stack.alarms()
    expected = {f"{prefix}-no-price-btc-usd", f"{prefix}-workflow-failures", f"{prefix}-drawdown-near-limit",
                f"{prefix}-kill-switch-engaged"}
    expected |= {f"{prefix}-{role}-error-rate" for role in
                 ("price-collector", "ml-predictor", "prediction-evaluator", "risk-manager", "trade-executor")}
    expected |= {f"{prefix}-model-skill-{model}" for model in settings.ml_models}
    assert set(alarms) == expected
    for alarm in alarms.values():
        assert set(alarm["alarmActions"]) == set(alarm["okActions"]) == topic, alarm["name"]
        assert alarm["alarmDescription"]

    no_price = alarms[f"{prefix}-no-price-btc-usd"]
    assert no_price["treatMissingData"] == "breaching"
    assert no_price["period"] == settings.price_collection_interval * 60
    assert no_price["evaluationPeriods"] == settings.monitoring.missed_collections == 3
    assert (no_price["statistic"], no_price["comparisonOperator"], no_price["threshold"]) == (
        "SampleCount", "LessThanThreshold", 1)

    drawdown = alarms[f"{prefix}-drawdown-near-limit"]
    assert drawdown["threshold"] == pytest.approx(settings.max_drawdown_pct * 0.8)
    assert drawdown["comparisonOperator"] == "GreaterThanOrEqualToThreshold"

    error_rate = alarms[f"{prefix}-trade-executor-error-rate"]
    assert error_rate["threshold"] == settings.monitoring.lambda_error_rate_percent
    (expression,) = [q for q in error_rate["metricQueries"] if q.get("expression")]
    assert expression["returnData"] is True and "100 * errors / invocations" in expression["expression"]

    workflow = alarms[f"{prefix}-workflow-failures"]
    watched = {q["metric"]["metricName"] for q in workflow["metricQueries"] if q.get("metric")}
    assert watched == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}

    for model in settings.ml_models:
        skill = alarms[f"{prefix}-model-skill-{model}"]
        assert (skill["comparisonOperator"], skill["threshold"]) == ("LessThanThreshold", 0)
        assert skill["evaluationPeriods"] == skill["datapointsToAlarm"] == settings.monitoring.model_skill_hours


def test_thresholds_follow_stack_overrides():
    mocks = run_main("dev", {"btc-trader:monitoring": {"lambdaErrorRatePercent": 25, "missedCollections": 5,
                                                       "drawdownAlarmPctOfLimit": 50}})
    alarms = {a.inputs["name"]: a.inputs for a in mocks.of_type(ALARM)}
    assert alarms["btc-trader-dev-price-collector-error-rate"]["threshold"] == 25
    assert alarms["btc-trader-dev-no-price-btc-usd"]["evaluationPeriods"] == 5
    assert alarms["btc-trader-dev-drawdown-near-limit"]["threshold"] == pytest.approx(5.0)


def test_alarm_window_over_a_day_is_refused():
    from btc_trader.stack.settings import SettingsError

    with pytest.raises(SettingsError, match="monitoring.missedCollections times priceCollectionInterval"):
        load_stack_with_overrides("dev", {"priceCollectionInterval": "600", "tradingInterval": "600",
                                          "maxPriceAgeSeconds": "36000", "monitoring.missedCollections": "3"})


def test_metrics_of_two_stacks_never_mix():
    dev, prod = (ResourceNames(s, ACCOUNT, REGION).metrics_namespace for s in ("dev", "prod"))
    assert dev != prod
