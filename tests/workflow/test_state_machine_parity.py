"""The fast executor (`btc_trader.local.state_machine`) against moto's Step Functions.

Both execute the real trading workflow definition with the same handlers and the same events;
every scenario compares how the execution ended, its output, the states it entered, the alerts
it published, the lease it left and what each handler was given. Then a replay of real (or the
labelled synthetic) candles through `local run` with each executor: the same decisions, trades
and wallet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from moto.sns.models import sns_backends

from btc_trader.local.state_machine import (
    AwsServiceIntegrations,
    DefinitionNotSupported,
    StateMachine,
    lambda_error,
)
from btc_trader.local.workflow_runner import (
    MOTO_CONFIG,
    handlers_as_lambdas,
    run_execution,
    visited_states,
)
from btc_trader.storage_schema import TRADING_STATE
from btc_trader.workflow import trading_workflow

STATE_TABLE = "state"
INPUT = {"symbol": "BTC-USD", "execution_id": "exec-1", "requested_at": "2023-03-11T12:00:00Z"}
PREDICTION = {"status": "ok", "current_price": 20_000.0, "direction": "up", "confidence": 0.9}
APPROVED = {"approved": True, "action": "BUY", "reasons": [], "trade_id": "btct-1", "client_order_id": "btct-1"}
REJECTED = {"approved": False, "action": "HOLD", "reasons": ["hold: within thresholds"]}
LEASE = {"symbol": {"S": "lease#BTC-USD"}, "holder": {"S": "someone-else"}}


class Flaky(Exception):
    """A custom error the definition is made to retry (moto cannot produce Lambda's throttling)."""


def _recorded(handlers, calls):
    def wrap(name, handler):
        def run(event):
            calls.append((name, json.loads(json.dumps(event))))
            return handler(event)
        return run
    return {name: wrap(name, handler) for name, handler in handlers.items()}


def _aws(lease):
    from tests.aws_fakes import create_table

    create_table(TRADING_STATE, STATE_TABLE)
    if lease:
        boto3.client("dynamodb").put_item(TableName=STATE_TABLE, Item=LEASE)
    return boto3.client("sns").create_topic(Name="alerts")["TopicArn"]


def _after(topic, calls):
    notifications = sns_backends["123456789012"]["us-east-1"].topics.get(topic)
    alerts = [json.loads(m[1]) for m in notifications.sent_notifications] if notifications else []
    lease = boto3.client("dynamodb").get_item(TableName=STATE_TABLE, Key={"symbol": {"S": "lease#BTC-USD"}}).get("Item")
    return {"alerts": alerts, "lease": lease, "calls": calls}


def run_on_moto(handlers, payload, name, mutate=None, lease=False, delete_topic=False):
    calls = []
    with mock_aws(config=MOTO_CONFIG):
        topic = _aws(lease)
        with handlers_as_lambdas(_recorded(handlers, calls)) as arns:
            definition = trading_workflow(arns["predict"], arns["risk"], arns["execute"], topic, state_table=STATE_TABLE)
            if mutate:
                mutate(definition)
            arn = boto3.client("stepfunctions").create_state_machine(
                name="wf", roleArn="arn:aws:iam::123456789012:role/x", definition=json.dumps(definition))[
                "stateMachineArn"]
            if delete_topic:
                boto3.client("sns").delete_topic(TopicArn=topic)
            described = run_execution(arn, payload, name)
            visited = visited_states(described["executionArn"])
        ended = {"status": described["status"], "output": json.loads(described.get("output") or "null"),
                 "error": described.get("error"), "cause": described.get("cause"), "visited": visited}
        return ended | _after(topic, calls)


def run_fast(handlers, payload, name, mutate=None, lease=False, delete_topic=False):
    calls = []
    recorded = _recorded(handlers, calls)

    def invoke_lambda(function_arn, event):
        handler = recorded[function_arn.rsplit(":", 1)[-1]]
        try:
            return handler(event)
        except Exception as exc:  # the body Lambda returns for an unhandled error
            raise lambda_error({"errorType": type(exc).__name__, "errorMessage": str(exc)}) from None

    with mock_aws(config=MOTO_CONFIG):
        topic = _aws(lease)
        arns = {role: f"arn:aws:lambda:us-east-1:123456789012:function:{role}" for role in handlers}
        definition = trading_workflow(arns["predict"], arns["risk"], arns["execute"], topic, state_table=STATE_TABLE)
        if mutate:
            mutate(definition)
        if delete_topic:
            boto3.client("sns").delete_topic(TopicArn=topic)
        result = StateMachine(json.dumps(definition), invoke_lambda, AwsServiceIntegrations()).execute(payload, name)
        ended = {"status": result.status, "output": result.output, "error": result.error, "cause": result.cause,
                 "visited": result.visited}
        return ended | _after(topic, calls)


def _retry_flaky(max_attempts):
    def mutate(definition):
        definition["States"]["Predict"]["Retry"][0].update(ErrorEquals=["Flaky"], MaxAttempts=max_attempts)
    return mutate


def _flaky_until(successful_attempt):
    attempts = []

    def predict(event):
        attempts.append(1)
        if len(attempts) < successful_attempt:
            raise Flaky(f"attempt {len(attempts)}")
        return PREDICTION
    return predict


def _broken(message):
    def handler(event):
        raise RuntimeError(message)
    return handler


SCENARIOS = {
    "approved, executed, notified": (lambda: {"predict": lambda e: PREDICTION, "risk": lambda e: APPROVED,
                                              "execute": lambda e: {"trade_id": "btct-1", "status": "FILLED"}}, {}),
    "rejected": (lambda: {"predict": lambda e: PREDICTION, "risk": lambda e: REJECTED, "execute": lambda e: {}}, {}),
    "predictor fails: alert before any order": (
        lambda: {"predict": _broken("DynamoDB unavailable"), "risk": lambda e: {}, "execute": lambda e: {}}, {}),
    "executor fails: the alert names the order": (
        lambda: {"predict": lambda e: PREDICTION, "risk": lambda e: APPROVED, "execute": _broken("exchange down")}, {}),
    "a transient error retried, then success": (
        lambda: {"predict": _flaky_until(3), "risk": lambda e: REJECTED, "execute": lambda e: {}},
        {"mutate": _retry_flaky(2)}),
    "retries exhausted, then caught": (
        lambda: {"predict": _flaky_until(99), "risk": lambda e: REJECTED, "execute": lambda e: {}},
        {"mutate": _retry_flaky(2)}),
    "no retry with MaxAttempts 0": (
        lambda: {"predict": _flaky_until(2), "risk": lambda e: REJECTED, "execute": lambda e: {}},
        {"mutate": _retry_flaky(0)}),
    "another execution's lease is left alone": (
        lambda: {"predict": lambda e: PREDICTION, "risk": lambda e: REJECTED, "execute": lambda e: {}},
        {"lease": True}),
    "the alerts topic is gone: notify and alert fail, the lease is still released": (
        lambda: {"predict": lambda e: PREDICTION, "risk": lambda e: APPROVED,
                 "execute": lambda e: {"trade_id": "btct-1", "status": "FILLED"}}, {"delete_topic": True}),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_fast_executor_ends_every_scenario_as_moto_does(scenario):
    handlers, options = SCENARIOS[scenario]
    moto = run_on_moto(handlers(), INPUT, "run-1", **options)
    fast = run_fast(handlers(), INPUT, "run-1", **options)
    assert fast == moto
    assert fast["visited"][0] == "HasClock" and fast["status"] in ("SUCCEEDED", "FAILED")


def test_scheduled_runs_are_stamped_alike(monkeypatch):
    handlers = lambda: {"predict": lambda e: PREDICTION, "risk": lambda e: REJECTED, "execute": lambda e: {}}  # noqa: E731
    moto = run_on_moto(handlers(), {"symbol": "BTC-USD"}, "scheduled-run")
    fast = run_fast(handlers(), {"symbol": "BTC-USD"}, "scheduled-run")
    for ended in (moto, fast):  # the time is each executor's clock (moto: +00:00, AWS and fast: Z)
        for _, event in ended["calls"]:
            stamped = datetime.fromisoformat(event["requested_at"].replace("Z", "+00:00"))
            assert stamped.utcoffset() == timedelta(0) and abs(stamped - datetime.now(UTC)) < timedelta(hours=1)
            event["requested_at"] = "stamped"
        ended["output"]["requested_at"] = "stamped"
    assert fast == moto
    assert fast["calls"][0][1]["execution_id"] == "scheduled-run"


# --- what the fast executor refuses, and ASL it implements beyond the workflow --------------------

def _machine(states, start="A", services=None):
    return StateMachine({"StartAt": start, "States": states}, lambda arn, event: event,
                        services or AwsServiceIntegrations(client_factory=lambda name: None))


@pytest.mark.parametrize("states, named", [
    ({"A": {"Type": "Map", "End": True}}, "Type 'Map'"),
    ({"A": {"Type": "Pass", "Parameters": {"x.$": "States.Hash($.a, 'SHA-1')"}, "End": True}}, "States.Hash"),
    ({"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "End": True}},
     "Resource"),
    ({"A": {"Type": "Task", "Resource": "arn:aws:states:::s3:putObject", "End": True}}, "Resource"),
    ({"A": {"Type": "Pass", "Parameters": {"x.$": "$.items[*].id"}, "End": True}}, "JSONPath"),
    ({"A": {"Type": "Pass", "Next": "Nowhere"}}, "'Nowhere'"),
    ({"A": {"Type": "Pass", "ItemsPath": "$", "End": True}}, "ItemsPath"),
    ({"A": {"Type": "Choice", "Choices": [{"Variable": "$..price", "IsPresent": True, "Next": "A"}],
            "Default": "A"}}, "Choices.Variable"),
    ({"A": {"Type": "Pass", "ResultPath": "$.list[?(@.x)]", "End": True}}, "ResultPath"),
])
def test_what_it_does_not_implement_is_refused_at_load_naming_it(states, named):
    with pytest.raises(DefinitionNotSupported, match="A|Nowhere") as refused:
        _machine(states)
    assert named in str(refused.value)


def test_paths_selectors_and_choice_rules():
    machine = _machine({
        "A": {"Type": "Pass", "InputPath": "$.order", "Parameters": {"qty.$": "$.qty", "side": "buy",
                                                                      "id.$": "States.Format('o-{}-{}', $.n, $.side)"},
              "ResultPath": "$.built", "Next": "B"},
        "B": {"Type": "Choice", "Choices": [
            {"And": [{"Variable": "$.built.qty", "NumericGreaterThan": 1},
                     {"Not": {"Variable": "$.built.side", "StringEquals": "sell"}},
                     {"Variable": "$.built.id", "StringMatches": "o-*-b*"},
                     {"Variable": "$.missing", "IsPresent": False}],
             "Next": "C"}], "Default": "Fail"},
        "C": {"Type": "Succeed", "OutputPath": "$.built"},
        "Fail": {"Type": "Fail", "Error": "NoMatch", "Cause": "unexpected"},
    })
    result = machine.execute({"order": {"qty": 2, "n": 7, "side": "buy"}}, "paths")
    assert result.status == "SUCCEEDED"
    assert result.output == {"qty": 2, "side": "buy", "id": "o-7-buy"}
    assert result.visited == ["A", "B", "C"]


def test_a_path_that_does_not_resolve_is_a_runtime_error_no_catch_takes():
    machine = _machine({
        "A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
              "Parameters": {"x.$": "$.absent"}, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}], "End": True},
        "B": {"Type": "Succeed"},
    })
    result = machine.execute({}, "runtime")
    assert result.status == "FAILED" and result.error == "States.Runtime" and "$.absent" in result.cause
    assert result.visited == ["A"]


