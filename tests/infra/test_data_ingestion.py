"""DataIngestion under Pulumi mocks: every resource, property and permission of the issue."""

import json

import pulumi
import pytest

from btc_trader.stack.environment import function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from components.data_ingestion import DataIngestion, DataIngestionArgs
from components.schedules import rate
from components.stack_config import load_settings
from tests.infra.harness import ACCOUNT, REGION, policy_statements, run_program

FUNCTION = "aws:lambda/function:Function"
POLICY = "aws:iam/rolePolicy:RolePolicy"


def ingestion(stack: str, overrides=None):
    def build():
        settings = load_settings()
        names = ResourceNames(pulumi.get_stack(), ACCOUNT, REGION)
        code = pulumi.AssetArchive({"functions/__init__.py": pulumi.StringAsset("")})
        component = DataIngestion("ingestion", DataIngestionArgs(settings, names, code, layers=["arn:layer:1"]))
        return component.collector.function.arn

    return run_program(stack, build, overrides)


@pytest.fixture(scope="module")
def dev():
    return ingestion("dev")


@pytest.fixture(scope="module")
def prod():
    return ingestion("prod")


def test_raw_bucket_is_private_encrypted_versioned_tls_only(dev):
    bucket = dev.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"btc-trader-dev-raw-{ACCOUNT}-{REGION}"
    assert dev.one("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    sse = dev.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    block = dev.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    (deny,) = policy_statements(dev.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert dev.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_lifecycle_expires_from_settings_without_glacier(dev):
    (rule,) = dev.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    # S3 does not move objects under 128 KB to Glacier; the payloads are a few KB of JSON.
    assert not rule.get("transitions")
    assert rule["expiration"]["days"] == 90
    assert rule["filter"]["prefix"] == "raw/prices/"
    custom = ingestion("dev", {"btc-trader:rawExpireAfterDays": 21})
    (rule,) = custom.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["expiration"]["days"] == 21


def test_prices_table(dev):
    table = dev.one("aws:dynamodb/table:Table").inputs
    assert table["name"] == "btc-trader-dev-prices"
    assert (table["hashKey"], table["rangeKey"]) == ("symbol", "timestamp")
    assert sorted((a["name"], a["type"]) for a in table["attributes"]) == [("symbol", "S"), ("timestamp", "N")]
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table["pointInTimeRecovery"]["enabled"] is True
    assert table["streamEnabled"] is True and table["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["serverSideEncryption"]["enabled"] is True


def test_timestream_only_when_enabled(dev):
    assert not dev.of_type("aws:timestreamwrite/database:Database")
    on = ingestion("dev", {"btc-trader:timestream": {"enabled": True}})
    on.one("aws:timestreamwrite/database:Database")
    table = on.one("aws:timestreamwrite/table:Table").inputs
    assert table["retentionProperties"] == {"memoryStoreRetentionPeriodInHours": 24, "magneticStoreRetentionPeriodInDays": 365}
    actions = {a for s in policy_statements(on.one(POLICY).inputs["policy"]) for a in s["Action"]}
    assert {"timestream:WriteRecords", "timestream:DescribeEndpoints"} <= actions
    env = on.one(FUNCTION).inputs["environment"]["variables"]
    assert env["BTC_TRADER_TIMESTREAM_DATABASE"] == "btc-trader-dev-market"


def test_collector_function_shape(dev):
    function = dev.one(FUNCTION).inputs
    assert function["name"] == "btc-trader-dev-price-collector"
    assert function["handler"] == "functions.price_collector.lambda_handler"
    assert function["runtime"] == "python3.12"
    assert function["tracingConfig"] == {"mode": "Active"}
    assert function["memorySize"] == 256 and function["timeout"] == 60
    assert function["layers"] == ["arn:layer:1"]
    assert function["loggingConfig"]["logGroup"] == "/aws/lambda/btc-trader-dev-price-collector"
    log_group = dev.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert log_group["retentionInDays"] == 14
    assert dev.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs["maximumRetryAttempts"] == 2


def test_function_environment_is_the_single_source_of_truth(dev, prod):
    for stack, mocks in (("dev", dev), ("prod", prod)):
        env = mocks.one(FUNCTION).inputs["environment"]["variables"]
        expected = function_environments(load_stack_file(stack), ResourceNames(stack, ACCOUNT, REGION))["price-collector"]
        assert env == expected
        assert env["POWERTOOLS_SERVICE_NAME"] == "price-collector"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == f"BtcTrader/{stack}"


def test_schedule_runs_the_collector_every_interval(dev, prod):
    assert dev.one("aws:cloudwatch/eventRule:EventRule").inputs["scheduleExpression"] == "rate(5 minutes)"
    assert prod.one("aws:cloudwatch/eventRule:EventRule").inputs["scheduleExpression"] == "rate(1 minute)"
    target = dev.one("aws:cloudwatch/eventTarget:EventTarget").inputs
    assert target["arn"].endswith(":function:btc-trader-dev-price-collector")
    permission = dev.one("aws:lambda/permission:Permission").inputs
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["sourceArn"].endswith("btc-trader-dev-collect-prices")
    assert rate(15) == "rate(15 minutes)" and rate(1) == "rate(1 minute)"


def test_collector_policy_is_least_privilege(dev):
    statements = policy_statements(dev.one(POLICY).inputs["policy"])
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["PricesItems"]["Action"] == ["dynamodb:PutItem", "dynamodb:GetItem"]
    assert by_sid["PricesItems"]["Resource"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-dev-prices"
    assert by_sid["RawPayloads"]["Action"] == ["s3:PutObject"]
    assert by_sid["RawPayloads"]["Resource"] == f"arn:aws:s3:::btc-trader-dev-raw-{ACCOUNT}-{REGION}/raw/prices/*"
    assert by_sid["OwnLogGroup"]["Resource"].endswith(":*")
    assert "Timestream" not in json.dumps(statements)
    # `*` only where the action has no resource-level permissions.
    wildcard_ok = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "timestream:DescribeEndpoints"}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        if statement["Resource"] == "*":
            assert set(actions) <= wildcard_ok, statement
    role = dev.one("aws:iam/role:Role").inputs
    assert json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_dev_and_prod_differ_as_configured(dev, prod):
    assert prod.one(FUNCTION).inputs["memorySize"] == 512
    assert prod.one("aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"] == 90
    dev_env = dev.one(FUNCTION).inputs["environment"]["variables"]
    prod_env = prod.one(FUNCTION).inputs["environment"]["variables"]
    assert (dev_env["BTC_TRADER_MIN_SOURCES"], prod_env["BTC_TRADER_MIN_SOURCES"]) == ("2", "3")
    assert prod.one("aws:dynamodb/table:Table").inputs["name"] == "btc-trader-prod-prices"
