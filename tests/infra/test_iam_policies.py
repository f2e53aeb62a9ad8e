"""Least privilege, proven: every policy document the program creates, in every configuration.

The program runs under Pulumi mocks for both stacks and with the optional features on
(Timestream, the SageMaker endpoint, real trading with a secret, the VPC). Every JSON policy in
any resource's inputs is collected, so a new kind of policy cannot slip past unchecked, and:
- no Allow grants a wildcard action;
- `*` as a resource only for actions that have no resource-level permissions (ALLOWED_STAR);
- every resource is one the program creates or one the stack's settings name (the configured
  Bedrock model, SageMaker endpoint, exchange secret; the Hugging Face DLC image);
- model, endpoint, secret, Timestream and VPC permissions exist only when the stack uses them;
- each function has its own role, trusted by Lambda only, with its own policy;
- resource policies admit no anonymous principal and service principals only for this stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from btc_trader.stack.settings import StackSettings, load_stack_with_overrides
from components.ml_prediction import bedrock_resources
from tests.infra.harness import ACCOUNT, REGION, RecordingMocks
from tests.infra.program_runs import outputs_of, run_main

# Actions whose documentation lists no resource types: `*` is the only resource that works.
ALLOWED_STAR = {
    "xray:PutTraceSegments": "X-Ray: no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray: no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray: no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray: no resource-level permissions",
    "logs:CreateLogDelivery": "Step Functions log delivery: vended-logs APIs take `*`",
    "logs:GetLogDelivery": "Step Functions log delivery",
    "logs:UpdateLogDelivery": "Step Functions log delivery",
    "logs:DeleteLogDelivery": "Step Functions log delivery",
    "logs:ListLogDeliveries": "Step Functions log delivery",
    "logs:PutResourcePolicy": "Step Functions log delivery",
    "logs:DescribeResourcePolicies": "Step Functions log delivery",
    "logs:DescribeLogGroups": "Step Functions log delivery",
    "timestream:DescribeEndpoints": "Timestream endpoint discovery",
    "ecr:GetAuthorizationToken": "ECR login token",
    "ec2:DescribeNetworkInterfaces": "Lambda VPC ENIs: Describe* has no resource-level permissions",
    "ec2:DescribeSubnets": "Lambda VPC ENIs",
}
# The AWS default key-policy statement: it delegates the key to IAM and grants nothing by itself.
KEY_DELEGATION = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                  "Action": "kms:*", "Resource": "*"}
# Where each kind of policy document lives, and what kind it is.
POLICY_KINDS = {
    ("aws:iam/rolePolicy:RolePolicy", "policy"): "identity",
    ("aws:iam/role:Role", "assumeRolePolicy"): "trust",
    ("aws:s3/bucketPolicy:BucketPolicy", "policy"): "resource",
    ("aws:sns/topicPolicy:TopicPolicy", "policy"): "resource",
    ("aws:kms/key:Key", "policy"): "resource",
}
TRUSTED_SERVICES = {"lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com",
                    "sagemaker.amazonaws.com"}
HF_IMAGE_REPOSITORY = f"arn:aws:ecr:{REGION}:763104351884:repository/huggingface-pytorch-inference"

VARIANTS = {
    "dev": ("dev", {}),
    "dev-timestream-vpc-custom-only": ("dev", {
        "btc-trader:timestream": {"enabled": True},
        "btc-trader:network": {"vpc": True},
        "btc-trader:mlModels": ["custom"],
    }),
    "prod": ("prod", {}),  # real trading with a secret, the SageMaker endpoint, all three models
    "prod-everything": ("prod", {
        "btc-trader:timestream": {"enabled": True},
        "btc-trader:network": {"vpc": True, "azs": 3, "natGateways": 3,
                               "interfaceEndpoints": ["secretsmanager", "sns", "states"]},
        "btc-trader:alertEmail": "ops@example.com",
        "btc-trader:bedrock": {"modelId": "anthropic.claude-3-5-haiku-20241022-v1:0"},
    }),
}


@dataclass
class Document:
    where: str  # "<resource name>.<input key>"
    kind: str
    statements: list[dict[str, Any]]
    type: str


def is_key_delegation(where: str, statement: dict[str, Any]) -> bool:
    """AWS's default first statement of a KMS key policy (and only there)."""
    return where.endswith("key.policy") and {k: v for k, v in statement.items() if k != "Sid"} == KEY_DELEGATION


