"""The real state machine definition, executed locally (moto) with handlers as its tasks."""

import contextlib
import json
import threading

import boto3
import pytest
from moto import mock_aws
from moto.sns.models import sns_backends

from btc_trader.local import workers
from btc_trader.local.run import local_run
from btc_trader.local.workflow_runner import (
    MOTO_CONFIG,
    failure_cause,
    handlers_as_lambdas,
    run_execution,
    visited_states,
)
from btc_trader.storage_schema import TRADING_STATE
from btc_trader.workflow import TRANSIENT_ERRORS, lease_seconds, trading_workflow

INPUT = {"symbol": "BTC-USD", "execution_id": "exec-1", "requested_at": "2023-03-11T12:00:00Z"}
PREDICTION = {"status": "ok", "current_price": 20_000.0, "direction": "up", "confidence": 0.9}


@contextlib.contextmanager
def machine(handlers, mutate=None):
    topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
    with handlers_as_lambdas(handlers) as arns:
        definition = trading_workflow(arns["predict"], arns["risk"], arns["execute"], topic, state_table=STATE_TABLE)
        if mutate:
            mutate(definition)
        arn = boto3.client("stepfunctions").create_state_machine(
            name="wf", roleArn="arn:aws:iam::123456789012:role/x", definition=json.dumps(definition))["stateMachineArn"]
        yield arn, topic


def published(topic):
    return [json.loads(m[1]) if m[1].startswith("{") else m[1]
            for m in sns_backends["123456789012"]["us-east-1"].topics[topic].sent_notifications]


STATE_TABLE = "state"


@pytest.fixture
def aws():
    from tests.aws_fakes import create_table

    with mock_aws(config=MOTO_CONFIG):
        create_table(TRADING_STATE, STATE_TABLE)
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
    assert visited_states(result["executionArn"]) == ["HasClock", "Predict", "CheckRisk", "Approved", "Execute", "Notify",
                                                      "ReleaseAfterTrade", "Traded"]
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
    assert visited_states(result["executionArn"])[-2:] == ["ReleaseAfterRejection", "Rejected"]
    assert published(topic) == []


def test_failing_lambda_ends_in_alert_then_fail(aws):
    def broken(event):
        raise RuntimeError("DynamoDB unavailable")

    with machine({"predict": broken, "risk": lambda e: {}, "execute": lambda e: {}}) as (arn, topic):
        result = run_execution(arn, INPUT, "failing")
    assert result["status"] == "FAILED"
    assert visited_states(result["executionArn"])[-4:] == ["Alert", "AlertBeforeOrder", "ReleaseAfterAlert", "Fail"]
    assert "DynamoDB unavailable" in failure_cause(result["executionArn"])
    (alert,) = published(topic)
    assert alert["error"]["Error"] == "RuntimeError" and "DynamoDB unavailable" in alert["error"]["Cause"]
    assert alert["symbol"] == "BTC-USD" and alert["execution_id"] == "exec-1"
    assert alert["client_order_id"] == "none" and alert["trade_id"].startswith("none: failed before the risk decision")


def test_alert_after_the_decision_names_the_order(aws):
    def broken(event):
        raise RuntimeError("exchange unreachable")

    risk = {"approved": True, "action": "BUY", "reasons": [], "trade_id": "btct-abc", "client_order_id": "btct-abc"}
    with machine({"predict": lambda e: PREDICTION, "risk": lambda e: risk, "execute": broken}) as (arn, topic):
        result = run_execution(arn, INPUT, "failing-execute")
    assert result["status"] == "FAILED"
    assert visited_states(result["executionArn"])[-3:] == ["AlertWithOrder", "ReleaseAfterAlert", "Fail"]
    (alert,) = published(topic)
    assert {k: alert[k] for k in ("symbol", "execution_id", "trade_id", "client_order_id")} == {
        "symbol": "BTC-USD", "execution_id": "exec-1", "trade_id": "btct-abc", "client_order_id": "btct-abc"}
    assert "exchange unreachable" in alert["error"]["Cause"]


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
    # On the built bundles in runtime workers (in-process, said so, when the build or python3.12 is missing).
    monkeypatch.setenv(workers.IN_PROCESS_VARIABLE, "0")
    pool = workers.WorkerPool()
    monkeypatch.setattr(workers, "_POOL", pool)
    lines = []
    try:
        summary = local_run(shared_file("btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"), 40, emit=lines.append,
                            overrides={"riskThreshold": "0.1", "buyThresholdPct": "0.1", "sellThresholdPct": "-0.1"})
    finally:
        pool.close()
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


# --- the per-symbol lease, on the real state machine with the real handlers (issue #15) ---------


@pytest.fixture
def real_trading(aws, monkeypatch):
    """The dev stack's tables, kill switch, a stored price, and the real risk and execution handlers."""
    from btc_trader.stack.naming import ResourceNames
    from tests.aws_fakes import FakeLambdaContext, trading_handlers

    names = ResourceNames("dev", "123456789012", "us-east-1")
    risk_manager, trade_executor = trading_handlers(monkeypatch, names)
    yield names, risk_manager, trade_executor, FakeLambdaContext()


FULL_PREDICTION = {"status": "ok", "as_of": "2023-03-11T11:59:50Z", "current_price": 20_000.0, "price_age_s": 10,
                   "predicted_price": 20_300.0, "horizon_minutes": 60, "direction": "up", "confidence": 0.9,
                   "models": []}


def start(arn, name):
    payload = {**INPUT, "execution_id": name}
    return boto3.client("stepfunctions").start_execution(stateMachineArn=arn, name=name,
                                                          input=json.dumps(payload))["executionArn"]


