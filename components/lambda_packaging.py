"""How code and dependencies reach Lambda, in a way that works on `pulumi up` from a laptop.

- Function code: an archive of `btc_trader/` and `functions/` only (no tests, no caches).
- Powertools: the AWS-published layer, resolved at deploy time from the public SSM parameter
  `/aws/service/powertools/python/<arch>/<runtime>/<version>` for the exact version pinned in
  pyproject, so the layer in AWS and the library in tests are the same release in every region.
  That layer also carries pydantic v2 and aws-xray-sdk.
- Everything else (requests, ...): a layer built from the pinned `requirements-lambda.txt` with
  `pip install --platform manylinux2014_<arch> --only-binary=:all:`, so wheels match Lambda's
  Linux whatever the user's OS; the build is cached by a hash of its inputs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pulumi
import pulumi_aws as aws

from btc_trader.stack.settings import LambdaSettings

# Components run from the checkout (never from a wheel): the repository is their parent.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

CODE_PACKAGES = ("btc_trader", "functions")
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


def function_code(root: Path = PROJECT_ROOT) -> pulumi.AssetArchive:
    """The function bundle: every source file of the shipped packages, nothing else."""
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {}
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not SKIPPED_PARTS & set(relative.parts) and path.suffix != ".pyc":
                assets[relative.as_posix()] = pulumi.FileAsset(str(path))
    return pulumi.AssetArchive(assets)


def powertools_parameter_name(lambda_settings: LambdaSettings) -> str:
    """The public SSM parameter holding the Powertools layer ARN for our pinned version."""
    return (
        f"/aws/service/powertools/python/{lambda_settings.architecture}/"
        f"{lambda_settings.python_runtime}/{version('aws-lambda-powertools')}"
    )


def powertools_layer_arn(lambda_settings: LambdaSettings) -> pulumi.Output[str]:
    """The layer ARN, looked up in the deployment's region."""
    return aws.ssm.get_parameter_output(name=powertools_parameter_name(lambda_settings)).value


def layer_inputs_hash(requirements: Path, lambda_settings: LambdaSettings) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{lambda_settings.architecture}/{lambda_settings.python_runtime}".encode())
    return digest.hexdigest()[:16]


def build_dependency_layer(
    lambda_settings: LambdaSettings,
    requirements: Path = PROJECT_ROOT / "requirements-lambda.txt",
    build_root: Path = PROJECT_ROOT / "build" / "lambda-layer",
) -> Path:
    """Install the pinned requirements for Lambda's platform into `<dir>/python` (cached)."""
    target = build_root / layer_inputs_hash(requirements, lambda_settings)
    stamp = target / ".complete"
    if stamp.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
        "--platform", PLATFORMS[lambda_settings.architecture],
        "--implementation", "cp",
        "--python-version", lambda_settings.python_runtime.removeprefix("python"),
        "--only-binary=:all:",
        "--target", str(target / "python"),
        "-r", str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"building the Lambda dependency layer from {requirements} failed:\n{result.stderr[-2000:]}"
        )
    target.mkdir(parents=True, exist_ok=True)
    stamp.write_text(" ".join(command))
    return target


def dependency_layer(
    name: str, layer_dir: Path, lambda_settings: LambdaSettings, opts: pulumi.ResourceOptions | None = None
) -> aws.lambda_.LayerVersion:
    """A LayerVersion from a built directory."""
    return aws.lambda_.LayerVersion(
        name,
        layer_name=name,
        code=pulumi.FileArchive(str(layer_dir)),
        compatible_runtimes=[lambda_settings.python_runtime],
        compatible_architectures=[lambda_settings.architecture],
        description="btc-trader pinned dependencies (requirements-lambda.txt)",
        opts=opts,
    )