@dataclass
class Program:
    stack: str
    settings: StackSettings
    mocks: RecordingMocks
    documents: list[Document]

    def created_arns(self) -> set[str]:
        return {r.outputs["arn"] for r in self.mocks.resources if isinstance(r.outputs.get("arn"), str)}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def find_documents(mocks: RecordingMocks) -> list[Document]:
    """Every policy document in any resource's inputs, wherever it sits."""
    documents = []

    def visit(resource, key: str, value: Any) -> None:
        if isinstance(value, str) and '"Statement"' in value:
            value = json.loads(value)
        if isinstance(value, dict) and "Statement" in value:
            kind = POLICY_KINDS.get((resource.type, key))
            assert kind, f"{resource.type} {resource.name}.{key} holds a policy this test does not check yet"
            documents.append(Document(f"{resource.name}.{key}", kind, as_list(value["Statement"]), resource.type))
        elif isinstance(value, dict):
            for sub_key, sub_value in value.items():
                visit(resource, f"{key}.{sub_key}", sub_value)
        elif isinstance(value, list):
            for item in value:
                visit(resource, key, item)

    for resource in mocks.resources:
        for key, value in resource.inputs.items():
            visit(resource, key, value)
    return documents


@pytest.fixture(scope="module", params=list(VARIANTS))
def program(request) -> Program:
    stack, overrides = VARIANTS[request.param]
    settings = load_stack_with_overrides(stack, {k.removeprefix("btc-trader:"): json.dumps(v)
                                                 for k, v in overrides.items()})
    mocks = run_main(stack, overrides)
    return Program(stack, settings, mocks, find_documents(mocks))


def allows(program: Program, kind: str = "identity") -> list[tuple[str, dict[str, Any]]]:
    return [(d.where, s) for d in program.documents if d.kind == kind for s in d.statements
            if s["Effect"] == "Allow"]


