"""The one shape of every bucket of the stack: private, owner-enforced, encrypted, TLS-only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class PrivateBucket:
    bucket: aws.s3.Bucket
    ownership: aws.s3.BucketOwnershipControls
    public_access: aws.s3.BucketPublicAccessBlock
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    policy: aws.s3.BucketPolicy


def tls_only_policy(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Refuse every request that does not use TLS, whoever makes it."""
    return pulumi.Output.json_dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })


def private_bucket(name: str, bucket_name: str, opts: pulumi.ResourceOptions) -> PrivateBucket:
    """A bucket nobody outside the account can reach, encrypted at rest, over TLS only.

    SSE-S3 (AES256) with a bucket key: encrypted at no key cost; a customer key would add
    $1/month and KMS calls per object for data that holds no secret.
    """
    bucket = aws.s3.Bucket(name, bucket=bucket_name, opts=opts)
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership", bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=opts,
    )
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True, opts=opts,
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=bucket.id,
        rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"),
            bucket_key_enabled=True,
        )],
        opts=opts,
    )
    policy = aws.s3.BucketPolicy(
        f"{name}-tls-only", bucket=bucket.id, policy=tls_only_policy(bucket.arn),
        # A bucket policy racing the public-access block can fail with AccessDenied.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[public_access])),
    )
    return PrivateBucket(bucket, ownership, public_access, encryption, policy)
