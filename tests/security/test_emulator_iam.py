"""Each handler runs with credentials carrying only its own role's policy, IAM enforcement on.

What moto enforces (measured on moto 5.2): every API call is checked against the caller's
policies by *action*; the *resource* is checked for S3 only (bucket and key) — for every other
service moto authorises against "*", so a resource-scoped statement would never match there.
The policies below are therefore the deployed ones with non-S3 resources widened to "*": a
missing action fails the handler, an action of another function is denied, and S3 keys are
enforced exactly. Resource scoping everywhere else is proven under Pulumi mocks
(tests/infra/test_iam_policies.py).
"""

from __future__ import annotations

import json
import runpy
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin

from btc_trader.adapters.price_sources import replay_spec
from btc_trader.local.emulator import LOCAL_ACCOUNT, create_table
from btc_trader.local.environ import patched_environ
from btc_trader.local.events import sample_event
from btc_trader.local.invoke import run_handler
from btc_trader.local.synthetic import write_synthetic_candles
from btc_trader.stack.environment import function_environments, kill_switch_parameter
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from btc_trader.storage_schema import TABLES
from tests.conftest import REPO_ROOT as PROJECT_ROOT
from tests.conftest import require_lambda_build
from tests.infra.harness import run_program

REGION = "us-east-1"
NAMES = ResourceNames("dev", LOCAL_ACCOUNT, REGION)
AT = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def role_policies():
    """function -> the policy document its deployed role carries (rendered by the program)."""
    require_lambda_build("dev")
    mocks = run_program("dev", lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")))
    roles = {f"{r.name}-id": r.inputs["name"] for r in mocks.of_type("aws:iam/role:Role")}
    policies = {}
    for policy in mocks.of_type("aws:iam/rolePolicy:RolePolicy"):
        role_name = roles[policy.inputs["role"]]
        policies[role_name.removeprefix("btc-trader-dev-").removesuffix("-role")] = json.loads(policy.inputs["policy"])
    return policies


def enforceable(document: dict) -> dict:
    """The policy as moto can evaluate it: S3 resources exact, others widened to "*".

    AWS authorises a TransactWriteItems by the PutItem/UpdateItem it contains (there is no
    dynamodb:TransactWriteItems permission); moto checks the operation's own name, so it is added
    where the policy allows both underlying actions.
    """
    statements = []
    for statement in document["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        widened = [r for r in resources if r.startswith("arn:aws:s3:::")] or ["*"]
        statements.append({**statement, "Resource": widened})
    allowed = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    if {"dynamodb:PutItem", "dynamodb:UpdateItem"} <= allowed:
        statements.append({"Effect": "Allow", "Action": ["dynamodb:TransactWriteItems"], "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


@pytest.fixture
def aws_with_enforcement(tmp_path, monkeypatch):
    """moto with the stack's resources, created as admin; then every call must be authorised."""
    admin = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": None,
             "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": None}
    with patched_environ(admin), mock_aws():
        dynamodb = boto3.client("dynamodb")
        for spec in TABLES:
            create_table(dynamodb, spec, NAMES.table(spec.role))
        boto3.client("s3").create_bucket(Bucket=NAMES.raw_bucket)
        boto3.client("sns").create_topic(Name=NAMES.alerts_topic)
        boto3.client("ssm").put_parameter(Name=kill_switch_parameter(NAMES), Value="off", Type="String")
        iam = boto3.client("iam")

        def credentials_for(function: str, document: dict) -> dict[str, str]:
            """A user holding exactly `document` (created as admin, enforcement paused)."""
            enforcing = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
            try:
                user = f"{function}-{len(iam.list_users()['Users'])}"
                iam.create_user(UserName=user)
                iam.put_user_policy(UserName=user, PolicyName="role",
                                    PolicyDocument=json.dumps(enforceable(document)))
                key = iam.create_access_key(UserName=user)["AccessKey"]
            finally:
                moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = enforcing
            return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

        monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
        monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        yield credentials_for, tmp_path


def environments(tmp_path) -> dict[str, dict[str, str]]:
    envs = function_environments(load_stack_file("dev"), NAMES)
    replay = write_synthetic_candles(tmp_path, int(AT.timestamp()), minutes=30)["synthetic-usd-a"]
    envs["price-collector"] |= {"BTC_TRADER_PRICE_SOURCES": json.dumps([replay_spec("replay", replay)]),
                                "BTC_TRADER_MIN_SOURCES": "1"}
    for function in ("ml-predictor", "prediction-evaluator"):
        envs[function] |= {"BTC_TRADER_ML_MODELS": '["custom"]', "BTC_TRADER_MODEL_WEIGHTS": '{"custom": 1.0}'}
    return envs


def invoke_as(credentials: dict[str, str], function: str, event: dict, env: dict[str, str]):
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # the kill switch must be read with these credentials
    with patched_environ(credentials):
        return run_handler(function, event, env, REGION)


def test_each_handler_runs_on_exactly_its_own_policy(aws_with_enforcement, role_policies):
    credentials_for, tmp_path = aws_with_enforcement
    envs = environments(tmp_path)
    collected = invoke_as(credentials_for("price-collector", role_policies["price-collector"]), "price-collector",
                          sample_event("schedule", AT, REGION, "BTC-USD"), envs["price-collector"])
    assert collected["results"][0]["symbol"] == "BTC-USD"
    prediction = invoke_as(credentials_for("ml-predictor", role_policies["ml-predictor"]), "ml-predictor",
                           sample_event("workflow-input", AT, REGION, "BTC-USD"), envs["ml-predictor"])
    assert prediction["status"] in {"ok", "insufficient_history"}
    # A BUY on the price just collected, so the risk manager (reading the prices table and taking
    # the lease) approves and the executor re-validates it (reading the stored decision and lease).
    from btc_trader.contracts import PredictionResult

    price = collected["results"][0]["price"]
    check_risk = {**sample_event("workflow-input", AT, REGION, "BTC-USD"), "prediction": PredictionResult(
        as_of=AT.strftime("%Y-%m-%dT%H:%M:%SZ"), current_price=price, predicted_price=price * 1.01, price_age_s=0,
        horizon_minutes=60, confidence=0.9, direction="up", models=[]).model_dump()}
    risk = invoke_as(credentials_for("risk-manager", role_policies["risk-manager"]), "risk-manager",
                     check_risk, envs["risk-manager"])
    assert risk["approved"], risk["reasons"]
    trade = invoke_as(credentials_for("trade-executor", role_policies["trade-executor"]), "trade-executor",
                      {**check_risk, "risk": risk}, envs["trade-executor"])
    assert trade["status"] == "FILLED" and trade["mode"] == "paper"
    scored = invoke_as(credentials_for("prediction-evaluator", role_policies["prediction-evaluator"]),
                       "prediction-evaluator", sample_event("schedule", AT, REGION, "BTC-USD"),
                       envs["prediction-evaluator"])
    assert "summary" in json.dumps(scored) or scored is not None
    reconciled = invoke_as(credentials_for("order-reconciler", role_policies["order-reconciler"]), "order-reconciler",
                           sample_event("schedule", AT, REGION, "BTC-USD"), envs["order-reconciler"])
    assert reconciled["mode"] == "paper" and reconciled["results"][0]["unresolved"] == []


def test_a_missing_permission_fails_the_handler(aws_with_enforcement, role_policies):
    credentials_for, tmp_path = aws_with_enforcement
    document = json.loads(json.dumps(role_policies["price-collector"]))
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != "dynamodb:PutItem"] or ["dynamodb:DescribeTable"]
    with pytest.raises(ClientError, match="AccessDenied|not authorized"):
        invoke_as(credentials_for("price-collector", document), "price-collector",
                  sample_event("schedule", AT, REGION, "BTC-USD"), environments(tmp_path)["price-collector"])


def test_a_functions_credentials_cannot_do_another_functions_work(aws_with_enforcement, role_policies):
    credentials_for, _ = aws_with_enforcement
    collector = credentials_for("price-collector", role_policies["price-collector"])
    clients = {service: boto3.client(service, region_name=REGION, aws_access_key_id=collector["AWS_ACCESS_KEY_ID"],
                                     aws_secret_access_key=collector["AWS_SECRET_ACCESS_KEY"])
               for service in ("sns", "ssm", "s3")}
    topic = f"arn:aws:sns:{REGION}:{LOCAL_ACCOUNT}:{NAMES.alerts_topic}"
    with pytest.raises(ClientError, match="AuthorizationError|AccessDenied|not authorized"):
        clients["sns"].publish(TopicArn=topic, Message="not the collector's job")
    with pytest.raises(ClientError, match="AccessDenied|not authorized"):
        clients["ssm"].get_parameter(Name=kill_switch_parameter(NAMES))
    # S3 resources are enforced exactly: the collector writes raw payloads, nothing else.
    clients["s3"].put_object(Bucket=NAMES.raw_bucket, Key="raw/prices/BTC-USD/x.json", Body=b"{}")
    with pytest.raises(ClientError, match="AccessDenied"):
        clients["s3"].put_object(Bucket=NAMES.raw_bucket, Key="elsewhere/x.json", Body=b"{}")