def wait(execution_arn, timeout_s=60):
    import time

    client, deadline = boto3.client("stepfunctions"), time.monotonic() + timeout_s
    while (described := client.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not end"
        time.sleep(0.02)
    return described


def test_two_overlapping_executions_exactly_one_trades(real_trading):
    names, risk_manager, trade_executor, context = real_trading
    a_decided, b_decided = threading.Event(), threading.Event()

    def risk(event):
        try:
            return risk_manager.lambda_handler(event, context)
        finally:
            (a_decided if event["execution_id"] == "run-a" else b_decided).set()

    def execute(event):
        if event["execution_id"] == "run-a":
            assert b_decided.wait(30), "run-b never reached CheckRisk"  # A holds the lease meanwhile
        return trade_executor.lambda_handler(event, context)

    definition_table = names.table("trading-state")
    topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
    with handlers_as_lambdas({"predict": lambda e: FULL_PREDICTION, "risk": risk, "execute": execute}) as arns:
        definition = trading_workflow(arns["predict"], arns["risk"], arns["execute"], topic,
                                      state_table=definition_table)
        arn = boto3.client("stepfunctions").create_state_machine(
            name="overlap", roleArn="arn:aws:iam::123456789012:role/x", definition=json.dumps(definition))[
            "stateMachineArn"]
        run_a = start(arn, "run-a")
        assert a_decided.wait(30)
        run_b = start(arn, "run-b")  # overlaps: run-a is still executing
        a, b = wait(run_a), wait(run_b)
    assert a["status"] == b["status"] == "SUCCEEDED"
    a_state, b_state = json.loads(a["output"]), json.loads(b["output"])
    assert a_state["trade"]["status"] == "FILLED"
    assert "trade" not in b_state and b_state["risk"]["reasons"][0].startswith(
        "lease: BTC-USD is held by execution run-a until epoch ")
    assert visited_states(run_b)[-2:] == ["ReleaseAfterRejection", "Rejected"]
    dynamodb = boto3.client("dynamodb")
    assert dynamodb.scan(TableName=names.table("trades"))["Count"] == 1
    # run-b's release did not remove run-a's lease; run-a's own release did, when it ended.
    assert "Item" not in dynamodb.get_item(TableName=definition_table, Key={"symbol": {"S": "lease#BTC-USD"}})
    assert visited_states(run_a)[-2:] == ["ReleaseAfterTrade", "Traded"]


def test_the_lease_is_released_on_every_ending(real_trading):
    names, risk_manager, _, context = real_trading
    table = names.table("trading-state")
    topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]

    def broken(event):
        raise RuntimeError("exchange unreachable")

    def lease():
        return boto3.client("dynamodb").get_item(TableName=table, Key={"symbol": {"S": "lease#BTC-USD"}}).get("Item")

    hold = {**FULL_PREDICTION, "predicted_price": 20_010.0}
    handlers = {"predict": lambda e: hold if e["execution_id"] == "run-hold" else FULL_PREDICTION,
                "risk": lambda e: risk_manager.lambda_handler(e, context), "execute": broken}
    outcomes = {}
    with handlers_as_lambdas(handlers) as arns:
        definition = trading_workflow(arns["predict"], arns["risk"], arns["execute"], topic, state_table=table)
        arn = boto3.client("stepfunctions").create_state_machine(
            name="every-ending", roleArn="arn:aws:iam::123456789012:role/x",
            definition=json.dumps(definition))["stateMachineArn"]
        for name in ("hold", "alert"):
            outcomes[name] = wait(start(arn, f"run-{name}"))
            assert lease() is None, f"{name}: the lease outlived the execution"
    assert outcomes["hold"]["status"] == "SUCCEEDED" and outcomes["alert"]["status"] == "FAILED"


def test_lease_expiry_is_derived_from_timeouts_retries_and_backoff():
    definition = trading_workflow("p", "r", "e", "t", state_table="s", lambda_timeout_s=60)
    # CheckRisk and Execute: 3 attempts of 70 s + 2 + 4 s backoff; then Notify, the alert and the
    # release: 3 attempts of 10 s + 1 + 2 s each; plus the transition margin.
    assert lease_seconds(definition) == 2 * (3 * 70 + 6) + 3 * (3 * 10 + 3) + 15
    definition["States"]["Execute"]["TimeoutSeconds"] = 170
    assert lease_seconds(definition) == 2 * (3 * 70 + 6) + 300 + 3 * (3 * 10 + 3) + 15
    del definition["States"]["Notify"]["TimeoutSeconds"]
    with pytest.raises(ValueError, match="no TimeoutSeconds"):
        lease_seconds(definition)


def test_a_lease_as_long_as_two_trading_intervals_is_refused_by_settings(tmp_path):
    from btc_trader.local.run import local_run
    from btc_trader.stack.settings import SettingsError, load_stack_file, load_stack_with_overrides

    prod = load_stack_file("prod")  # the shipped stack passes
    assert prod.lease_seconds < 2 * prod.trading_interval * 60
    slow = load_stack_with_overrides("prod", {"lambda": json.dumps({"timeoutSeconds": 120})})
    with pytest.raises(SettingsError, match="tradingInterval must be longer than half the per-symbol lease"):
        slow.check_workflow_lease()
    # A local run executes the workflow: refused before anything starts.
    with pytest.raises(SettingsError, match="lease must be shorter than two trading intervals"):
        local_run(tmp_path / "none.csv", 1, overrides={"tradingInterval": "4", "priceCollectionInterval": "1"})
