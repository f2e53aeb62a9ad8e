"""How code and dependencies reach Lambda: the output of `btc-trader build`, wrapped for Pulumi.

- Function code: each function's own zip, holding only what its handler can reach.
- Everything else the handlers import: the dependency layer built from `requirements-lambda.txt`
  for the runtime's platform.
- Powertools: the AWS-published layer, resolved at deploy time from the public SSM parameter
  `/aws/service/powertools/python/<arch>/<runtime>/<version>` for the exact version pinned in
  pyproject, so the layer in AWS and the library in tests are the same release in every region.

The build itself is plain Python (btc_trader.build); this module only turns its files into
Pulumi archives, so what the tests import and the local runner executes is what is uploaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pulumi
import pulumi_aws as aws

from btc_trader.build import DIRECT_UPLOAD_LIMIT, BuildOutput, build
from btc_trader.build.cli import stack_target
from btc_trader.stack.naming import ResourceNames
from btc_trader.stack.settings import LambdaSettings, StackSettings
from components.buckets import private_bucket

# Components run from the checkout (never from a wheel): the repository is their parent.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Set by the test suite: the program may reuse a build but never run pip.
OFFLINE_VARIABLE = "BTC_TRADER_BUILD_OFFLINE"


@dataclass
class LambdaArtifacts:
    """The build of one runtime and architecture, as Pulumi archives."""

    output: BuildOutput

    def code(self, handler_module: str) -> pulumi.FileArchive:
        """The zip of the function whose handler is in `handler_module`."""
        return pulumi.FileArchive(str(self.output.path(self.output.bundle(handler_module).zip)))

    def layer(self) -> pulumi.FileArchive:
        return pulumi.FileArchive(str(self.output.path(self.output.layer_zip)))


def stack_artifacts(settings: StackSettings, root: Path = PROJECT_ROOT) -> LambdaArtifacts:
    """Build (or reuse the cached build of) what the stack's functions run."""
    offline = os.environ.get(OFFLINE_VARIABLE, "") not in ("", "0")
    return LambdaArtifacts(build(root, stack_target(settings), offline=offline))


def powertools_parameter_name(lambda_settings: LambdaSettings) -> str:
    """The public SSM parameter holding the Powertools layer ARN for our pinned version."""
    return (
        f"/aws/service/powertools/python/{lambda_settings.architecture}/"
        f"{lambda_settings.python_runtime}/{version('aws-lambda-powertools')}"
    )


def powertools_layer_arn(lambda_settings: LambdaSettings) -> pulumi.Output[str]:
    """The layer ARN, looked up in the deployment's region."""
    return aws.ssm.get_parameter_output(name=powertools_parameter_name(lambda_settings)).value


def dependency_layer(
    name: str, artifacts: LambdaArtifacts, lambda_settings: LambdaSettings, names: ResourceNames,
    opts: pulumi.ResourceOptions | None = None,
) -> aws.lambda_.LayerVersion:
    """A LayerVersion from the build's layer.zip; over 50 MB zipped, uploaded through a private bucket."""
    location: dict = {"code": artifacts.layer()}
    if artifacts.output.layer_zipped_bytes > DIRECT_UPLOAD_LIMIT:
        # Lambda refuses a larger zip in the API call: it must come from S3.
        base = opts or pulumi.ResourceOptions()
        bucket = private_bucket(f"{name}-artifacts", names.artifacts_bucket, base)
        upload = aws.s3.BucketObjectv2(
            f"{name}-upload", bucket=bucket.bucket.id, key=f"lambda-layers/{artifacts.output.layer_sha256}.zip",
            source=pulumi.FileAsset(str(artifacts.output.path(artifacts.output.layer_zip))),
            opts=pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[bucket.policy])),
        )
        location = {"s3_bucket": upload.bucket, "s3_key": upload.key}
    return aws.lambda_.LayerVersion(
        name,
        layer_name=name,
        compatible_runtimes=[lambda_settings.python_runtime],
        compatible_architectures=[lambda_settings.architecture],
        description="btc-trader pinned dependencies (requirements-lambda.txt)",
        opts=opts,
        **location,
    )
