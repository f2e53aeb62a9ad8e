"""The trading workflow's state machine, built by one pure function.

The same definition is deployed by Pulumi (with real ARNs) and executed locally by the emulator
(with the local ones), and unit-tested as data. Each Lambda returns only its own part of the
state; `ResultPath` stores it under its key, so the state grows and nothing is lost.

A per-symbol lease serialises the decision and the trade: CheckRisk takes it (a conditional
write with an expiry in the trading-state table) and the state machine itself releases it when
the execution ends, on every path (Rejected, Notify, Alert), with a conditional DeleteItem that
only removes this execution's lease. Its expiry is `lease_seconds(definition)`: the worst case
of every step from CheckRisk to the release, read from this definition.
"""

from __future__ import annotations

import json
from typing import Any

from btc_trader.storage_schema import LEASE_KEY_PREFIX, TRADING_STATE

# Transient Lambda failures worth retrying; anything else goes straight to Alert.
TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
]
# Service integrations retried on throttling and server-side failures, never on a refusal
# (a lease this execution does not hold is a ConditionalCheckFailedException, not retried).
TRANSIENT_SNS_ERRORS = ["States.Timeout", "SNS.ThrottledException", "SNS.InternalErrorException",
                        "SNS.SdkClientException"]
TRANSIENT_DYNAMODB_ERRORS = ["States.Timeout", "DynamoDB.ThrottlingException", "DynamoDB.RequestLimitExceeded",
                             "DynamoDB.ProvisionedThroughputExceededException",
                             "DynamoDB.InternalServerErrorException", "DynamoDB.SdkClientException"]

DEFAULT_LAMBDA_TIMEOUT_S = 60
# Step Functions waits a little longer than the function may run, so the function's own
# timeout (with its logs) is what surfaces, not the state's.
TASK_TIMEOUT_MARGIN_S = 10
SERVICE_TASK_TIMEOUT_S = 10
# State transitions and scheduling between the steps the lease covers.
LEASE_MARGIN_S = 15
# The state that takes the lease; the states that end it.
LEASE_TAKEN_AT = "CheckRisk"
RELEASE_STATES = ("ReleaseAfterRejection", "ReleaseAfterTrade", "ReleaseAfterAlert")

