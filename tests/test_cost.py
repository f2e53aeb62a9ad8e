"""`btc-trader cost`: arithmetic, its inputs, the README table."""

from __future__ import annotations

import json

import pytest

from btc_trader import cost
from btc_trader.cli import main
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file, load_stack_with_overrides

NAMES = ResourceNames("dev", "123456789012", "us-east-1")


def lines(estimate, service):
    return [line for line in estimate.lines if line.service == service]


def test_lambda_line_by_hand():
    settings = load_stack_with_overrides("dev", {"priceCollectionInterval": "10", "tradingInterval": "10",
                                                 "lambda.memoryMb": "1024", "mlModels": "[custom]"})
    work = cost.Workload(trades_per_day=0)
    estimate = cost.estimate(settings, NAMES, workload=work)
    collector = next(line for line in lines(estimate, "Lambda") if line.item.startswith("price-collector"))
    invocations = 730 * 60 / 10  # 4,380 a month
    expected = invocations / 1e6 * 0.20 + invocations * 1.5 * 1.0 * 0.0000166667
    assert collector.quantity == invocations and collector.usd == pytest.approx(expected)
    (workflow,) = lines(estimate, "Step Functions")
    # HasClock, Stamp, Predict, CheckRisk, Approved, ReleaseAfterRejection (the lease), Rejected
    assert workflow.quantity == invocations * 7
    assert workflow.usd == pytest.approx(invocations * 7 / 1000 * 0.025)


def test_transitions_are_walked_through_the_asl():
    assert cost.workflow_transitions() == {"rejected": 7, "traded": 9}


def test_halving_the_interval_doubles_the_collector():
    slow = cost.estimate(load_stack_with_overrides("dev", {"priceCollectionInterval": "10", "tradingInterval": "10"}), NAMES)
    fast = cost.estimate(load_stack_with_overrides("dev", {"priceCollectionInterval": "5", "tradingInterval": "10"}), NAMES)
    usd = lambda e: next(line.usd for line in e.lines if line.item.startswith("price-collector"))  # noqa: E731
    assert usd(fast) == pytest.approx(2 * usd(slow))


def test_models_and_options_appear_only_when_enabled():
    prod = cost.estimate(load_stack_file("prod"), NAMES)
    assert {"Lambda", "Step Functions", "DynamoDB", "S3", "SNS", "CloudWatch", "X-Ray", "Bedrock", "SageMaker",
            "Secrets Manager", "KMS"} <= set(prod.by_service())
    technical = cost.estimate(load_stack_with_overrides("dev", {"mlModels": "[custom]"}), NAMES)
    assert not {"Bedrock", "SageMaker", "Timestream", "Secrets Manager"} & set(technical.by_service())
    with_timestream = cost.estimate(load_stack_with_overrides("dev", {"timestream.enabled": "true"}), NAMES)
    assert with_timestream.by_service()["Timestream"] > 0


def test_prod_is_well_under_a_quarter_of_the_original():
    prod = load_stack_file("prod")
    original, workload = cost.original_design(prod)
    ours, theirs = cost.estimate(prod, NAMES), cost.estimate(original, NAMES, workload=workload)
    assert ours.total < 0.25 * theirs.total
    assert theirs.by_service()["SageMaker"] == pytest.approx(730 * 0.23, abs=0.01)  # the always-on instance


def test_unknown_bedrock_model_is_named():
    settings = load_stack_with_overrides("dev", {"bedrock.modelId": "meta.llama9-70b"})
    with pytest.raises(cost.CostError, match="no Bedrock price for 'meta.llama9-70b'"):
        cost.estimate(settings, NAMES)


