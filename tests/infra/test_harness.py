"""The mock harness itself: a failing check inside the program must fail the test."""

import pulumi
import pulumi_aws as aws
import pytest

from tests.infra.harness import run_program


def test_apply_callbacks_really_run():
    def build():
        topic = aws.sns.Topic("canary", name="canary")
        return topic.name.apply(lambda name: (_ for _ in ()).throw(AssertionError(f"ran for {name}")))

    with pytest.raises(AssertionError, match="ran for canary"):
        run_program("dev", build)


def test_resources_are_captured_with_resolved_inputs():
    def build():
        bucket = aws.s3.Bucket("b", bucket="my-bucket")
        aws.s3.BucketVersioning(
            "v", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        )
        return pulumi.Output.from_input(None)

    mocks = run_program("dev", build)
    versioning = mocks.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["bucket"] == "b-id"
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
