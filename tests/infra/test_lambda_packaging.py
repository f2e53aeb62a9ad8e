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
