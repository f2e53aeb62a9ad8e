"""Physical names of every resource of a stack, shared by Pulumi and the local emulator.

Names are explicit (not Pulumi auto-names) so that the emulator, the CLI and the functions'
environment agree with what `pulumi up` creates. S3 names are global, so the raw bucket carries
the account and region.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PROJECT = "btc-trader"
# A stack name becomes part of S3 bucket names: lowercase letters, digits and single hyphens,
# starting with a letter (Pulumi itself would also accept uppercase, `_` and `.`).
STACK_NAME = re.compile(r"^[a-z](?:-?[a-z0-9])*$")
# The digest that names a SageMaker model and endpoint config (ml_prediction).
SAGEMAKER_DIGEST_LENGTH = 12
# Every Lambda function of a stack, by role (the function's name is `<prefix>-<role>`).
PRICE_COLLECTOR = "price-collector"
ML_PREDICTOR = "ml-predictor"
PREDICTION_EVALUATOR = "prediction-evaluator"
RISK_MANAGER = "risk-manager"
TRADE_EXECUTOR = "trade-executor"
FUNCTION_ROLES = (PRICE_COLLECTOR, ML_PREDICTOR, PREDICTION_EVALUATOR, RISK_MANAGER, TRADE_EXECUTOR)
# Every EventBridge rule of a stack, by purpose.
COLLECT_PRICES = "collect-prices"
EVALUATE_PREDICTIONS = "evaluate-predictions"
START_TRADING = "trade"
SCHEDULE_PURPOSES = (COLLECT_PRICES, EVALUATE_PREDICTIONS, START_TRADING)
# An AWS account id is always 12 digits; the checks use one so lengths are exact before deploy.
ACCOUNT_ID_LENGTH = 12


@dataclass(frozen=True)
class PhysicalName:
    """One derived name with the AWS limit it must respect."""

    kind: str
    name: str
    max_length: int


@dataclass(frozen=True)
class ResourceNames:
    stack: str
    account_id: str
    region: str
    project: str = PROJECT

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def table(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def function(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @property
    def raw_bucket(self) -> str:
        return f"{self.prefix}-raw-{self.account_id}-{self.region}"

    @property
    def models_bucket(self) -> str:
        return f"{self.prefix}-models-{self.account_id}-{self.region}"

    def function_role(self, role: str) -> str:
        return f"{self.function(role)}-role"

    @property
    def workflow_role(self) -> str:
        return f"{self.state_machine}-role"

    @property
    def schedule_role(self) -> str:
        return f"{self.prefix}-start-trading"

    @property
    def sagemaker_role(self) -> str:
        return f"{self.prefix}-chronos-sagemaker"

    def schedule_rule(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}"

    def sagemaker_model(self, digest: str) -> str:
        return f"{self.prefix}-chronos-{digest}"

    def physical_names(self, functions: Iterable[str], schedules: Iterable[str]) -> list[PhysicalName]:
        """Every derived name whose AWS limit a stack name could break, with that limit."""
        names = [
            PhysicalName("S3 bucket", self.raw_bucket, 63),
            PhysicalName("S3 bucket", self.models_bucket, 63),
            PhysicalName("IAM role", self.workflow_role, 64),
            PhysicalName("IAM role", self.schedule_role, 64),
            PhysicalName("IAM role", self.sagemaker_role, 64),
            PhysicalName("Step Functions state machine", self.state_machine, 80),
            PhysicalName("SageMaker model", self.sagemaker_model("0" * SAGEMAKER_DIGEST_LENGTH), 63),
            PhysicalName("SNS topic", self.alerts_topic, 256),
        ]
        for role in functions:
            names.append(PhysicalName("Lambda function", self.function(role), 64))
            names.append(PhysicalName("IAM role", self.function_role(role), 64))
        names += [PhysicalName("EventBridge rule", self.schedule_rule(purpose), 64) for purpose in schedules]
        return names

    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def timestream_database(self) -> str:
        return f"{self.prefix}-market"

    @property
    def timestream_table(self) -> str:
        return "prices"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-trading-workflow"

    @property
    def metrics_namespace(self) -> str:
        # One namespace per stack: dev and prod in one account must not share metrics or alarms.
        return f"BtcTrader/{self.stack}"

    @property
    def parameter_path(self) -> str:
        return f"/{self.project}/{self.stack}"