LAMBDA_RETRY = {"ErrorEquals": TRANSIENT_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 2.0}
SNS_RETRY = {"ErrorEquals": TRANSIENT_SNS_ERRORS, "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}
DYNAMODB_RETRY = {"ErrorEquals": TRANSIENT_DYNAMODB_ERRORS, "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}


def _task(function_arn: str, result_path: str, next_state: str, timeout_s: int) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": function_arn,
        "ResultPath": result_path,
        "TimeoutSeconds": timeout_s,
        "Retry": [dict(LAMBDA_RETRY)],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Alert"}],
        "Next": next_state,
    }


def _release(state_table: str, next_state: str) -> dict[str, Any]:
    """Delete this execution's lease; a lease it does not hold (expired and taken, or never
    taken) is left alone and the execution ends as it would have."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:deleteItem",
        "Parameters": {
            "TableName": state_table,
            "Key": {TRADING_STATE.hash_key.name: {"S.$": f"States.Format('{LEASE_KEY_PREFIX}{{}}', $.symbol)"}},
            "ConditionExpression": "holder = :me",
            "ExpressionAttributeValues": {":me": {"S.$": "$.execution_id"}},
        },
        "ResultPath": None,
        "TimeoutSeconds": SERVICE_TASK_TIMEOUT_S,
        "Retry": [dict(DYNAMODB_RETRY)],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": next_state}],
        "Next": next_state,
    }


def _alert(topic_arn: str, message: dict[str, str]) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": topic_arn, "Subject": "btc-trader workflow failed", "Message": message},
        "ResultPath": None,
        "TimeoutSeconds": SERVICE_TASK_TIMEOUT_S,
        "Retry": [dict(SNS_RETRY)],
        # An alert that cannot be sent must still release the lease and fail the execution.
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "ReleaseAfterAlert"}],
        "Next": "ReleaseAfterAlert",
    }


def trading_workflow(predictor_arn: str, risk_arn: str, executor_arn: str, topic_arn: str, *, state_table: str,
                     lambda_timeout_s: int = DEFAULT_LAMBDA_TIMEOUT_S) -> dict[str, Any]:
    """Stamp -> Predict -> CheckRisk (lease) -> Approved? -> Execute -> Notify | Rejected; errors -> Alert;
    every ending releases the lease first."""
    task_timeout = lambda_timeout_s + TASK_TIMEOUT_MARGIN_S
    failure = {"symbol.$": "$.symbol", "execution_id.$": "$.execution_id", "error.$": "$.error"}
    return {
        "Comment": "btc-trader: predict, check risk under a per-symbol lease, execute approved intents, notify",
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
            "Predict": _task(predictor_arn, "$.prediction", LEASE_TAKEN_AT, task_timeout),
            LEASE_TAKEN_AT: _task(risk_arn, "$.risk", "Approved", task_timeout),
            "Approved": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.risk.approved", "BooleanEquals": True, "Next": "Execute"}],
                "Default": "ReleaseAfterRejection",
            },
            "ReleaseAfterRejection": _release(state_table, "Rejected"),
            "Rejected": {"Type": "Succeed", "Comment": "no trade; the reasons are in $.risk.reasons"},
            "Execute": _task(executor_arn, "$.trade", "Notify", task_timeout),
            "Notify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {
                    "TopicArn": topic_arn,
                    "Subject": "btc-trader trade",
                    "Message.$": "$.trade",
                },
                "ResultPath": None,
                "TimeoutSeconds": SERVICE_TASK_TIMEOUT_S,
                "Retry": [dict(SNS_RETRY)],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Alert"}],
                "Next": "ReleaseAfterTrade",
            },
            "ReleaseAfterTrade": _release(state_table, "Traded"),
            "Traded": {"Type": "Succeed", "Comment": "the trade is in $.trade"},
            # The alert names what an operator needs to find the order: once CheckRisk has
            # decided, the risk part carries the trade id and client order id of this execution.
            "Alert": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.risk.client_order_id", "IsPresent": True, "Next": "AlertWithOrder"}],
                "Default": "AlertBeforeOrder",
            },
            "AlertWithOrder": _alert(topic_arn, {
                **failure, "trade_id.$": "$.risk.trade_id", "client_order_id.$": "$.risk.client_order_id",
            }),
            "AlertBeforeOrder": _alert(topic_arn, {
                **failure, "trade_id": "none: failed before the risk decision, no order was possible",
                "client_order_id": "none",
            }),
            "ReleaseAfterAlert": _release(state_table, "Fail"),
            "Fail": {"Type": "Fail", "Error": "WorkflowFailed", "Cause": "a step failed; see the alert"},
        },
    }


def definition_json(*arns: str, state_table: str, lambda_timeout_s: int = DEFAULT_LAMBDA_TIMEOUT_S) -> str:
    """The definition as the JSON string Step Functions takes."""
    return json.dumps(trading_workflow(*arns, state_table=state_table, lambda_timeout_s=lambda_timeout_s), indent=2)


def task_worst_case_s(state: dict[str, Any]) -> float:
    """Longest a Task state can take: every attempt timing out, plus the backoff between them."""
    if "TimeoutSeconds" not in state:
        raise ValueError(f"task {state.get('Resource')} has no TimeoutSeconds: the lease could not be bounded")
    attempts, backoff = 1, 0.0
    for retrier in state.get("Retry", []):
        retries = retrier.get("MaxAttempts", 3)
        interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
        cap = retrier.get("MaxDelaySeconds")
        for n in range(retries):
            wait = interval * rate**n
            backoff += min(wait, cap) if cap else wait
        attempts += retries
    return state["TimeoutSeconds"] * attempts + backoff


def lease_seconds(definition: dict[str, Any]) -> int:
    """The lease's expiry: the worst path from the state that takes it to a state that releases it.

    Walks the definition (Next, Choices, Default, Catch), summing each task's worst case, so a
    change of a timeout, a retry or a new step changes the lease with it.
    """
    states = definition["States"]

    def worst(name: str, seen: frozenset[str]) -> float:
        if name in seen:
            raise ValueError(f"state {name} loops: the lease could not be bounded")
        state = states[name]
        own = task_worst_case_s(state) if state["Type"] == "Task" else 0.0
        if name in RELEASE_STATES:
            return own
        following = [state.get("Next"), state.get("Default")]
        following += [c.get("Next") for c in state.get("Choices", [])]
        following += [c.get("Next") for c in state.get("Catch", [])]
        nexts = {n for n in following if n}
        if not nexts:
            raise ValueError(f"state {name} ends the execution without releasing the lease")
        return own + max(worst(n, seen | {name}) for n in nexts)

    return int(worst(LEASE_TAKEN_AT, frozenset()) + LEASE_MARGIN_S + 0.999)
