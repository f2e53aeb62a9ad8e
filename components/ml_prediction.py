"""Prediction: the predictions and scores tables, the predictor, the scheduled evaluator, and
(optionally) a serverless SageMaker endpoint serving Chronos-Bolt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from btc_trader.chronos_endpoint import (
    container_environment,
    deployment_digest,
    image_repository_arn,
    image_uri,
    inference_archive,
)
from btc_trader.stack.environment import ML_PREDICTOR, PREDICTION_EVALUATOR, predictor_environment
from btc_trader.stack.naming import EVALUATE_PREDICTIONS, ResourceNames
from btc_trader.stack.settings import StackSettings
from btc_trader.storage_schema import PREDICTION_SCORES, PREDICTIONS
from components.buckets import private_bucket
from components.iam import service_role
from components.network import VpcPlacement
from components.python_function import PythonFunction, PythonFunctionArgs
from components.schedules import schedule_lambda
from components.tables import table_from_spec

# Components run from the checkout (never from a wheel): the repository is their parent.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

INFERENCE_CODE = PROJECT_ROOT / "sagemaker" / "chronos" / "code"
CROSS_REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.")


@dataclass
class MlPredictionArgs:
    settings: StackSettings
    names: ResourceNames
    code: pulumi.Archive
    prices_table_arn: pulumi.Input[str]
    layers: list[pulumi.Input[str]] = field(default_factory=list)
    vpc: VpcPlacement | None = None  # the optional VPC's private subnets


def bedrock_resources(model_id: str, region: str, account: str) -> list[str]:
    """ARNs `bedrock:InvokeModel` needs for a model id or a cross-region inference profile.

    A profile (`us.anthropic...`) is invoked by its own ARN and then routes to the foundation
    model in any of its regions, so the model's ARN is granted with a region wildcard.
    """
    if model_id.startswith(CROSS_REGION_PREFIXES):
        base = model_id.split(".", 1)[1]
        return [
            f"arn:aws:bedrock:{region}:{account}:inference-profile/{model_id}",
            f"arn:aws:bedrock:*::foundation-model/{base}",
        ]
    return [f"arn:aws:bedrock:{region}::foundation-model/{model_id}"]


class MlPrediction(pulumi.ComponentResource):
    def __init__(self, name: str, args: MlPredictionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("btc-trader:ml:MlPrediction", name, None, opts)
        settings, names = args.settings, args.names
        child = pulumi.ResourceOptions(parent=self)
        models = settings.ml_models

        self.predictions_table = table_from_spec(f"{name}-predictions", PREDICTIONS, names, child)
        self.scores_table = table_from_spec(f"{name}-scores", PREDICTION_SCORES, names, child)

        self.endpoint = None
        if settings.huggingface.deploy_endpoint:
            self._deploy_endpoint(name, settings, names)
        endpoint_arn = (
            f"arn:aws:sagemaker:{names.region}:{names.account_id}:endpoint/"
            f"{settings.huggingface.endpoint_name.lower()}"
        )

        predictor_statements = [
            {"Sid": "ReadPrices", "Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": args.prices_table_arn},
            {"Sid": "StorePredictions", "Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"],
             "Resource": self.predictions_table.arn},
            {"Sid": "ReadSkill", "Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": self.scores_table.arn},
        ]
        if "bedrock" in models:
            predictor_statements.append({
                "Sid": "InvokeBedrock", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
                "Resource": bedrock_resources(settings.bedrock.model_id, names.region, names.account_id),
            })
        if "huggingface" in models:
            predictor_statements.append({
                "Sid": "InvokeChronos", "Effect": "Allow", "Action": ["sagemaker:InvokeEndpoint"],
                "Resource": endpoint_arn,
            })
        self.predictor = PythonFunction(
            f"{name}-predictor",
            PythonFunctionArgs(
                vpc=args.vpc,
                role=ML_PREDICTOR, handler_module="functions.ml_predictor", settings=settings, names=names,
                code=args.code, layers=args.layers, statements=predictor_statements,
                environment=predictor_environment(settings, names, ML_PREDICTOR),
                description="Predicts the price with the enabled models and their skill-weighted ensemble",
            ),
            opts=child,
        )
        self.evaluator = PythonFunction(
            f"{name}-evaluator",
            PythonFunctionArgs(
                vpc=args.vpc,
                role=PREDICTION_EVALUATOR, handler_module="functions.prediction_evaluator", settings=settings,
                names=names, code=args.code, layers=args.layers,
                statements=[
                    {"Sid": "ReadPrices", "Effect": "Allow", "Action": ["dynamodb:Query"],
                     "Resource": args.prices_table_arn},
                    {"Sid": "ScorePredictions", "Effect": "Allow", "Action": ["dynamodb:Query", "dynamodb:UpdateItem"],
                     "Resource": self.predictions_table.arn},
                    {"Sid": "StoreScores", "Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:Query"],
                     "Resource": self.scores_table.arn},
                ],
                environment=predictor_environment(settings, names, PREDICTION_EVALUATOR),
                async_retries=2,
                description="Scores due predictions against realised prices and keeps per-model skill",
            ),
            opts=child,
        )
        self.evaluation_schedule, _, _ = schedule_lambda(
            f"{name}-evaluation", names.schedule_rule(EVALUATE_PREDICTIONS),
            "Scores predictions whose horizon has passed", settings.trading_interval, self.evaluator.function, child,
        )
        self.register_outputs({
            "predictions_table": self.predictions_table.name,
            "predictor_function": self.predictor.function.name,
            "evaluator_function": self.evaluator.function.name,
        })

    def _deploy_endpoint(self, name: str, settings: StackSettings, names: ResourceNames) -> None:
        """A serverless endpoint: pay per request, no idle instance (the seed's real-time
        endpoint cost money around the clock)."""
        child = pulumi.ResourceOptions(parent=self)
        archive = inference_archive(INFERENCE_CODE)
        digest = deployment_digest(INFERENCE_CODE, names.region, settings.huggingface.model_id)
        self.model_bucket = private_bucket(
            f"{name}-model-artifacts", names.models_bucket, child
        ).bucket
        self.model_artifact = aws.s3.BucketObjectv2(
            f"{name}-chronos-artifact", bucket=self.model_bucket.id, key=f"chronos/{digest}/model.tar.gz",
            source=pulumi.FileAsset(_write_build_file(f"chronos-{digest}.tar.gz", archive)),
            opts=child,
        )
        endpoint_logs = (f"arn:aws:logs:{names.region}:{names.account_id}:log-group:/aws/sagemaker/Endpoints/"
                         f"{settings.huggingface.endpoint_name}")
        self.sagemaker_role, _ = service_role(
            f"{name}-sagemaker", names.sagemaker_role, "sagemaker.amazonaws.com",
            [
                    {"Sid": "ModelArtifact", "Effect": "Allow", "Action": ["s3:GetObject"],
                     "Resource": self.model_bucket.arn.apply(lambda arn: f"{arn}/chronos/*")},
                    {"Sid": "PullImage", "Effect": "Allow",
                     "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                     "Resource": image_repository_arn(names.region)},
                    # GetAuthorizationToken has no resource-level permissions.
                    {"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
                    {"Sid": "Logs", "Effect": "Allow",
                     "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                     "Resource": [f"{endpoint_logs}", f"{endpoint_logs}:log-stream:*"]},
            ],
            child,
        )
        self.model = aws.sagemaker.Model(
            f"{name}-chronos-model",
            name=names.sagemaker_model(digest),
            execution_role_arn=self.sagemaker_role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=image_uri(names.region),
                model_data_url=pulumi.Output.concat(
                    "s3://", self.model_bucket.bucket, "/", self.model_artifact.key),
                environment=container_environment(settings.huggingface.model_id),
            ),
            opts=child,
        )
        self.endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-chronos-config",
            name=names.sagemaker_model(digest),
            production_variants=[aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name="AllTraffic",
                model_name=self.model.name,
                serverless_config=aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgs(
                    max_concurrency=2, memory_size_in_mb=4096,
                ),
            )],
            opts=child,
        )
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-chronos-endpoint",
            name=settings.huggingface.endpoint_name,
            endpoint_config_name=self.endpoint_config.name,
            opts=child,
        )


def _write_build_file(name: str, data: bytes) -> str:
    path = PROJECT_ROOT / "build" / "sagemaker" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return str(path)