def test_cli_json_and_errors(capsys):
    assert main(["cost", "--stack", "prod", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"stack", "original_design", "ratio_to_original"}
    assert data["stack"]["total_usd_month"] == pytest.approx(sum(data["stack"]["by_service"].values()), abs=0.05)
    assert main(["cost", "--set", "tradingInterval=0"]) == 2
    assert "tradingInterval" in capsys.readouterr().err
    assert main(["cost", "--stack", "prod"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| service | prod stack | original design |") and "of the original design's" in out


def test_readme_table_is_the_codes():
    from tests.conftest import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split(cost.README_BEGIN)[1].split(cost.README_END)[0].strip()
    assert block == cost.readme_table(), "run `python -m btc_trader.cost` to regenerate the README table"


def test_the_metric_catalogue_is_what_the_handlers_emit():
    """Billed series are counted from the catalogue: the handlers must emit exactly its metrics as
    EMF and its log measures as log lines, nothing else (no ColdStart series either)."""
    from btc_trader.telemetry import CATALOGUE
    from tests.emitted_metrics import collect_logged

    for stack in ("dev", "prod"):
        emitted, logged = collect_logged(load_stack_file(stack), ResourceNames(stack, "123456789012", "us-east-1"))
        custom = {e.name: {k for k, _ in e.dimensions} - {"service"} for e in emitted if e.namespace == f"BtcTrader/{stack}"}
        assert custom, "no EMF at all: the harness is broken"
        for name, dims in custom.items():
            assert name in CATALOGUE and CATALOGUE[name].sink == "metric", name
            assert set(CATALOGUE[name].dimensions) == dims, name
        assert {entry.name for entry in logged} and all(CATALOGUE[e.name].sink == "log" for e in logged)


def test_series_follow_the_catalogue_symbols_and_models():
    dev, prod = load_stack_file("dev"), load_stack_file("prod")
    # CollectedPrice per symbol, DrawdownPct, KillSwitchEngaged, ModelNetEdgeT per model.
    assert cost.custom_metric_count(dev) == 1 + 1 + 1 + len(dev.ml_models)
    two_symbols = load_stack_with_overrides("prod", {"symbols": "[BTC-USD, ETH-USD]"})
    assert cost.custom_metric_count(two_symbols) == cost.custom_metric_count(prod) + 1


def test_the_free_tier_is_shown_apart_and_never_subtracted():
    estimate = cost.estimate(load_stack_file("dev"), NAMES)
    cloudwatch = lines(estimate, "CloudWatch")
    dashboard = next(line for line in cloudwatch if line.item == "dashboard")
    assert dashboard.usd == 3.00
    assert any("free tier, not subtracted" in note for note in estimate.notes)


def test_logs_insights_scanning_grows_with_dashboard_views():
    settings = load_stack_file("prod")
    scanned = lambda views: next(  # noqa: E731
        line for line in cost.estimate(settings, NAMES, workload=cost.Workload(dashboard_views_per_day=views)).lines
        if line.item.startswith("Logs Insights"))
    assert scanned(20).quantity == pytest.approx(2 * scanned(10).quantity, rel=0.01)
    assert scanned(10).usd == pytest.approx(scanned(10).quantity * 0.005, rel=0.01)  # quantity is rounded


@pytest.mark.parametrize(("stack", "target"), [("dev", 10.0), ("prod", 25.0)])
def test_the_stacks_meet_their_monthly_targets(stack, target):
    """dev at most 10 USD and prod at most 25 USD a month, Bedrock tokens included, every alarm kept."""
    estimate = cost.estimate(load_stack_file(stack), ResourceNames(stack, "123456789012", "us-east-1"))
    assert estimate.total <= target, estimate.by_service()


def test_the_alarm_metric_count_is_the_monitoring_components():
    from tests.infra.program_runs import run_main

    for stack in ("dev", "prod"):
        alarms = [a.inputs for a in run_main(stack).of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
        watched = sum(1 if a.get("metricName") else sum(1 for q in a["metricQueries"] if q.get("metric"))
                      for a in alarms)
        assert cost.alarm_metric_count(load_stack_file(stack)) == watched


def test_vpc_adds_its_nat():
    with_vpc = cost.estimate(load_stack_with_overrides("dev", {"network.vpc": "true"}), NAMES)
    assert with_vpc.by_service()["VPC"] == pytest.approx(730 * 0.05, abs=1.0)  # one NAT + its IPv4, little data
