"""IAM shapes every component uses: a role a service can assume, with one inline policy."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws


def assume_role_policy(service: str) -> str:
    """Trust policy letting `service` (e.g. `lambda.amazonaws.com`) assume the role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


def service_role(
    name: str, role_name: str, service: str, statements: list[dict[str, Any]], opts: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role for `service` with exactly `statements` (values may be Outputs)."""
    role = aws.iam.Role(f"{name}-role", name=role_name, assume_role_policy=assume_role_policy(service), opts=opts)
    policy = aws.iam.RolePolicy(
        f"{name}-policy", role=role.id,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}), opts=opts,
    )
    return role, policy
