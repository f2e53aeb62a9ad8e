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
    readme = (cost.Path(cost.__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split(cost.README_BEGIN)[1].split(cost.README_END)[0].strip()
    assert block == cost.readme_table(), "run `python -m btc_trader.cost` to regenerate the README table"


def test_the_metric_catalogue_is_what_the_handlers_emit():
    from tests.emitted_metrics import collect_emissions

    for stack in ("dev", "prod"):
        emitted = collect_emissions(load_stack_file(stack), ResourceNames(stack, "123456789012", "us-east-1"))
        custom = {e.name: {k for k, _ in e.dimensions} - {"service"} for e in emitted
                  if e.namespace == f"BtcTrader/{stack}" and e.name != "ColdStart"}
        for name, dims in custom.items():
            assert name in cost.EMITTED_SERIES and set(cost.EMITTED_SERIES[name]) == dims, name


def test_vpc_adds_its_nat():
    with_vpc = cost.estimate(load_stack_with_overrides("dev", {"network.vpc": "true"}), NAMES)
    assert with_vpc.by_service()["VPC"] == pytest.approx(730 * 0.05, abs=1.0)  # one NAT + its IPv4, little data
