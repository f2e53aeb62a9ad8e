"""The endpoint's model archive is reproducible, and the versions it names agree with each other."""

import gzip
import importlib.util
import io
import os
import shutil
import tarfile

import pytest

from btc_trader.chronos_endpoint import (
    CHRONOS_PACKAGE,
    IMAGE_LIBRARIES,
    IMAGE_TAG,
    archive_members,
    container_environment,
    deployment_digest,
    image_uri,
    inference_archive,
    reproducible_tar_gz,
)
from tests.conftest import REPO_ROOT as PROJECT_ROOT

CODE_DIR = PROJECT_ROOT / "sagemaker" / "chronos" / "code"
PROOF_REQUIREMENTS = PROJECT_ROOT / "sagemaker" / "chronos" / "proof-requirements.txt"


@pytest.fixture
def code_copy(tmp_path):
    target = tmp_path / "code"
    shutil.copytree(CODE_DIR, target)
    return target


def test_same_code_gives_the_same_bytes_whatever_the_file_times_modes_and_clock(code_copy):
    original = inference_archive(CODE_DIR)
    for path in code_copy.iterdir():
        os.utime(path, (1_900_000_000, 1_900_000_000))
        path.chmod(0o600)
    assert inference_archive(code_copy) == original


def test_gzip_header_carries_no_time_and_no_name():
    data = inference_archive(CODE_DIR)
    assert data[:3] == b"\x1f\x8b\x08"
    flags, mtime = data[3], int.from_bytes(data[4:8], "little")
    assert mtime == 0 and not flags & 0x08  # FNAME: no file name stored


def test_entries_are_sorted_and_carry_no_owner_time_or_mode_of_the_machine():
    data = reproducible_tar_gz({"code/b.txt": b"b", "code/a.py": b"a"})
    assert data == reproducible_tar_gz({"code/a.py": b"a", "code/b.txt": b"b"})
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == ["code/a.py", "code/b.txt"]
    assert all((m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644) for m in members)
    assert gzip.decompress(data)  # a plain gzip stream SageMaker can extract


def test_changed_code_changes_the_archive_and_the_name(code_copy):
    region, model = "us-east-1", "amazon/chronos-bolt-small"
    before = deployment_digest(code_copy, region, model), inference_archive(code_copy)
    assert deployment_digest(code_copy, region, model) == before[0]
    (code_copy / "inference.py").write_text((code_copy / "inference.py").read_text() + "\n# changed\n")
    assert deployment_digest(code_copy, region, model) != before[0]
    assert inference_archive(code_copy) != before[1]


def test_image_and_environment_are_part_of_the_name():
    base = deployment_digest(CODE_DIR, "us-east-1", "amazon/chronos-bolt-small")
    assert deployment_digest(CODE_DIR, "eu-west-1", "amazon/chronos-bolt-small") != base
    assert deployment_digest(CODE_DIR, "us-east-1", "amazon/chronos-bolt-base") != base


def test_archive_needs_the_script(tmp_path):
    (tmp_path / "requirements.txt").write_text("chronos-forecasting==1.5.3\n")
    with pytest.raises(FileNotFoundError, match="inference.py"):
        archive_members(tmp_path)


def test_image_tag_proof_pins_and_script_requirements_agree():
    torch, transformers = IMAGE_LIBRARIES["torch"], IMAGE_LIBRARIES["transformers"]
    assert IMAGE_TAG.startswith(f"{torch}-transformers{transformers}-cpu-")
    assert image_uri("us-east-1") == (
        f"763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:{IMAGE_TAG}")
    pins = dict(
        line.split("==", 1) for line in PROOF_REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    )
    normalised = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    for name, version in IMAGE_LIBRARIES.items():
        if name not in {"torch", "sagemaker-huggingface-inference-toolkit"}:  # see proof-requirements.txt
            assert normalised[name.lower().replace("_", "-")] == version, name
    assert CHRONOS_PACKAGE not in normalised, "the proof must install chronos from code/requirements.txt"
    script_requirements = (CODE_DIR / "requirements.txt").read_text().split()
    assert len(script_requirements) == 1 and script_requirements[0].startswith(f"{CHRONOS_PACKAGE}==")


def test_container_environment_names_the_model_for_the_script_not_the_toolkit():
    environment = container_environment("amazon/chronos-bolt-small")
    assert environment["CHRONOS_MODEL_ID"] == "amazon/chronos-bolt-small"
    assert not {"HF_MODEL_ID", "HF_TASK"} & set(environment)
    assert environment["SAGEMAKER_MODEL_SERVER_WORKERS"] == "1"


def _inference_module():
    spec = importlib.util.spec_from_file_location("chronos_inference_source", CODE_DIR / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weights_in_the_model_directory_win_over_the_hub(tmp_path):
    inference = _inference_module()
    assert inference.model_source(str(tmp_path), {}) == "amazon/chronos-bolt-small"
    assert inference.model_source(str(tmp_path), {"CHRONOS_MODEL_ID": "amazon/chronos-bolt-tiny"}) == (
        "amazon/chronos-bolt-tiny")
    (tmp_path / "config.json").write_text("{}")
    assert inference.model_source(str(tmp_path), {"CHRONOS_MODEL_ID": "amazon/chronos-bolt-tiny"}) == str(tmp_path)
