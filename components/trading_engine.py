"""Trading: trades and state tables, alerts topic, risk manager, executor, the state machine and
its schedule per symbol. Real trading is guarded here too: the exchange secret must exist."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from btc_trader.stack.environment import (
    ORDER_RECONCILER,
    RISK_MANAGER,
    TRADE_EXECUTOR,
    kill_switch_parameter,
    reconciler_environment,
    trading_environment,
)
from btc_trader.stack.naming import START_TRADING, ResourceNames
from btc_trader.stack.settings import StackSettings
from btc_trader.storage_schema import IDEMPOTENCY, LEASE_KEY_PREFIX, PRICES, TRADES, TRADING_STATE
from btc_trader.workflow import trading_workflow
from components.iam import service_role
from components.lambda_packaging import LambdaArtifacts
from components.network import VpcPlacement
from components.python_function import PythonFunction, PythonFunctionArgs
from components.schedules import rate, schedule_lambda
from components.tables import table_from_spec


def alarm_source(names: ResourceNames) -> dict[str, dict[str, str]]:
    """Condition admitting only this stack's CloudWatch alarms (all are named `<prefix>-...`)."""
    return {
        "StringEquals": {"aws:SourceAccount": names.account_id},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{names.region}:{names.account_id}:alarm:{names.prefix}-*"},
    }


def alerts_key_policy(names: ResourceNames) -> dict:
    """The alerts key: administered through IAM (AWS's default statement, which grants nothing by
    itself), usable by this stack's alarms for publishing to the topic."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{names.account_id}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "StackAlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*", "Condition": alarm_source(names)},
        ],
    }


def alerts_topic_policy(names: ResourceNames, topic_arn: str) -> dict:
    """Who may publish besides IAM principals of the account: this stack's alarms, over TLS only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "StackAlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": "sns:Publish", "Resource": topic_arn, "Condition": alarm_source(names)},
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
             "Resource": topic_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }


@dataclass
class TradingEngineArgs:
    settings: StackSettings
    names: ResourceNames
    code: LambdaArtifacts | pulumi.Archive  # btc-trader build output (one bundle per function)
    predictor_function: aws.lambda_.Function
    layers: list[pulumi.Input[str]] = field(default_factory=list)
    vpc: VpcPlacement | None = None  # the optional VPC's private subnets


def exchange_key_statements(secret_arn: pulumi.Input[str] | None) -> list[dict]:
    """Read access to the exchange keys' secret, for the functions that talk to the exchange (live only)."""
    if secret_arn is None:
        return []
    return [{"Sid": "ExchangeKeys", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
             "Resource": secret_arn}]


