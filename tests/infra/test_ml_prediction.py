"""MlPrediction under Pulumi mocks: tables, IAM per enabled model, optional endpoint."""

import io
import tarfile
import time
from pathlib import Path

import pulumi
import pytest

from btc_trader.chronos_endpoint import image_uri, inference_archive
from btc_trader.stack.environment import function_environments
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import load_stack_file
from components.ml_prediction import (
    INFERENCE_CODE,
    MlPrediction,
    MlPredictionArgs,
    bedrock_resources,
)
from components.stack_config import load_settings
from tests.infra.harness import ACCOUNT, REGION, policy_statements, run_program

PRICES_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-dev-prices"


def prediction(stack, overrides=None):
    def build():
        settings = load_settings()
        names = ResourceNames(pulumi.get_stack(), ACCOUNT, REGION)
        code = pulumi.AssetArchive({"functions/__init__.py": pulumi.StringAsset("")})
        component = MlPrediction("prediction", MlPredictionArgs(settings, names, code, PRICES_ARN))
        return component.predictor.function.arn

    return run_program(stack, build, overrides)


def policy_of(mocks, role):
    (policy,) = [r for r in mocks.of_type("aws:iam/rolePolicy:RolePolicy") if role in r.name]
    return {s["Sid"]: s for s in policy_statements(policy.inputs["policy"])}


def function(mocks, part):
    (found,) = [r for r in mocks.of_type("aws:lambda/function:Function") if part in r.name]
    return found.inputs


def test_dev_grants_bedrock_only_and_no_endpoint():
    mocks = prediction("dev")
    statements = policy_of(mocks, "predictor")
    assert statements["InvokeBedrock"]["Action"] == ["bedrock:InvokeModel"]
    assert statements["InvokeBedrock"]["Resource"] == bedrock_resources(
        load_stack_file("dev").bedrock.model_id, REGION, ACCOUNT)
    assert "InvokeChronos" not in statements
    assert statements["ReadPrices"] == {"Sid": "ReadPrices", "Effect": "Allow", "Action": ["dynamodb:Query"],
                                        "Resource": PRICES_ARN}
    assert not mocks.of_type("aws:sagemaker/endpoint:Endpoint")


def test_prod_grants_every_model_and_deploys_a_serverless_endpoint():
    mocks = prediction("prod")
    statements = policy_of(mocks, "predictor")
    assert statements["InvokeChronos"]["Resource"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/btc-trader-prod-chronos-bolt")
    endpoint = mocks.one("aws:sagemaker/endpoint:Endpoint").inputs
    assert endpoint["name"] == "btc-trader-prod-chronos-bolt"
    variant = mocks.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs["productionVariants"][0]
    assert variant["serverlessConfig"] == {"maxConcurrency": 2, "memorySizeInMb": 4096}
    model = mocks.one("aws:sagemaker/model:Model").inputs
    assert model["primaryContainer"]["image"] == image_uri(REGION)
    assert model["primaryContainer"]["image"].endswith(
        "huggingface-pytorch-inference:2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04")
    environment = model["primaryContainer"]["environment"]
    assert environment["CHRONOS_MODEL_ID"] == "amazon/chronos-bolt-small"
    # HF_MODEL_ID would make the toolkit serve a hub download and never import inference.py.
    assert "HF_MODEL_ID" not in environment and "HF_TASK" not in environment
    assert model["primaryContainer"]["modelDataUrl"].endswith("/model.tar.gz")


def test_models_not_enabled_get_no_permission():
    mocks = prediction("dev", {"btc-trader:mlModels": ["custom"]})
    statements = policy_of(mocks, "predictor")
    assert not {"InvokeBedrock", "InvokeChronos"} & set(statements)
    env = function(mocks, "predictor")["environment"]["variables"]
    assert env["BTC_TRADER_ML_MODELS"] == '["custom"]' and "BTC_TRADER_BEDROCK_MODEL_ID" not in env


def test_tables_evaluator_and_environment():
    mocks = prediction("dev")
    tables = {t.inputs["name"]: t.inputs for t in mocks.of_type("aws:dynamodb/table:Table")}
    assert tables["btc-trader-dev-predictions"]["hashKey"] == "symbol"
    assert tables["btc-trader-dev-prediction-scores"]["hashKey"] == "series"
    assert all(t["ttl"]["enabled"] and t["pointInTimeRecovery"]["enabled"] for t in tables.values())
    evaluator = policy_of(mocks, "evaluator")
    assert evaluator["ScorePredictions"]["Action"] == ["dynamodb:Query", "dynamodb:UpdateItem"]
    rule = mocks.one("aws:cloudwatch/eventRule:EventRule").inputs
    assert rule["scheduleExpression"] == "rate(15 minutes)"
    expected = function_environments(load_stack_file("dev"), ResourceNames("dev", ACCOUNT, REGION))
    assert function(mocks, "predictor")["environment"]["variables"] == expected["ml-predictor"]
    assert function(mocks, "evaluator")["environment"]["variables"] == expected["prediction-evaluator"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_wildcard_actions_and_wildcard_resources_only_where_unavoidable(stack):
    mocks = prediction(stack)
    allowed_star = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken"}
    for policy in mocks.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_statements(policy.inputs["policy"]):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in a for a in actions)
            if statement["Resource"] == "*":
                assert set(actions) <= allowed_star, statement


def test_bedrock_resources_for_profiles_and_plain_models():
    assert bedrock_resources("us.anthropic.claude-haiku-4-5-20251001-v1:0", "us-east-1", "1") == [
        "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
    ]
    assert bedrock_resources("amazon.nova-lite-v1:0", "eu-west-1", "1") == [
        "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0"]


def _endpoint_names(mocks):
    model = mocks.one("aws:sagemaker/model:Model").inputs
    config = mocks.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs
    artifact = mocks.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    return model["name"], config["name"], artifact["key"], config["productionVariants"][0]["modelName"]


def test_two_deploys_of_unchanged_code_keep_the_model_name(monkeypatch):
    first = _endpoint_names(prediction("prod"))
    uploaded = Path(prediction("prod").one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["source"].path).read_bytes()
    # An hour later (a gzip header would carry the clock): same archive bytes, same names.
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    second = _endpoint_names(prediction("prod"))
    assert first == second
    assert Path(prediction("prod").one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["source"].path).read_bytes() == uploaded
    model_name, config_name, key, variant_model = first
    assert model_name == config_name == variant_model and model_name.startswith("btc-trader-prod-chronos-")
    assert len(model_name) <= 63 and key == f"chronos/{model_name.rsplit('-', 1)[1]}/model.tar.gz"


def test_another_model_id_gets_another_model_name():
    default = _endpoint_names(prediction("prod"))[0]
    other = _endpoint_names(prediction("prod", {"btc-trader:huggingface": {
        "endpointName": "btc-trader-prod-chronos-bolt", "deployEndpoint": True,
        "modelId": "amazon/chronos-bolt-base"}}))[0]
    assert other != default


def test_the_uploaded_archive_is_the_reproducible_one_with_the_script():
    artifact = prediction("prod").one("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    uploaded = Path(artifact["source"].path).read_bytes()
    assert uploaded == inference_archive(INFERENCE_CODE)
    with tarfile.open(fileobj=io.BytesIO(uploaded)) as archive:
        assert archive.getnames() == ["code/inference.py", "code/requirements.txt"]
        script = archive.extractfile("code/inference.py").read()
    assert script == (INFERENCE_CODE / "inference.py").read_bytes()
