"""Optional VPC (`network.vpc`): the functions run in private subnets.

The price collector and the trade executor call exchanges on the internet, so private subnets
need a NAT gateway: that is the cost of this option (see the README's Security section). S3 and
DynamoDB, the bulk of the traffic, go through gateway endpoints, which are free and keep that
traffic off the NAT's per-GB charge. Interface endpoints for other AWS services are opt-in
(`network.interfaceEndpoints`): each costs per AZ-hour, and the NAT already reaches them.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import StackSettings

HTTPS = 443


@dataclass
class NetworkArgs:
    settings: StackSettings
    names: ResourceNames


@dataclass
class VpcPlacement:
    """Where a function runs and the least-privilege ENI permissions Lambda needs to put it there."""

    vpc_arn: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    subnet_arns: list[pulumi.Output[str]]
    security_group_id: pulumi.Output[str]
    security_group_arn: pulumi.Output[str]

    def vpc_config(self) -> aws.lambda_.FunctionVpcConfigArgs:
        return aws.lambda_.FunctionVpcConfigArgs(subnet_ids=self.subnet_ids,
                                                 security_group_ids=[self.security_group_id])

    def statements(self, names: ResourceNames) -> list[dict[str, Any]]:
        """What AWSLambdaVPCAccessExecutionRole grants on `*`, narrowed to this VPC."""
        interfaces = f"arn:aws:ec2:{names.region}:{names.account_id}:network-interface/*"
        return [
            {"Sid": "VpcCreateInterfaces", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface"],
             "Resource": [interfaces, *self.subnet_arns, self.security_group_arn]},
            {"Sid": "VpcManageInterfaces", "Effect": "Allow",
             "Action": ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses"],
             "Resource": interfaces, "Condition": {"ArnEquals": {"ec2:Vpc": self.vpc_arn}}},
            # Describe calls have no resource-level permissions.
            {"Sid": "VpcDescribe", "Effect": "Allow",
             "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], "Resource": "*"},
        ]


def subnet_cidrs(cidr: str, azs: int) -> tuple[list[str], list[str]]:
    """(public, private) CIDRs: the VPC split into equal blocks, one public and one private per AZ."""
    network = ipaddress.IPv4Network(cidr)
    blocks = list(network.subnets(new_prefix=network.prefixlen + math.ceil(math.log2(2 * azs))))
    return [str(b) for b in blocks[:azs]], [str(b) for b in blocks[azs:2 * azs]]


class Network(pulumi.ComponentResource):
    """VPC, public subnets with NAT, private subnets for the functions, endpoints."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("btc-trader:network:Network", name, None, opts)
        settings, names = args.settings, args.names
        network = settings.network
        child = pulumi.ResourceOptions(parent=self)

        def tags(role: str) -> dict[str, str]:
            return {"Name": f"{names.prefix}-{role}", "btc-trader:stack": names.stack}

        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=network.cidr, enable_dns_support=True,
                               enable_dns_hostnames=True, tags=tags("vpc"), opts=child)
        zones = aws.get_availability_zones_output(state="available").names
        public_cidrs, private_cidrs = subnet_cidrs(network.cidr, network.azs)

        self.internet_gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags("igw"),
                                                        opts=child)
        self.public_route_table = aws.ec2.RouteTable(
            f"{name}-public-routes", vpc_id=self.vpc.id, tags=tags("public"),
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=self.internet_gateway.id)],
            opts=child,
        )
        self.public_subnets, self.private_subnets, self.private_route_tables = [], [], []
        for i, (public_cidr, private_cidr) in enumerate(zip(public_cidrs, private_cidrs, strict=True)):
            zone = zones.apply(lambda names_, i=i: _zone(names_, i, network.azs))
            public = aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=self.vpc.id, cidr_block=public_cidr,
                                    availability_zone=zone, map_public_ip_on_launch=False,
                                    tags=tags(f"public-{i}"), opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}-routes", subnet_id=public.id,
                                          route_table_id=self.public_route_table.id, opts=child)
            private = aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=self.vpc.id, cidr_block=private_cidr,
                                     availability_zone=zone, map_public_ip_on_launch=False,
                                     tags=tags(f"private-{i}"), opts=child)
            self.public_subnets.append(public)
            self.private_subnets.append(private)

        self.nat_gateways = []
        for i in range(network.nat_gateways):
            address = aws.ec2.Eip(f"{name}-nat-{i}-ip", domain="vpc", tags=tags(f"nat-{i}"), opts=child)
            self.nat_gateways.append(aws.ec2.NatGateway(
                f"{name}-nat-{i}", subnet_id=self.public_subnets[i].id, allocation_id=address.id,
                tags=tags(f"nat-{i}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.internet_gateway]),
            ))
        for i, private in enumerate(self.private_subnets):
            nat = self.nat_gateways[i % len(self.nat_gateways)]  # each AZ its own NAT when there are enough
            table = aws.ec2.RouteTable(
                f"{name}-private-{i}-routes", vpc_id=self.vpc.id, tags=tags(f"private-{i}"),
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)], opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}-routes-association", subnet_id=private.id,
                                          route_table_id=table.id, opts=child)
            self.private_route_tables.append(table)

        # The functions take no inbound connections and speak HTTPS only (venues, exchanges, AWS).
        self.function_security_group = aws.ec2.SecurityGroup(
            f"{name}-functions", vpc_id=self.vpc.id, name=f"{names.prefix}-functions",
            description="btc-trader functions: no inbound, HTTPS out",
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=HTTPS, to_port=HTTPS,
                                                    cidr_blocks=["0.0.0.0/0"], description="HTTPS")],
            tags=tags("functions"), opts=child,
        )
        self.gateway_endpoints = {
            service: aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint", vpc_id=self.vpc.id, vpc_endpoint_type="Gateway",
                service_name=f"com.amazonaws.{names.region}.{service}",
                route_table_ids=[t.id for t in self.private_route_tables], tags=tags(f"{service}-endpoint"),
                opts=child,
            )
            for service in ("s3", "dynamodb")
        }
        self.interface_endpoints = {}
        if network.interface_endpoints:
            self.endpoint_security_group = aws.ec2.SecurityGroup(
                f"{name}-endpoints", vpc_id=self.vpc.id, name=f"{names.prefix}-endpoints",
                description="Interface endpoints: HTTPS from the functions only",
                ingress=[aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=HTTPS, to_port=HTTPS,
                    security_groups=[self.function_security_group.id], description="HTTPS from the functions")],
                tags=tags("endpoints"), opts=child,
            )
            for service in network.interface_endpoints:
                self.interface_endpoints[service] = aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}-endpoint", vpc_id=self.vpc.id,
                    vpc_endpoint_type="Interface", service_name=f"com.amazonaws.{names.region}.{service}",
                    private_dns_enabled=True, subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[self.endpoint_security_group.id], tags=tags(f"{service}-endpoint"),
                    opts=child,
                )

        self.placement = VpcPlacement(
            vpc_arn=self.vpc.arn,
            subnet_ids=[s.id for s in self.private_subnets],
            subnet_arns=[s.arn for s in self.private_subnets],
            security_group_id=self.function_security_group.id,
            security_group_arn=self.function_security_group.arn,
        )
        self.register_outputs({
            "vpc_id": self.vpc.id,
            "private_subnet_ids": self.placement.subnet_ids,
            "nat_gateways": len(self.nat_gateways),
        })


def _zone(available: list[str] | None, index: int, wanted: int) -> str:
    if not available or len(available) < wanted:
        raise ValueError(f"btc-trader:network.azs is {wanted} but the region has "
                         f"{len(available or [])} available zones: lower network.azs")
    return available[index]
