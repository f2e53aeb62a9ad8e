"""DynamoDB tables from the shared specs: on demand, encrypted, point-in-time recovery."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from btc_trader.stack.naming import ResourceNames
from btc_trader.storage_schema import TableSpec


def table_from_spec(resource_name: str, spec: TableSpec, names: ResourceNames,
                    opts: pulumi.ResourceOptions) -> aws.dynamodb.Table:
    """The stack's table for `spec`: keys, indexes, TTL and stream exactly as specified."""
    return aws.dynamodb.Table(
        resource_name,
        name=names.table(spec.role),
        billing_mode="PAY_PER_REQUEST",
        hash_key=spec.hash_key.name,
        range_key=spec.range_key.name if spec.range_key else None,
        attributes=[aws.dynamodb.TableAttributeArgs(name=a.name, type=a.type) for a in spec.attributes()],
        global_secondary_indexes=[
            aws.dynamodb.TableGlobalSecondaryIndexArgs(
                name=index.name,
                # pulumi-aws 7 deprecates the index's hash_key/range_key for key_schemas.
                key_schemas=[
                    aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=key.name, key_type=key_type)
                    for key, key_type in ((index.hash_key, "HASH"), (index.range_key, "RANGE")) if key
                ],
                projection_type="ALL",
            )
            for index in spec.global_indexes
        ]
        or None,
        ttl=aws.dynamodb.TableTtlArgs(attribute_name=spec.ttl_attribute, enabled=True) if spec.ttl_attribute else None,
        point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
        stream_enabled=True if spec.stream_view_type else None,
        stream_view_type=spec.stream_view_type,
        server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
        opts=opts,
    )
