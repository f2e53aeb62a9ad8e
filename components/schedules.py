"""EventBridge schedules that invoke a Lambda: rule, target and a permission scoped to the rule."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def rate(minutes: int) -> str:
    """EventBridge rate syntax: `rate(1 minute)` is singular, anything else plural."""
    return f"rate({minutes} minute{'s' if minutes != 1 else ''})"


def schedule_lambda(
    name: str, rule_name: str, description: str, minutes: int, function: aws.lambda_.Function,
    opts: pulumi.ResourceOptions,
) -> tuple[aws.cloudwatch.EventRule, aws.cloudwatch.EventTarget, aws.lambda_.Permission]:
    """Invoke `function` every `minutes`."""
    rule = aws.cloudwatch.EventRule(
        f"{name}-schedule", name=rule_name, description=description, schedule_expression=rate(minutes), opts=opts
    )
    target = aws.cloudwatch.EventTarget(f"{name}-schedule-target", rule=rule.name, arn=function.arn, opts=opts)
    permission = aws.lambda_.Permission(
        f"{name}-schedule-permission", action="lambda:InvokeFunction", function=function.name,
        principal="events.amazonaws.com", source_arn=rule.arn, opts=opts,
    )
    return rule, target, permission
