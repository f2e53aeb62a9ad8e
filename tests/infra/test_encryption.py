"""Data at rest is encrypted and buckets are private and TLS-only, in every configuration."""

import json

import pytest

from tests.infra.program_runs import outputs_of, run_main


@pytest.fixture(scope="module", params=["dev", "prod"])
def mocks(request):
    # prod deploys the SageMaker model bucket too; Timestream on shows its (default) encryption.
    return run_main(request.param, {"btc-trader:timestream": {"enabled": True}})


def by_bucket(mocks, type_token):
    return {r.inputs["bucket"]: r.inputs for r in mocks.of_type(type_token)}


def test_every_bucket_is_private_encrypted_and_tls_only(mocks):
    buckets = {b.outputs["id"]: b.outputs["arn"] for b in mocks.of_type("aws:s3/bucket:Bucket")}
    encryption = by_bucket(mocks, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    public = by_bucket(mocks, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    ownership = by_bucket(mocks, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    policies = by_bucket(mocks, "aws:s3/bucketPolicy:BucketPolicy")
    assert buckets
    for bucket, arn in buckets.items():
        (rule,) = encryption[bucket]["rules"]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in {"AES256", "aws:kms"}
        assert all(public[bucket][flag] for flag in
                   ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
        assert ownership[bucket]["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        (deny,) = json.loads(policies[bucket]["policy"])["Statement"]
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert sorted(deny["Resource"]) == [arn, f"{arn}/*"]


def test_tables_are_encrypted_with_recovery(mocks):
    tables = mocks.of_type("aws:dynamodb/table:Table")
    assert len(tables) >= 6
    for table in tables:
        assert table.inputs["serverSideEncryption"]["enabled"] is True, table.name
        assert table.inputs["pointInTimeRecovery"]["enabled"] is True, table.name


def test_alerts_topic_uses_the_stacks_rotating_key(mocks):
    keys = {k.outputs["arn"]: k.inputs for k in mocks.of_type("aws:kms/key:Key")}
    topic = mocks.one("aws:sns/topic:Topic").inputs
    assert topic["kmsMasterKeyId"] in keys and keys[topic["kmsMasterKeyId"]]["enableKeyRotation"] is True


def test_log_groups_have_retention_and_service_encryption(mocks):
    # CloudWatch Logs encrypts every log group at rest with its own keys; a customer key
    # (kmsKeyId) is optional and not used here (README, Security).
    groups = mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 7  # six functions and the workflow
    for group in groups:
        assert group.inputs["retentionInDays"] >= 1 and not group.inputs.get("kmsKeyId")


def test_timestream_is_encrypted_by_default(mocks):
    # Timestream always encrypts at rest (an AWS managed key unless kmsKeyId names another).
    (database,) = mocks.of_type("aws:timestreamwrite/database:Database")
    assert not database.inputs.get("kmsKeyId")
    assert outputs_of(mocks, "aws:timestreamwrite/table:Table", "arn")
