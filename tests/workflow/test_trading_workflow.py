"""The real state machine definition, executed locally (moto) with handlers as its tasks."""

import contextlib
import json

import boto3
import pytest
from moto import mock_aws
from moto.sns.models import sns_backends

from btc_trader.local.run import local_run
from btc_trader.local.workflow_runner import (
    MOTO_CONFIG,
    failure_cause,
    handlers_as_lambdas,
    run_execution,
    visited_states,
)
from btc_trader.workflow import TRANSIENT_ERRORS, trading_workflow

INPUT = {"symbol": "BTC-USD", "execution_id": "exec-1", "requested_at": "2023-03-11T12:00:00Z"}
PREDICTION = {"status": "ok", "current_price": 20_000.0, "direction": "up", "confidence": 0.9}


@contextlib.contextmanager
def machine(handlers, mutate=None):
    topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
    with handlers_as_lambdas(handlers) as arns:
        definition = trading_workflow(arns["predict"], arns["risk"], arns["execute"], topic)
        if mutate:
            mutate(definition)
        arn = boto3.client("stepfunctions").create_state_machine(
            name="wf", roleArn="arn:aws:iam::123456789012:role/x", definition=json.dumps(definition))["stateMachineArn"]
        yield arn, topic


def published(topic):
    return [json.loads(m[1]) if m[1].startswith("{") else m[1]
            for m in sns_backends["123456789012"]["us-east-1"].topics[topic].sent_notifications]


@pytest.fixture
def aws():
    with mock_aws(config=MOTO_CONFIG):
        yield


def test_approved_path_executes_and_notifies(aws):
    seen = []
    with machine({
        "predict": lambda e: (seen.append(("predict", e)), PREDICTION)[1],
        "risk": lambda e: (seen.append(("risk", e)), {"approved": True, "action": "BUY", "reasons": []})[1],
        "execute": lambda e: (seen.append(("execute", e)), {"trade_id": "t1", "status": "FILLED"})[1],
    }) as (arn, topic):
        result = run_execution(arn, INPUT, "ok")
    assert result["status"] == "SUCCEEDED"
    state = json.loads(result["output"])
    assert state["prediction"] == PREDICTION and state["trade"]["status"] == "FILLED"
    assert seen[1][1]["prediction"] == PREDICTION, "each step sees the state so far"
    assert seen[2][1]["risk"]["approved"] is True
    assert visited_states(result["executionArn"]) == ["HasClock", "Predict", "CheckRisk", "Approved", "Execute", "Notify"]
    assert published(topic) == [{"trade_id": "t1", "status": "FILLED"}]


def test_rejection_path_ends_without_trading(aws):
    calls = []
    with machine({
        "predict": lambda e: PREDICTION,
        "risk": lambda e: {"approved": False, "action": "HOLD", "reasons": ["hold: within thresholds"]},
        "execute": lambda e: calls.append(e),
    }) as (arn, topic):
        result = run_execution(arn, INPUT, "rejected")
    assert result["status"] == "SUCCEEDED" and calls == []
    assert visited_states(result["executionArn"])[-1] == "Rejected"
    assert published(topic) == []


def test_failing_lambda_ends_in_alert_then_fail(aws):
    def broken(event):
        raise RuntimeError("DynamoDB unavailable")

    with machine({"predict": broken, "risk": lambda e: {}, "execute": lambda e: {}}) as (arn, topic):
        result = run_execution(arn, INPUT, "failing")
    assert result["status"] == "FAILED"
    assert visited_states(result["executionArn"])[-2:] == ["Alert", "Fail"]
    assert "DynamoDB unavailable" in failure_cause(result["executionArn"])
    (alert,) = published(topic)
    assert alert["Error"] == "RuntimeError" and "DynamoDB unavailable" in alert["Cause"]


def test_transient_errors_are_retried(aws):
    attempts = []

    def flaky(event):
        attempts.append(1)
        if len(attempts) < 3:
            raise type("TooManyRequestsException", (Exception,), {})("throttled")
        return PREDICTION

    def only_throttling(definition):
        # A custom error class stands in for Lambda's throttling, which moto cannot produce.
        definition["States"]["Predict"]["Retry"][0]["ErrorEquals"] = ["TooManyRequestsException"]

    with machine({"predict": flaky, "risk": lambda e: {"approved": False, "reasons": []},
                                 "execute": lambda e: {}}, only_throttling) as (arn, topic):
        result = run_execution(arn, INPUT, "retried")
    assert result["status"] == "SUCCEEDED" and len(attempts) == 3
    assert "Lambda.TooManyRequestsException" in TRANSIENT_ERRORS


def test_scheduled_runs_are_stamped_with_execution_name_and_time(aws):
    inputs = []
    with machine({"predict": lambda e: (inputs.append(e), PREDICTION)[1],
                                 "risk": lambda e: {"approved": False, "reasons": []}, "execute": lambda e: {}}) as (arn, topic):
        run_execution(arn, {"symbol": "BTC-USD"}, "scheduled-run")
    assert inputs[0]["execution_id"] == "scheduled-run" and inputs[0]["requested_at"].startswith("20")


@pytest.mark.realdata
def test_local_run_wallet_is_consistent_with_its_trades(shared_file, tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_TRADER_HOME", str(tmp_path))  # no emulator runs here: the run starts its own
    lines = []
    summary = local_run(shared_file("btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"), 40, emit=lines.append,
                        overrides={"riskThreshold": "0.1", "buyThresholdPct": "0.1", "sellThresholdPct": "-0.1"})
    decisions = [line for line in lines if line[:2] == "20"]
    assert summary.executions == {"SUCCEEDED": 40} and len(decisions) == 40
    assert "started a temporary one" in lines[0]  # no emulator was running: said so
    assert sum(summary.trades.values()) >= 1
    wallet = summary.wallet
    if wallet["btc"] == 0:  # flat: cash is the start plus realised PnL (fees are inside it)
        assert wallet["usd"] == pytest.approx(10_000 + wallet["realised_pnl_usd"], abs=0.02)
    else:
        assert summary.final_equity_usd > wallet["usd"]
    assert any("REFUSED" in line for line in lines) and any("FILLED" in line for line in lines)