def test_a_choice_without_match_or_default_fails_the_execution():
    result = _machine({"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": True,
                                                            "Next": "B"}]},
                       "B": {"Type": "Succeed"}}).execute({"x": False}, "no-match")
    assert (result.status, result.error) == ("FAILED", "States.NoChoiceMatched")


def test_task_failed_matches_everything_but_a_timeout(monkeypatch):
    from btc_trader.local import state_machine

    clock = iter([0.0, 100.0])
    monkeypatch.setattr(state_machine.time, "monotonic", lambda: next(clock))
    machine = _machine({
        "A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "TimeoutSeconds": 5,
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Succeed"},
    })
    result = machine.execute({}, "slow")
    assert (result.status, result.error) == ("FAILED", "States.Timeout"), "TaskFailed does not catch a timeout"


# --- a replay through `local run`, once per executor ---------------------------------------------

REPLAY_WINDOWS = {  # market -> (first decision, ticks): windows where the demonstration profile buys and sells
    "real": ("2023-03-11T02:00:00Z", 12),
    "synthetic": ("2023-12-25T15:00:00Z", 12),
}


@pytest.mark.parametrize("market", list(REPLAY_WINDOWS))
def test_a_replay_decides_and_trades_the_same_on_either_executor(market, tmp_path, monkeypatch):
    from btc_trader.local import workers
    from btc_trader.local.run import DEMO_PROFILE, local_run
    from tests.conftest import SHARED_DATA

    replay = SHARED_DATA / "btcusd_1m_coinbase_2023-03-01_2023-03-21.csv.gz"
    if market == "real" and not replay.is_file():
        pytest.skip(f"real candle file not found at {replay}")
    first, ticks = REPLAY_WINDOWS[market]
    start = int(datetime.fromisoformat(first.replace("Z", "+00:00")).timestamp())
    runs = {}
    # moto's executor and the fast one on the built bundles in runtime workers (where a tick's
    # evaluator overlaps the next collections), then the fast one with in-process handlers, one
    # after the other: the same decisions every way.
    for executor, in_process in (("emulator", "0"), ("fast", "0"), ("fast-in-process", "1")):
        monkeypatch.setenv(workers.IN_PROCESS_VARIABLE, in_process)
        monkeypatch.setenv("BTC_TRADER_HOME", str(tmp_path / executor))  # a fresh temporary emulator each
        pool = workers.WorkerPool()
        monkeypatch.setattr(workers, "_POOL", pool)
        lines = []
        try:
            summary = local_run(replay if market == "real" else None, ticks, start=start, emit=lines.append,
                                profile=DEMO_PROFILE, synthetic=market == "synthetic",
                                executor=executor.removesuffix("-in-process"))
        finally:
            pool.close()
        runs[executor] = ([line for line in lines if line[:2] == "20"], summary.to_json())
    for _, summary in runs.values():
        for volatile in ("emulator", "market", "executor"):  # where and by what it ran
            summary.pop(volatile)
    (emulator_lines, emulator_summary), (fast_lines, fast_summary) = runs["emulator"], runs["fast"]
    assert len(fast_lines) == ticks and fast_lines == emulator_lines
    assert fast_summary == emulator_summary
    assert runs["fast-in-process"] == runs["fast"]
    assert fast_summary["executions"] == {"SUCCEEDED": ticks}
    assert fast_summary["trades"].get("BUY") and fast_summary["trades"].get("SELL"), fast_lines
