"""Least privilege, proven: every policy the program creates, in every configuration, is checked."""

from __future__ import annotations

import fnmatch
import json
import runpy

import pytest

from components import lambda_packaging
from components.settings import PROJECT_ROOT, load_stack_with_overrides
from tests.infra.harness import ACCOUNT, REGION, run_program

# Actions that have no resource-level permissions in IAM (the Service Authorization Reference), so
# "*" is the only resource they accept. Anything else with "*" fails.
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "ecr:GetAuthorizationToken", "timestream:DescribeEndpoints",
    # Step Functions' log delivery (vended logs) needs these on "*", as its documentation states.
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}
POLICY_INPUTS = {"aws:iam/rolePolicy:RolePolicy": "policy", "aws:s3/bucketPolicy:BucketPolicy": "policy",
                 "aws:sns/topicPolicy:TopicPolicy": "policy", "aws:kms/key:Key": "policy"}

CONFIGURATIONS = {
    "dev": ("dev", {}),
    "prod (real trading, bedrock + serverless Chronos + custom)": ("prod", {}),
    "prod with Timestream": ("prod", {"btc-trader:timestream": {"enabled": True}}),
    "dev with only the technical model": ("dev", {"btc-trader:mlModels": ["custom"]}),
}


@pytest.fixture(scope="module", params=list(CONFIGURATIONS))
def configuration(request, tmp_path_factory):
    stack, overrides = CONFIGURATIONS[request.param]
    mp = pytest.MonkeyPatch()
    mp.setattr(lambda_packaging, "build_dependency_layer", lambda settings: tmp_path_factory.mktemp("layer"))
    mocks = run_program(stack, lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py")), overrides)
    mp.undo()
    settings = load_stack_with_overrides(stack, {k: json.dumps(v) for k, v in overrides.items()})
    return stack, settings, mocks


def _documents(mocks):
    for token, key in POLICY_INPUTS.items():
        for resource in mocks.of_type(token):
            if resource.inputs.get(key):
                document = resource.inputs[key]
                yield resource, json.loads(document) if isinstance(document, str) else document


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _allowed(mocks):
    """Allow statements of the identity policies (what each role may do)."""
    for resource, document in _documents(mocks):
        if resource.type != "aws:iam/rolePolicy:RolePolicy":
            continue
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow":
                yield resource, statement


def test_policies_were_collected(configuration):
    _, _, mocks = configuration
    roles = mocks.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(roles) >= 7  # five functions, the state machine, the scheduler


def test_no_wildcard_actions(configuration):
    _, _, mocks = configuration
    for resource, statement in _allowed(mocks):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{resource.name}: {action}"


def test_wildcard_resources_only_where_iam_has_no_resource_level_permissions(configuration):
    _, _, mocks = configuration
    for resource, statement in _allowed(mocks):
        if "*" in _as_list(statement["Resource"]):
            extra = set(_as_list(statement["Action"])) - NO_RESOURCE_LEVEL
            assert not extra, f"{resource.name} grants {sorted(extra)} on '*'"


def _created_arns(mocks) -> list[str]:
    arns = []
    for resource in mocks.resources:
        name = resource.inputs.get("name") or resource.inputs.get("bucket") or resource.name
        if not isinstance(name, str):
            continue
        service = resource.type.split(":")[1].split("/")[0]
        kind = resource.type.split(":")[-1].lower()
        arns += [f"arn:aws:{service}:{REGION}:{ACCOUNT}:{kind}/{name}", f"arn:aws:s3:::{name}",
                 f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"]
    return arns


def test_every_resource_is_one_the_stack_uses(configuration):
    stack, settings, mocks = configuration
    created = _created_arns(mocks)
    external = [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/btc-trader-{stack}-*",
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/*",
                f"arn:aws:ecr:{REGION}:763104351884:repository/huggingface-pytorch-inference"]
    if settings.enable_real_trading:
        external.append(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{settings.exchange.secret_name}-*")
    for resource, statement in _allowed(mocks):
        for arn in _as_list(statement["Resource"]):
            if arn == "*":
                continue
            actions = _as_list(statement["Action"])
            if any(a.startswith("bedrock:") for a in actions):
                assert "bedrock" in settings.ml_models, f"{resource.name}: Bedrock without the model"
                model = settings.bedrock.model_id.split(".", 1)[-1] if settings.bedrock.model_id.count(".") > 1 else settings.bedrock.model_id
                assert model in arn, f"{resource.name}: Bedrock resource {arn} is not {settings.bedrock.model_id}"
                continue
            if any(a.startswith("sagemaker:") for a in actions):
                assert "huggingface" in settings.ml_models, f"{resource.name}: SageMaker without the model"
                assert arn.endswith(f"endpoint/{settings.huggingface.endpoint_name}"), arn
                continue
            base = arn.split("/index/")[0].removesuffix("/*").removesuffix(":*")
            ok = any(base == c or base.startswith(c + "/") for c in created) or any(
                fnmatch.fnmatch(arn, pattern) or fnmatch.fnmatch(base, pattern) for pattern in external)
            assert ok, f"{resource.name}: {actions} on {arn}, which this stack does not create or use"


def test_resource_policies_admit_no_one_else(configuration):
    """Key and bucket policies: the account administers, named services use, nobody else."""
    _, _, mocks = configuration
    for resource, document in _documents(mocks):
        if resource.type == "aws:iam/rolePolicy:RolePolicy":
            continue
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            principal = statement["Principal"]
            assert principal != "*" and principal != {"AWS": "*"}, resource.name
            if principal != {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}:
                assert not any("*" in a.split(":", 1)[1].rstrip("*") or a.endswith(":*")
                               for a in _as_list(statement["Action"])), resource.name
                assert statement.get("Condition"), f"{resource.name}: a service principal without a condition"


def test_each_function_has_its_own_role(configuration):
    _, _, mocks = configuration
    functions = mocks.of_type("aws:lambda/function:Function")
    roles = [f.inputs["role"] for f in functions]
    assert len(functions) == 5 and len(set(roles)) == len(roles)
    policies = mocks.of_type("aws:iam/rolePolicy:RolePolicy")
    attached = [p.inputs["role"] for p in policies]
    assert len(set(attached)) == len(attached), "one inline policy per role, no shared policies"


def test_optional_permissions_follow_the_settings(configuration):
    _, settings, mocks = configuration
    actions = {a for _, s in _allowed(mocks) for a in _as_list(s["Action"])}
    assert ("bedrock:InvokeModel" in actions) == ("bedrock" in settings.ml_models)
    assert ("sagemaker:InvokeEndpoint" in actions) == ("huggingface" in settings.ml_models)
    assert ("timestream:WriteRecords" in actions) == settings.timestream.enabled
    assert ("secretsmanager:GetSecretValue" in actions) == settings.enable_real_trading


def test_data_at_rest_is_encrypted_and_the_bucket_private(configuration):
    _, _, mocks = configuration
    for table in mocks.of_type("aws:dynamodb/table:Table"):
        assert table.inputs["serverSideEncryption"]["enabled"] is True, table.name
    for topic in mocks.of_type("aws:sns/topic:Topic"):
        assert topic.inputs.get("kmsMasterKeyId"), topic.name
    encrypted = {r.inputs["bucket"] for r in mocks.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")}
    blocked = {r.inputs["bucket"] for r in mocks.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")}
    buckets = {f"{b.name}-id" for b in mocks.of_type("aws:s3/bucket:Bucket")}
    assert buckets and buckets <= blocked
    raw = [b for b in mocks.of_type("aws:s3/bucket:Bucket") if "-raw-" in b.inputs["bucket"]]
    assert f"{raw[0].name}-id" in encrypted
    (bucket_policy,) = [d for r, d in _documents(mocks) if r.type == "aws:s3/bucketPolicy:BucketPolicy"]
    denies = [s for s in bucket_policy["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_exchange_keys_never_reach_state_or_environment(configuration):
    _, settings, mocks = configuration
    for function in mocks.of_type("aws:lambda/function:Function"):
        variables = function.inputs.get("environment", {}).get("variables", {})
        assert not any("apikey" in k.lower() or k.lower().endswith("secret") for k in variables), function.name
        if settings.exchange.secret_name and "BTC_TRADER_EXCHANGE_SECRET_NAME" in variables:
            assert variables["BTC_TRADER_EXCHANGE_SECRET_NAME"] == settings.exchange.secret_name
    assert not mocks.of_type("aws:secretsmanager/secretVersion:SecretVersion"), "the program never writes the keys"
