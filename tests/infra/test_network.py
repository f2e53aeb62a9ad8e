"""The optional VPC under Pulumi mocks: subnets, NAT, endpoints, functions placed in private subnets."""

import json

import pytest

from components.network import subnet_cidrs
from tests.infra.harness import ACCOUNT, REGION, policy_statements
from tests.infra.program_runs import outputs_of, run_main

FUNCTION = "aws:lambda/function:Function"


@pytest.fixture(scope="module")
def vpc_prod():
    return run_main("prod", {"btc-trader:network": {"vpc": True, "azs": 2, "natGateways": 2,
                                                    "interfaceEndpoints": ["secretsmanager", "bedrock-runtime"]}})


def test_without_the_option_there_is_no_vpc():
    mocks = run_main("dev")
    assert not mocks.of_type("aws:ec2/vpc:Vpc")
    assert all(not f.inputs.get("vpcConfig") for f in mocks.of_type(FUNCTION))


def test_subnet_layout():
    assert subnet_cidrs("10.20.0.0/16", 2) == (["10.20.0.0/18", "10.20.64.0/18"], ["10.20.128.0/18", "10.20.192.0/18"])
    public, private = subnet_cidrs("10.20.0.0/24", 6)
    assert len(public) == len(private) == 6 and all(c.endswith("/28") for c in public + private)


def test_functions_run_in_the_private_subnets(vpc_prod):
    private = {s.outputs["id"] for s in vpc_prod.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    (group,) = [g.outputs["id"] for g in vpc_prod.of_type("aws:ec2/securityGroup:SecurityGroup") if "functions" in g.name]
    functions = vpc_prod.of_type(FUNCTION)
    assert len(functions) == 6 and len(private) == 2
    for function in functions:
        config = function.inputs["vpcConfig"]
        assert set(config["subnetIds"]) == private and config["securityGroupIds"] == [group]


def test_nat_for_the_exchanges_and_free_gateway_endpoints(vpc_prod):
    nats = vpc_prod.of_type("aws:ec2/natGateway:NatGateway")
    public = {s.outputs["id"] for s in vpc_prod.of_type("aws:ec2/subnet:Subnet") if "public" in s.name}
    assert len(nats) == 2 and {n.inputs["subnetId"] for n in nats} == public
    private_tables = [t for t in vpc_prod.of_type("aws:ec2/routeTable:RouteTable") if "private" in t.name]
    assert {t.inputs["routes"][0]["natGatewayId"] for t in private_tables} == {n.outputs["id"] for n in nats}
    endpoints = {e.inputs["serviceName"]: e.inputs for e in vpc_prod.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    for service in ("s3", "dynamodb"):
        gateway = endpoints[f"com.amazonaws.{REGION}.{service}"]
        assert gateway["vpcEndpointType"] == "Gateway"
        assert set(gateway["routeTableIds"]) == {t.outputs["id"] for t in private_tables}
    for service in ("secretsmanager", "bedrock-runtime"):
        interface = endpoints[f"com.amazonaws.{REGION}.{service}"]
        assert interface["vpcEndpointType"] == "Interface" and interface["privateDnsEnabled"] is True
    assert len(endpoints) == 4


def test_functions_security_group_allows_https_out_only(vpc_prod):
    (group,) = [g.inputs for g in vpc_prod.of_type("aws:ec2/securityGroup:SecurityGroup") if "functions" in g.name]
    assert not group.get("ingress")
    assert [(e["protocol"], e["fromPort"], e["toPort"]) for e in group["egress"]] == [("tcp", 443, 443)]


def test_eni_permissions_are_scoped_to_the_vpc(vpc_prod):
    vpc_arn = outputs_of(vpc_prod, "aws:ec2/vpc:Vpc", "arn").pop()
    subnets = {s.outputs["arn"] for s in vpc_prod.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    for policy in vpc_prod.of_type("aws:iam/rolePolicy:RolePolicy"):
        statements = {s["Sid"]: s for s in policy_statements(policy.inputs["policy"])}
        if "OwnLogGroup" not in statements:
            continue  # not a function's role
        create, manage = statements["VpcCreateInterfaces"], statements["VpcManageInterfaces"]
        interfaces = f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*"
        assert interfaces in create["Resource"] and subnets <= set(create["Resource"])
        assert manage["Resource"] == interfaces and manage["Condition"] == {"ArnEquals": {"ec2:Vpc": vpc_arn}}
        assert json.dumps(statements).count('"Resource": "*"') == 2  # X-Ray and ENI Describe only
