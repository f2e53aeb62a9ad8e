"""The trading workflow's state machine, built by one pure function.

The same definition is deployed by Pulumi (with real ARNs) and executed locally by the emulator
(with the local ones), and unit-tested as data. Each Lambda returns only its own part of the
state; `ResultPath` stores it under its key, so the state grows and nothing is lost.
"""

from __future__ import annotations

import json
from typing import Any

# Transient Lambda failures worth retrying; anything else goes straight to Alert.
TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
]


def _task(function_arn: str, result_path: str, next_state: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": function_arn,
        "ResultPath": result_path,
        "TimeoutSeconds": 120,
        "Retry": [{"ErrorEquals": TRANSIENT_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Alert"}],
        "Next": next_state,
    }


def trading_workflow(predictor_arn: str, risk_arn: str, executor_arn: str, topic_arn: str) -> dict[str, Any]:
    """Stamp -> Predict -> CheckRisk -> Approved? -> Execute -> Notify | Rejected; errors -> Alert -> Fail."""
    return {
        "Comment": "btc-trader: predict, check risk, execute approved intents, notify",
        "StartAt": "HasClock",
        "States": {
            # Scheduled runs get the execution's name and time; replays bring their own clock.
            "HasClock": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.requested_at", "IsPresent": True, "Next": "Predict"}],
                "Default": "Stamp",
            },
            "Stamp": {
                "Type": "Pass",
                "Parameters": {
                    "symbol.$": "$.symbol",
                    "execution_id.$": "$$.Execution.Name",
                    "requested_at.$": "$$.State.EnteredTime",
                },
                "Next": "Predict",
            },
            "Predict": _task(predictor_arn, "$.prediction", "CheckRisk"),
            "CheckRisk": _task(risk_arn, "$.risk", "Approved"),
            "Approved": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.risk.approved", "BooleanEquals": True, "Next": "Execute"}],
                "Default": "Rejected",
            },
            "Rejected": {"Type": "Succeed", "Comment": "no trade; the reasons are in $.risk.reasons"},
            "Execute": _task(executor_arn, "$.trade", "Notify"),
            "Notify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {
                    "TopicArn": topic_arn,
                    "Subject": "btc-trader trade",
                    "Message.$": "$.trade",
                },
                "ResultPath": None,
                "End": True,
            },
            "Alert": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {
                    "TopicArn": topic_arn,
                    "Subject": "btc-trader workflow failed",
                    "Message.$": "$.error",
                },
                "ResultPath": None,
                "Next": "Fail",
            },
            "Fail": {"Type": "Fail", "Error": "WorkflowFailed", "Cause": "a step failed; see the alert"},
        },
    }


def definition_json(*arns: str) -> str:
    """The definition as the JSON string Step Functions takes."""
    return json.dumps(trading_workflow(*arns), indent=2)
