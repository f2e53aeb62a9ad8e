"""Market-data ingestion: raw-payload bucket, prices table, opt-in Timestream, the collector."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from btc_trader.stack.environment import PRICE_COLLECTOR, collector_config, collector_environment
from btc_trader.stack.naming import COLLECT_PRICES, ResourceNames
from btc_trader.stack.settings import StackSettings
from btc_trader.storage_schema import PRICES
from components.buckets import private_bucket
from components.network import VpcPlacement
from components.python_function import PythonFunction, PythonFunctionArgs
from components.schedules import schedule_lambda
from components.tables import table_from_spec


@dataclass
class DataIngestionArgs:
    settings: StackSettings
    names: ResourceNames
    code: pulumi.Archive
    layers: list[pulumi.Input[str]] = field(default_factory=list)
    vpc: VpcPlacement | None = None  # the optional VPC's private subnets


class DataIngestion(pulumi.ComponentResource):
    """Everything that gets prices in: storage first, then the scheduled collector."""

    def __init__(self, name: str, args: DataIngestionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("btc-trader:data:DataIngestion", name, None, opts)
        settings, names = args.settings, args.names
        child = pulumi.ResourceOptions(parent=self)
        config = collector_config(settings, names)

        # --- raw payloads: private, encrypted, TLS-only, versioned, aged out --------------
        raw = private_bucket(f"{name}-raw", names.raw_bucket, child)
        self.raw_bucket, self.raw_ownership, self.raw_public_access = raw.bucket, raw.ownership, raw.public_access
        self.raw_encryption, self.raw_policy = raw.encryption, raw.policy
        self.raw_versioning = aws.s3.BucketVersioning(
            f"{name}-raw-versioning",
            bucket=self.raw_bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        self.raw_lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-raw-lifecycle",
            bucket=self.raw_bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="archive-then-expire-raw-payloads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=config.raw_prefix),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=settings.raw_archive_after_days, storage_class="GLACIER"
                        )
                    ],
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=settings.raw_expire_after_days
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=settings.raw_archive_after_days
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.raw_versioning]),
        )

        # --- prices table ------------------------------------------------------------------
        self.prices_table = table_from_spec(f"{name}-prices", PRICES, names, child)

        # --- Timestream, opt-in (closed to new AWS customers since 2025-06-20) ---------------
        self.timestream_database = None
        self.timestream_table = None
        if settings.timestream.enabled:
            self.timestream_database = aws.timestreamwrite.Database(
                f"{name}-timestream", database_name=names.timestream_database, opts=child
            )
            self.timestream_table = aws.timestreamwrite.Table(
                f"{name}-timestream-prices",
                database_name=self.timestream_database.database_name,
                table_name=names.timestream_table,
                retention_properties=aws.timestreamwrite.TableRetentionPropertiesArgs(
                    memory_store_retention_period_in_hours=settings.timestream.memory_retention_hours,
                    magnetic_store_retention_period_in_days=settings.timestream.magnetic_retention_days,
                ),
                opts=child,
            )

        # --- the collector -------------------------------------------------------------------
        statements = [
            {
                "Sid": "PricesItems",
                "Effect": "Allow",
                # GetItem: a re-delivered event finds its slot taken and does nothing.
                "Action": ["dynamodb:PutItem", "dynamodb:GetItem"],
                "Resource": self.prices_table.arn,
            },
            {
                "Sid": "RawPayloads",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": self.raw_bucket.arn.apply(lambda arn: f"{arn}/{config.raw_prefix}*"),
            },
        ]
        if self.timestream_table is not None:
            statements += [
                {
                    "Sid": "TimestreamWrite",
                    "Effect": "Allow",
                    "Action": ["timestream:WriteRecords"],
                    "Resource": self.timestream_table.arn,
                },
                {
                    # Endpoint discovery has no resource-level permissions.
                    "Sid": "TimestreamEndpoints",
                    "Effect": "Allow",
                    "Action": ["timestream:DescribeEndpoints"],
                    "Resource": "*",
                },
            ]
        self.collector = PythonFunction(
            f"{name}-collector",
            PythonFunctionArgs(
                vpc=args.vpc,
                role=PRICE_COLLECTOR,
                handler_module="functions.price_collector",
                settings=settings,
                names=names,
                code=args.code,
                layers=args.layers,
                environment=collector_environment(settings, names),
                statements=statements,
                async_retries=2,
                description="Collects prices from every configured venue and stores the median",
            ),
            opts=child,
        )
        self.schedule, self.schedule_target, self.schedule_permission = schedule_lambda(
            name, names.schedule_rule(COLLECT_PRICES), "Triggers the price collector",
            settings.price_collection_interval, self.collector.function, child,
        )
        self.register_outputs(
            {
                "raw_bucket": self.raw_bucket.bucket,
                "prices_table": self.prices_table.name,
                "collector_function": self.collector.function.name,
                "schedule": self.schedule.schedule_expression,
            }
        )
