"""The one shape every Lambda of the stack has: own role, own log group, tracing, Powertools."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import StackSettings
from components.iam import assume_role_policy
from components.network import VpcPlacement

# X-Ray's write actions do not support resource-level permissions: `*` is the only resource.
XRAY_STATEMENT = {
    "Sid": "XRayTraces",
    "Effect": "Allow",
    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    "Resource": "*",
}


@dataclass
class PythonFunctionArgs:
    role: str  # e.g. "price-collector": names the function, its role and its log group
    handler_module: str  # e.g. "functions.price_collector"
    settings: StackSettings
    names: ResourceNames
    code: pulumi.Archive
    environment: dict[str, str]
    # IAM statements the function needs beyond logs and X-Ray; values may be Outputs.
    statements: list[dict[str, Any]] = field(default_factory=list)
    layers: list[pulumi.Input[str]] = field(default_factory=list)
    reserved_concurrency: int | None = None
    # Asynchronous invocations (schedules): how often Lambda retries a failed run.
    async_retries: int | None = None
    description: str = ""
    # Private subnets of the optional VPC (`network.vpc`); None runs the function outside a VPC.
    vpc: VpcPlacement | None = None


class PythonFunction(pulumi.ComponentResource):
    """A Python Lambda with least-privilege role, retained logs and active tracing."""

    def __init__(self, name: str, args: PythonFunctionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("btc-trader:compute:PythonFunction", name, None, opts)
        settings, lambda_settings = args.settings, args.settings.lambda_settings
        self.function_name = args.names.function(args.role)
        child = pulumi.ResourceOptions(parent=self)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{self.function_name}",
            retention_in_days=settings.log_retention_days,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.names.function_role(args.role),
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            opts=child,
        )
        logs_statement = {
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": self.log_group.arn.apply(lambda arn: f"{arn}:*"),
        }
        self.policy_document = pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [logs_statement, XRAY_STATEMENT, *args.statements,
                              *(args.vpc.statements(args.names) if args.vpc else [])],
            }
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=self.policy_document,
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=self.function_name,
            description=args.description,
            role=self.role.arn,
            runtime=lambda_settings.python_runtime,
            architectures=[lambda_settings.architecture],
            handler=f"{args.handler_module}.lambda_handler",
            code=args.code,
            layers=args.layers,
            memory_size=lambda_settings.memory_mb,
            timeout=lambda_settings.timeout_seconds,
            reserved_concurrent_executions=args.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=args.environment),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            vpc_config=args.vpc.vpc_config() if args.vpc else None,
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=self.log_group.name
            ),
            # The policy must exist before the first invocation can write logs or data.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, self.log_group]),
        )
        self.async_config = None
        if args.async_retries is not None:
            self.async_config = aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-async",
                function_name=self.function.name,
                maximum_retry_attempts=args.async_retries,
                maximum_event_age_in_seconds=max(60, settings.price_collection_interval * 60),
                opts=child,
            )
        self.register_outputs(
            {
                "function_name": self.function.name,
                "function_arn": self.function.arn,
                "role_arn": self.role.arn,
                "log_group": self.log_group.name,
            }
        )
