"""The dashboard and every alarm watch metrics some handler really emits — nothing else."""

from __future__ import annotations

import ast
import json
import runpy
from pathlib import Path

import pytest

from btc_trader.local.invoke import FUNCTIONS
from components import lambda_packaging
from components.monitoring import METRICS, alarm_specs
from components.naming import ResourceNames
from components.settings import PROJECT_ROOT, load_stack_file, load_stack_with_overrides
from tests.infra.harness import ACCOUNT, REGION, run_program


def _names(node: ast.expr) -> set[str]:
    """The metric names a `name=` argument can take (a literal, or a literal if/else)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _names(node.body) | _names(node.orelse)
    raise AssertionError(f"metric name is not a literal at line {node.lineno}: keep names greppable")


def _keyword(call: ast.Call, key: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == key), None)


def emitted_by_source() -> dict[tuple[str, str], frozenset[str]]:
    """(function, metric) -> dimension names, read from every handler's Powertools calls."""
    found: dict[tuple[str, str], frozenset[str]] = {}
    for function, module in FUNCTIONS.items():
        tree = ast.parse(Path(PROJECT_ROOT / (module.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_metric":
                for name in _names(_keyword(node, "name")):
                    found[(function, name)] = frozenset({"service"})
            if isinstance(node, ast.With):
                for item in node.items:
                    call = item.context_expr
                    if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "single_metric":
                        dims = {"service"}
                        for inner in ast.walk(node):
                            if isinstance(inner, ast.Call) and getattr(inner.func, "attr", None) == "add_dimension":
                                dims.add(_keyword(inner, "name").value)
                        for name in _names(_keyword(call, "name")):
                            found[(function, name)] = frozenset(dims)
    return found


EMITTED = emitted_by_source()


def test_the_catalogue_is_what_the_handlers_emit():
    for name, (function, extra) in METRICS.items():
        assert EMITTED.get((function, name)) == frozenset({"service", *extra}), name


@pytest.mark.realdata
def test_what_a_local_run_emits_is_in_the_source_reading(tmp_path, monkeypatch):
    """Cross-check of the static reading: the EMF lines a real run writes, from every handler."""
    from btc_trader.local.logs import log_dir
    from btc_trader.local.run import local_run

    monkeypatch.setenv("BTC_TRADER_HOME", str(tmp_path))
    local_run(None, 3, online=lambda: False, emit=lambda line: None)
    seen = set()
    for path in log_dir("dev").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
                assert directive["Namespace"] == "BtcTrader/dev"
                dims = frozenset(d for group in directive["Dimensions"] for d in group)
                for metric in directive["Metrics"]:
                    if metric["Name"] != "ColdStart":  # Powertools' own, with function_name
                        seen.add((path.stem, metric["Name"], dims))
    assert {function for function, _, _ in seen} >= {"price-collector", "ml-predictor", "risk-manager"}
    for function, name, dims in seen:
        assert EMITTED.get((function, name)) == dims, (function, name, dims)


@pytest.fixture(scope="module", params=["dev", "prod"])
def program(request, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(lambda_packaging, "build_dependency_layer", lambda settings: tmp_path_factory.mktemp("layer"))
    mocks = run_program(request.param, lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")))
    mp.undo()
    return request.param, mocks


def _check_metric(stack, mocks, namespace, name, dimensions):
    names = ResourceNames(stack, ACCOUNT, REGION)
    settings = load_stack_file(stack)
    functions = {r.inputs["name"] for r in mocks.of_type("aws:lambda/function:Function")}
    (machine,) = mocks.of_type("aws:sfn/stateMachine:StateMachine")
    if namespace == "AWS/Lambda":
        assert name in {"Errors", "Duration", "Throttles", "Invocations"} and dimensions["FunctionName"] in functions
    elif namespace == "AWS/States":
        assert dimensions == {"StateMachineArn": f"arn:aws:sfn:{REGION}:{ACCOUNT}:statemachine/{machine.inputs['name']}"}
    else:
        assert namespace == names.metrics_namespace, namespace
        function = dimensions["service"]
        assert EMITTED.get((function, name)) == frozenset(dimensions), (name, dimensions)
        allowed = {"model": set(settings.ml_models), "source": set(settings.price_sources),
                   "symbol": set(settings.symbols), "mode": {"live" if settings.enable_real_trading else "paper"}}
        for key, value in dimensions.items():
            assert key not in allowed or value in allowed[key], (name, key, value)


def test_every_dashboard_widget_watches_an_emitted_metric(program):
    stack, mocks = program
    (dashboard,) = mocks.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    rows = [row for widget in body["widgets"] for row in widget["properties"]["metrics"]]
    shown = {row[1] for row in rows}
    assert {"PredictionAccuracy", "TradeSuccessRate", "PortfolioValue", "RiskScore", "PriceAgeSeconds",
            "SourceFailures", "SourceDivergenceBps", "Errors", "Duration", "Throttles", "ExecutionsFailed"} <= shown
    for row in rows:
        _check_metric(stack, mocks, row[0], row[1], dict(zip(row[2::2], row[3::2], strict=True)))


def test_every_alarm_watches_an_emitted_metric_and_notifies_the_topic(program):
    stack, mocks = program
    (topic,) = mocks.of_type("aws:sns/topic:Topic")
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:topic/{topic.inputs['name']}"
    alarms = mocks.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    settings = load_stack_file(stack)
    assert len(alarms) == len(alarm_specs(settings, ResourceNames(stack, ACCOUNT, REGION), "arn"))
    for alarm in alarms:
        inputs = alarm.inputs
        assert inputs["alarmActions"] == [topic_arn] and inputs["okActions"] == [topic_arn], alarm.name
        if "metricQueries" in inputs:
            for query in inputs["metricQueries"]:
                if "metric" in query:
                    metric = query["metric"]
                    _check_metric(stack, mocks, metric["namespace"], metric["metricName"], metric["dimensions"])
        else:
            _check_metric(stack, mocks, inputs["namespace"], inputs["metricName"], inputs["dimensions"])


def test_alarm_thresholds_come_from_settings():
    settings = load_stack_with_overrides("prod", {"maxDrawdownPct": "20", "monitoring.lambdaErrorRatePct": "2",
                                                  "monitoring.missingPriceIntervals": "4"})
    specs = {spec.name.removeprefix("btc-trader-prod-"): spec
             for spec in alarm_specs(settings, ResourceNames("prod", ACCOUNT, REGION), "arn")}
    assert specs["drawdown-near-limit"].threshold == 16  # 80% of 20%
    assert specs["ml-predictor-error-rate"].threshold == 2
    no_price = specs["no-price"]
    assert no_price.evaluation_periods == 4 and no_price.treat_missing_data == "breaching"
    assert no_price.metric["period"] == settings.price_collection_interval * 60
    assert {f"{model}-worse-than-persistence" for model in settings.ml_models} <= set(specs)


def test_an_alarm_window_cloudwatch_refuses_is_a_settings_error():
    from components.settings import SettingsError

    with pytest.raises(SettingsError, match="missingPriceIntervals x priceCollectionInterval"):
        load_stack_with_overrides("dev", {"monitoring.missingPriceIntervals": "60", "priceCollectionInterval": "30",
                                          "tradingInterval": "30", "maxPriceAgeSeconds": "3600"})
