"""TradingEngine under Pulumi mocks: state machine, guards, IAM, schedule."""

import json

import pulumi
import pytest

from btc_trader.stack.environment import function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from btc_trader.workflow import trading_workflow
from components.stack_config import load_settings
from components.trading_engine import TradingEngine, TradingEngineArgs
from tests.infra.harness import ACCOUNT, REGION, policy_statements, run_program


def engine(stack, overrides=None):
    def build():
        import pulumi_aws as aws

        settings = load_settings()
        names = ResourceNames(pulumi.get_stack(), ACCOUNT, REGION)
        code = pulumi.AssetArchive({"functions/__init__.py": pulumi.StringAsset("")})
        predictor = aws.lambda_.Function("predictor", name=names.function("ml-predictor"), role="r",
                                         runtime="python3.12", handler="h", code=code)
        return TradingEngine("trading", TradingEngineArgs(settings, names, code, predictor)).state_machine.arn

    return run_program(stack, build, overrides)


def policy(mocks, part):
    (found,) = [r for r in mocks.of_type("aws:iam/rolePolicy:RolePolicy") if part in r.name]
    return {s["Sid"]: s for s in policy_statements(found.inputs["policy"])}


def test_state_machine_definition_logging_tracing():
    mocks = engine("dev")
    machine = mocks.one("aws:sfn/stateMachine:StateMachine").inputs
    definition = json.loads(machine["definition"])
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:btc-trader-dev-"
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:topic/btc-trader-dev-alerts"
    assert definition == trading_workflow(fn + "ml-predictor", fn + "risk-manager", fn + "trade-executor", topic,
                                          state_table="btc-trader-dev-trading-state", lambda_timeout_s=60)
    assert machine["tracingConfiguration"] == {"enabled": True}
    assert machine["loggingConfiguration"]["level"] == "ERROR"
    invoke = policy(mocks, "workflow")["InvokeSteps"]
    assert sorted(invoke["Resource"]) == sorted(fn + r for r in ("ml-predictor", "risk-manager", "trade-executor"))


def executor_function(mocks):
    return [f for f in mocks.of_type("aws:lambda/function:Function") if "trade-executor" in f.inputs["name"]][0]


def test_schedule_per_symbol_and_executor_concurrency():
    mocks = engine("dev", {"btc-trader:symbols": ["BTC-USD", "ETH-USD"]})
    targets = mocks.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert sorted(json.loads(t.inputs["input"])["symbol"] for t in targets) == ["BTC-USD", "ETH-USD"]
    assert mocks.one("aws:cloudwatch/eventRule:EventRule").inputs["scheduleExpression"] == "rate(15 minutes)"
    # The lease serialises trades: reserved concurrency is opt-in on every stack.
    assert executor_function(mocks).inputs.get("reservedConcurrentExecutions") is None
    assert executor_function(engine("prod")).inputs.get("reservedConcurrentExecutions") is None
    opted = engine("dev", {"btc-trader:executorReservedConcurrency": 2})
    assert executor_function(opted).inputs["reservedConcurrentExecutions"] == 2


def test_the_workflow_may_delete_only_lease_items_and_the_risk_manager_reads_prices():
    mocks = engine("prod")
    release = policy(mocks, "workflow")["ReleaseLease"]
    assert release["Action"] == ["dynamodb:DeleteItem"]
    assert release["Resource"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-prod-trading-state"
    assert release["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["lease#*"]}}
    prices = policy(mocks, "risk")["StoredPrices"]
    assert prices["Action"] == ["dynamodb:Query"]
    assert prices["Resource"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-prod-prices"
    env = [f for f in mocks.of_type("aws:lambda/function:Function") if "risk-manager" in f.inputs["name"]][0]
    variables = env.inputs["environment"]["variables"]
    assert variables["BTC_TRADER_PRICES_TABLE"] == "btc-trader-prod-prices"
    assert int(variables["BTC_TRADER_LEASE_SECONDS"]) < 2 * 5 * 60  # prod trades every 5 minutes


def test_dev_is_paper_with_no_secret_access():
    mocks = engine("dev")
    assert "ExchangeKeys" not in policy(mocks, "executor")
    env = [f for f in mocks.of_type("aws:lambda/function:Function") if "trade-executor" in f.inputs["name"]][0]
    assert env.inputs["environment"]["variables"]["BTC_TRADER_MODE"] == "paper"
    expected = function_environments(load_stack_file("dev"), ResourceNames("dev", ACCOUNT, REGION))["trade-executor"]
    assert env.inputs["environment"]["variables"] == expected
    parameter = mocks.one("aws:ssm/parameter:Parameter").inputs
    assert parameter["name"] == "/btc-trader/dev/kill-switch" and parameter["value"] == "off"
    assert policy(mocks, "risk")["KillSwitch"]["Action"] == ["ssm:GetParameter"]
    key = mocks.one("aws:kms/key:Key").inputs
    assert key["enableKeyRotation"] is True
    assert mocks.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/trading-alerts-key"
    assert policy(mocks, "workflow")["EncryptedTopic"]["Resource"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/trading-alerts-key"
    alarms = {s["Sid"]: s for s in policy_statements(key["policy"])}["StackAlarmsPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:btc-trader-dev-*"
    topic_policy = {s["Sid"]: s for s in policy_statements(mocks.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])}
    assert topic_policy["StackAlarmsPublish"]["Condition"] == alarms["Condition"]
    assert topic_policy["DenyInsecureTransport"]["Effect"] == "Deny"


def test_prod_real_trading_reads_only_its_secret():
    mocks = engine("prod")
    keys = policy(mocks, "executor")["ExchangeKeys"]
    assert keys["Action"] == ["secretsmanager:GetSecretValue"]
    assert keys["Resource"].startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:btc-trader/prod/exchange")


def test_real_trading_with_a_missing_secret_fails_the_deployment():
    with pytest.raises(Exception, match="can't find the specified secret: nope"):
        engine("prod", {"btc-trader:exchange": {"id": "binanceus", "sandbox": False, "secretName": "nope"}})


def test_alert_email_subscription_only_when_configured():
    assert not engine("dev").of_type("aws:sns/topicSubscription:TopicSubscription")
    sub = engine("dev", {"btc-trader:alertEmail": "ops@example.com"}).one("aws:sns/topicSubscription:TopicSubscription")
    assert sub.inputs["protocol"] == "email" and sub.inputs["endpoint"] == "ops@example.com"


def test_a_deployment_whose_lease_outlasts_two_trading_intervals_is_refused():
    with pytest.raises(Exception, match="tradingInterval must be longer than half the per-symbol lease"):
        engine("prod", {"btc-trader:tradingInterval": 2})