def external_resources(program: Program) -> set[str]:
    """Resources outside the stack that its settings name, and only those."""
    settings, found = program.settings, set()
    if "bedrock" in settings.ml_models:
        found |= set(bedrock_resources(settings.bedrock.model_id, REGION, ACCOUNT))
    if "huggingface" in settings.ml_models:
        found.add(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{settings.huggingface.endpoint_name.lower()}")
    if settings.huggingface.deploy_endpoint:
        found.add(HF_IMAGE_REPOSITORY)
        logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{settings.huggingface.endpoint_name}"
        found |= {logs, f"{logs}:log-stream:*"}
    if settings.enable_real_trading:
        (secret,) = [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{args['name']}-AbCdEf"
                     for token, args in program.mocks.calls if token == "aws:secretsmanager/getSecret:getSecret"]
        assert args_secret_is_configured(program, secret)
        found.add(secret)
    if settings.network.vpc:
        found.add(f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*")
    return found


def args_secret_is_configured(program: Program, secret_arn: str) -> bool:
    return f":secret:{program.settings.exchange.secret_name}-" in secret_arn


def resource_is_known(resource: str, created: set[str], external: set[str]) -> bool:
    """The resource is the stack's own (or a part of it: objects, log streams) or a configured one."""
    if resource in external:
        return True
    return any(resource == arn or resource.startswith((f"{arn}/", f"{arn}:")) for arn in created)


def test_every_policy_is_found(program):
    kinds = [d.kind for d in program.documents]
    roles = len(program.mocks.of_type("aws:iam/role:Role"))
    assert kinds.count("identity") == kinds.count("trust") == roles >= 7  # 5 functions, workflow, schedule
    assert kinds.count("resource") == 1 + len(program.mocks.of_type("aws:s3/bucket:Bucket")) + 1  # topic, buckets, key


def test_no_wildcard_actions(program):
    bad = [(where, s["Action"]) for where, s in allows(program) + allows(program, "resource")
           if not is_key_delegation(where, s) and any("*" in a for a in as_list(s["Action"]))]
    assert bad == []


def test_star_resources_only_where_resource_level_permissions_do_not_exist(program):
    bad = [(where, sorted(set(as_list(s["Action"])) - set(ALLOWED_STAR))) for where, s in allows(program)
           if "*" in as_list(s["Resource"]) and not set(as_list(s["Action"])) <= set(ALLOWED_STAR)]
    assert bad == []
    # ... and those statements are narrow: `*` never shares a statement with a named resource.
    assert all(as_list(s["Resource"]) == ["*"] for _, s in allows(program) if "*" in as_list(s["Resource"]))


def test_every_resource_is_the_stacks_own_or_configured(program):
    created, external = program.created_arns(), external_resources(program)
    unknown = [(where, r) for where, s in allows(program) for r in as_list(s["Resource"])
               if r != "*" and not resource_is_known(r, created, external)]
    assert unknown == []


def test_actions_match_their_resources_service(program):
    services = {"states": "states", "sfn": "states"}
    bad = []
    for where, statement in allows(program):
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                continue
            arn_service = services.get(resource.split(":")[2], resource.split(":")[2])
            for action in as_list(statement["Action"]):
                if action.split(":")[0] != arn_service:
                    bad.append((where, action, resource))
    assert bad == []


def test_permissions_only_for_what_the_stack_uses(program):
    settings = program.settings
    granted = {(a, r) for _, s in allows(program) for a in as_list(s["Action"]) for r in as_list(s["Resource"])}
    actions = {a for a, _ in granted}
    assert any(a.startswith("bedrock:") for a in actions) == ("bedrock" in settings.ml_models)
    assert {r for a, r in granted if a == "bedrock:InvokeModel"} == (
        set(bedrock_resources(settings.bedrock.model_id, REGION, ACCOUNT)) if "bedrock" in settings.ml_models else set())
    assert ("sagemaker:InvokeEndpoint" in actions) == ("huggingface" in settings.ml_models)
    assert ("secretsmanager:GetSecretValue" in actions) == settings.enable_real_trading
    assert ("timestream:WriteRecords" in actions) == settings.timestream.enabled
    assert ("ec2:CreateNetworkInterface" in actions) == settings.network.vpc
    assert ("ecr:BatchGetImage" in actions) == settings.huggingface.deploy_endpoint


def test_risk_manager_reads_stored_prices_and_the_workflow_releases_only_leases(program):
    """The risk manager checks its event against the prices table; the state machine's only
    write to the trading state is deleting a lease (issue #15)."""
    prices = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-{program.stack}-prices"
    state = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-{program.stack}-trading-state"
    by_role = {}
    for where, statement in allows(program):
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                by_role.setdefault((where.split(".")[0], resource), set()).add(action)
    risk = {a for (where, r), actions in by_role.items() if "risk" in where and r == prices for a in actions}
    assert risk == {"dynamodb:Query"}
    workflow_state = [(s, where) for where, s in allows(program) if "workflow" in where
                      and state in as_list(s["Resource"])]
    ((statement, _),) = workflow_state
    assert statement["Action"] == ["dynamodb:DeleteItem"]
    assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["lease#*"]


def test_each_function_has_its_own_role_and_policy(program):
    mocks = program.mocks
    functions = mocks.of_type("aws:lambda/function:Function")
    roles = {r.outputs["arn"]: r for r in mocks.of_type("aws:iam/role:Role")}
    used = [f.inputs["role"] for f in functions]
    assert len(functions) == 5 and len(set(used)) == len(used), "no two functions share a role"
    others = [r.inputs.get("roleArn") or r.inputs.get("executionRoleArn") for r in mocks.resources
              if r.type != "aws:lambda/function:Function"]
    assert not set(used) & set(others), "a function's role serves nothing else"
    policies_by_role: dict[str, int] = {}
    for policy in mocks.of_type("aws:iam/rolePolicy:RolePolicy"):
        policies_by_role[policy.inputs["role"]] = policies_by_role.get(policy.inputs["role"], 0) + 1
    for arn in used:
        role = roles[arn]
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
        assert policies_by_role[role.outputs["id"]] == 1
        assert not role.inputs.get("managedPolicyArns")
    assert not mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"), "no managed policies"
    assert len(roles) == len(policies_by_role), "every role has exactly its inline policy"


def test_trust_policies_name_one_service(program):
    for document in (d for d in program.documents if d.kind == "trust"):
        (statement,) = document.statements
        assert statement["Action"] == "sts:AssumeRole" and statement["Principal"]["Service"] in TRUSTED_SERVICES


def test_resource_policies_admit_no_stranger(program):
    for where, statement in allows(program, "resource"):
        if is_key_delegation(where, statement):
            continue
        principal = statement["Principal"]
        assert principal != "*" and "AWS" not in principal, where
        condition = statement["Condition"]
        assert condition["StringEquals"]["aws:SourceAccount"] == ACCOUNT, where
        assert condition["ArnLike"]["aws:SourceArn"] == (
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:btc-trader-{program.stack}-*"), where
    denies = [s for d in program.documents if d.kind == "resource" for s in d.statements if s["Effect"] == "Deny"]
    assert denies and all(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_lambda_invoke_permissions_are_scoped_to_their_rule(program):
    rules = outputs_of(program.mocks, "aws:cloudwatch/eventRule:EventRule", "arn")
    for permission in program.mocks.of_type("aws:lambda/permission:Permission"):
        assert permission.inputs["principal"] == "events.amazonaws.com"
        assert permission.inputs["sourceArn"] in rules


def test_the_checks_can_fail():
    """The checks above reject what they exist to reject."""
    created = {f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-dev-prices"}
    assert not resource_is_known(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/someone-elses", created, set())
    assert not resource_is_known(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-dev-prices2", created, set())
    assert resource_is_known(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/btc-trader-dev-prices/index/x", created, set())

    class Fake:
        type, name = "aws:iam/policy:Policy", "managed"
        inputs = {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})}

    mocks = RecordingMocks()
    mocks.resources.append(Fake())
    with pytest.raises(AssertionError, match="holds a policy this test does not check yet"):
        find_documents(mocks)
