"""What the Pulumi program uploads is `btc-trader build`'s output, byte for byte."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from btc_trader.build import handlers
from tests.conftest import REPO_ROOT, require_lambda_build
from tests.infra.program_runs import run_main


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_mocks_receive_the_builds_archives(stack):
    output = require_lambda_build(stack)
    mocks = run_main(stack)
    functions = mocks.of_type("aws:lambda/function:Function")
    assert len(functions) == len(handlers(REPO_ROOT))
    for function in functions:
        handler = function.inputs["handler"]
        bundle = output.bundle(handler.rpartition(".")[0])
        uploaded = Path(function.inputs["code"].path)
        assert uploaded == output.path(bundle.zip), handler
        # The file Pulumi will read is the one the build hashed (no second packaging path).
        assert hashlib.sha256(uploaded.read_bytes()).hexdigest() == bundle.sha256, handler
        with zipfile.ZipFile(uploaded) as archive:
            names = set(archive.namelist())
        assert names == {m.replace(".", "/") + ("/__init__.py" if (REPO_ROOT / m.replace(".", "/")).is_dir()
                                                   else ".py") for m in bundle.modules}
        assert not any(n.startswith(("tests/", "components/", "btc_trader/local/")) for n in names)
    layer = mocks.one("aws:lambda/layerVersion:LayerVersion")
    assert Path(layer.inputs["code"].path) == output.path(output.layer_zip)
    assert hashlib.sha256(output.path(output.layer_zip).read_bytes()).hexdigest() == output.layer_sha256
    assert layer.inputs["compatibleArchitectures"] == [output.architecture]


def test_the_layer_holds_what_the_handlers_import_and_nothing_powertools_ships():
    output = require_lambda_build("dev")
    with zipfile.ZipFile(output.path(output.layer_zip)) as archive:
        tops = {name.split("/")[1] for name in archive.namelist() if name.startswith("python/")}
    assert {"numpy", "ccxt", "requests"} <= tops
    assert not {"cryptography", "pydantic", "aws_lambda_powertools", "boto3", "botocore"} & tops


def test_a_layer_over_the_direct_upload_limit_goes_through_a_private_bucket(monkeypatch):
    """Proven by the same checks as every other bucket (encryption) and every policy (IAM)."""
    from btc_trader.stack.settings import load_stack_file
    from components import lambda_packaging
    from tests.infra import test_encryption, test_iam_policies

    output = require_lambda_build("dev")
    monkeypatch.setattr(lambda_packaging, "DIRECT_UPLOAD_LIMIT", output.layer_zipped_bytes - 1)
    mocks = run_main("dev")
    layer = mocks.one("aws:lambda/layerVersion:LayerVersion").inputs
    upload = mocks.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    assert "code" not in layer and layer["s3Key"] == upload["key"] == f"lambda-layers/{output.layer_sha256}.zip"
    assert Path(upload["source"].path) == output.path(output.layer_zip)
    bucket = mocks.one("aws:s3/bucket:Bucket", "artifacts")
    assert bucket.inputs["bucket"] == "btc-trader-dev-lambda-123456789012-us-east-1"
    assert layer["s3Bucket"] == upload["bucket"] == bucket.outputs["id"]  # the bucket's id is its name in AWS
    test_encryption.test_every_bucket_is_private_encrypted_and_tls_only(mocks)
    program = test_iam_policies.Program("dev", load_stack_file("dev"), mocks, test_iam_policies.find_documents(mocks))
    checks = [getattr(test_iam_policies, name) for name in dir(test_iam_policies) if name.startswith("test_")]
    checks = [check for check in checks if check.__code__.co_varnames[:check.__code__.co_argcount] == ("program",)]
    assert len(checks) >= 10, "every IAM proof that takes a program"
    for check in checks:
        check(program)