class TradingEngine(pulumi.ComponentResource):
    def __init__(self, name: str, args: TradingEngineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("btc-trader:trading:TradingEngine", name, None, opts)
        settings, names = args.settings, args.names
        child = pulumi.ResourceOptions(parent=self)

        self.trades_table = table_from_spec(f"{name}-trades", TRADES, names, child)
        self.state_table = table_from_spec(f"{name}-state", TRADING_STATE, names, child)
        self.idempotency_table = table_from_spec(f"{name}-idempotency", IDEMPOTENCY, names, child)

        # A customer managed key: CloudWatch alarms cannot publish to a topic encrypted with the
        # AWS managed key (its policy cannot admit cloudwatch.amazonaws.com).
        self.alerts_key = aws.kms.Key(
            f"{name}-alerts-key",
            description=f"Encrypts the {names.alerts_topic} topic",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(alerts_key_policy(names)),
            opts=child,
        )
        self.alerts_key_alias = aws.kms.Alias(
            f"{name}-alerts-key-alias", name=f"alias/{names.alerts_topic}", target_key_id=self.alerts_key.key_id,
            opts=child,
        )
        self.topic = aws.sns.Topic(
            f"{name}-alerts", name=names.alerts_topic, kms_master_key_id=self.alerts_key.arn, opts=child
        )
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-alerts-policy", arn=self.topic.arn,
            policy=self.topic.arn.apply(lambda arn: json.dumps(alerts_topic_policy(names, arn))), opts=child,
        )
        if settings.alert_email:
            aws.sns.TopicSubscription(
                f"{name}-alerts-email", topic=self.topic.arn, protocol="email", endpoint=settings.alert_email,
                opts=child,
            )
        self.kill_switch = aws.ssm.Parameter(
            f"{name}-kill-switch",
            name=kill_switch_parameter(names),
            type="String",
            value="off",
            description='Set to "on" to stop all trading at the next run, without a deploy',
            # The operator owns the value after creation; a deploy must not switch it back off.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
        )

        secret_arn = None
        if settings.enable_real_trading:
            # Fails `pulumi up` (before anything is changed) when the secret does not exist.
            secret_arn = aws.secretsmanager.get_secret_output(name=settings.exchange.secret_name).arn

        self.risk_manager = PythonFunction(
            f"{name}-risk",
            PythonFunctionArgs(
                vpc=args.vpc,
                role=RISK_MANAGER, handler_module="functions.risk_manager", settings=settings, names=names,
                code=args.code, layers=args.layers,
                environment=trading_environment(settings, names, RISK_MANAGER),
                statements=[
                    {"Sid": "TradingState", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                     "Resource": self.state_table.arn},
                    {"Sid": "KillSwitch", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                     "Resource": self.kill_switch.arn},
                    # The latest stored price, to check the prediction's against.
                    {"Sid": "StoredPrices", "Effect": "Allow", "Action": ["dynamodb:Query"],
                     "Resource": f"arn:aws:dynamodb:{names.region}:{names.account_id}:table/{names.table(PRICES.role)}"},
                ],
                description="Turns a prediction into an order intent and applies every risk rule",
            ),
            opts=child,
        )
        executor_statements = [
            {"Sid": "Trades", "Effect": "Allow",
             "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
             "Resource": self.trades_table.arn},
            {"Sid": "TradingState", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
             "Resource": self.state_table.arn},
            {"Sid": "Idempotency", "Effect": "Allow",
             "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
             "Resource": self.idempotency_table.arn},
        ]
        executor_statements += exchange_key_statements(secret_arn)
        self.executor = PythonFunction(
            f"{name}-executor",
            PythonFunctionArgs(
                vpc=args.vpc,
                role=TRADE_EXECUTOR, handler_module="functions.trade_executor", settings=settings, names=names,
                code=args.code, layers=args.layers,
                environment=trading_environment(settings, names, TRADE_EXECUTOR),
                statements=executor_statements,
                # Opt-in: the per-symbol lease already keeps two executions from trading at once.
                reserved_concurrency=settings.executor_reserved_concurrency,
                description="Executes approved intents exactly once (paper wallet or exchange)",
            ),
            opts=child,
        )

        # The order reconciler: unresolved orders and ledger-vs-exchange checks between runs. It
        # settles trades it resolves (trade + state in one transaction) and publishes alerts. No
        # reserved concurrency (new accounts cannot reserve any): overlapping passes are safe, every
        # write is conditional on the version it read.
        reconciler_statements = [
            {"Sid": "Trades", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
             "Resource": self.trades_table.arn},
            {"Sid": "TradingState", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
             "Resource": self.state_table.arn},
            {"Sid": "Alerts", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": self.topic.arn},
            {"Sid": "EncryptedTopic", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
             "Resource": self.alerts_key.arn},
        ]
        reconciler_statements += exchange_key_statements(secret_arn)
        self.reconciler = PythonFunction(
            f"{name}-reconciler",
            PythonFunctionArgs(
                vpc=args.vpc,
                role=ORDER_RECONCILER, handler_module="functions.order_reconciler", settings=settings, names=names,
                code=args.code, layers=args.layers,
                environment=reconciler_environment(settings, names),
                statements=reconciler_statements,
                description="Resolves orders of unknown fate and checks the live ledger against the exchange",
            ),
            opts=child,
        )
        self.reconcile_schedule, _, _ = schedule_lambda(
            f"{name}-reconcile", f"{names.prefix}-reconcile-orders",
            "Resolves unresolved orders and reconciles the live ledger", settings.trading_interval,
            self.reconciler.function, child,
        )

        self.workflow_logs = aws.cloudwatch.LogGroup(
            f"{name}-workflow-logs", name=f"/aws/vendedlogs/states/{names.state_machine}",
            retention_in_days=settings.log_retention_days, opts=child,
        )
        functions = [args.predictor_function, self.risk_manager.function, self.executor.function]
        self.workflow_role, self.workflow_policy = service_role(
            f"{name}-workflow", names.workflow_role, "states.amazonaws.com",
            [
                    {"Sid": "InvokeSteps", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                     "Resource": [f.arn for f in functions]},
                    {"Sid": "Notify", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": self.topic.arn},
                    # Ending an execution releases its symbol's lease, and only lease items.
                    {"Sid": "ReleaseLease", "Effect": "Allow", "Action": ["dynamodb:DeleteItem"],
                     "Resource": self.state_table.arn,
                     "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{LEASE_KEY_PREFIX}*"]}}},
                    {"Sid": "EncryptedTopic", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                     "Resource": self.alerts_key.arn},
                    # Log delivery and X-Ray APIs have no resource-level permissions.
                    {"Sid": "LogDelivery", "Effect": "Allow", "Resource": "*", "Action": [
                        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"]},
                    {"Sid": "Traces", "Effect": "Allow", "Resource": "*",
                     "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                                "xray:GetSamplingTargets"]},
            ],
            child,
        )
        definition = pulumi.Output.all(
            args.predictor_function.arn, self.risk_manager.function.arn, self.executor.function.arn, self.topic.arn,
            self.state_table.name,
        ).apply(lambda a: json.dumps(trading_workflow(*a[:4], state_table=a[4],
                                                      lambda_timeout_s=settings.lambda_settings.timeout_seconds)))
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-workflow",
            name=names.state_machine,
            role_arn=self.workflow_role.arn,
            definition=definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ERROR", include_execution_data=True,
                log_destination=self.workflow_logs.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.workflow_policy]),
        )

        self.schedule_role, _ = service_role(
            f"{name}-schedule", names.schedule_role, "events.amazonaws.com",
            [{"Sid": "StartWorkflow", "Effect": "Allow", "Action": ["states:StartExecution"],
              "Resource": self.state_machine.arn}],
            child,
        )
        self.schedule = aws.cloudwatch.EventRule(
            f"{name}-schedule", name=names.schedule_rule(START_TRADING),
            description="Starts the trading workflow for every symbol",
            schedule_expression=rate(settings.trading_interval),
            opts=child,
        )
        self.schedule_targets = [
            aws.cloudwatch.EventTarget(
                f"{name}-schedule-{symbol.lower()}", rule=self.schedule.name, arn=self.state_machine.arn,
                role_arn=self.schedule_role.arn, input=pulumi.Output.json_dumps({"symbol": symbol}), opts=child,
            )
            for symbol in settings.symbols
        ]
        self.register_outputs({
            "state_machine": self.state_machine.name,
            "alerts_topic": self.topic.arn,
            "trades_table": self.trades_table.name,
        })
