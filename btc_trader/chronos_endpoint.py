"""The Chronos-Bolt SageMaker endpoint's artifacts in plain Python: the serving image and the
library versions inside it, the container's environment, and a byte-for-byte reproducible
model archive. `components/ml_prediction.py` deploys them; `make chronos-proof` runs them.

Why this image: chronos-forecasting 1.5.3 requires transformers>=4.48,<5. The Hugging Face
PyTorch inference DLC `2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04` ships transformers 4.51.3,
accelerate 1.6.0 and sagemaker-huggingface-inference-toolkit 2.6.0 (aws/deep-learning-containers,
huggingface/pytorch/inference/docker/2.6, buildspec-2-6-0-transformers-4-53-1.yml). That toolkit
no longer imports `transformers.pipelines.Conversation` (gone since transformers 4.42), and the
start-up `pip install -r code/requirements.txt` finds every dependency of chronos-forecasting
already installed, so it adds that one small pure-Python wheel and changes nothing else. The
earlier `2.1.0-transformers4.37.0` image (toolkit 2.3) could not load the worker at all.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path

from btc_trader.stack.naming import SAGEMAKER_DIGEST_LENGTH

DLC_ACCOUNT = "763104351884"  # AWS Deep Learning Containers' registry in the commercial regions
IMAGE_REPOSITORY = "huggingface-pytorch-inference"
IMAGE_TAG = "2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04"

# What that image has installed, as its Dockerfile pins it; `make chronos-proof` installs the same
# versions (torch excepted: these machines hold a CPU build of another release, see README).
IMAGE_LIBRARIES = {
    "torch": "2.6.0",
    "transformers": "4.51.3",
    "huggingface_hub": "0.30.0",
    "accelerate": "1.6.0",
    "sagemaker-huggingface-inference-toolkit": "2.6.0",
    "multi-model-server": "1.1.11",
}
CHRONOS_PACKAGE = "chronos-forecasting"

ARCHIVE_FILE_SUFFIXES = (".py", ".txt")
# Fixed so that unchanged inputs give identical bytes whatever the clock, umask or user.
_TAR_MTIME = 0
_FILE_MODE = 0o644
_GZIP_LEVEL = 9


def image_uri(region: str) -> str:
    """The serving image in `region` (the DLC registry serves every commercial region)."""
    return f"{DLC_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{IMAGE_REPOSITORY}:{IMAGE_TAG}"


def image_repository_arn(region: str) -> str:
    """The ECR repository the endpoint's role must be allowed to pull from."""
    return f"arn:aws:ecr:{region}:{DLC_ACCOUNT}:repository/{IMAGE_REPOSITORY}"


def container_environment(model_id: str) -> dict[str, str]:
    """The serving container's variables.

    Not `HF_MODEL_ID`/`HF_TASK`: with HF_MODEL_ID set, the toolkit downloads that repository
    into its own model store and serves it with its default handler, never importing
    code/inference.py from the archive. The script reads CHRONOS_MODEL_ID instead.
    """
    return {
        "CHRONOS_MODEL_ID": model_id,
        # One worker: each worker loads its own copy of the model into the endpoint's memory.
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        # The hub cache must be writable by the model-server user.
        "HF_HOME": "/tmp/huggingface",
    }


def reproducible_tar_gz(members: Mapping[str, bytes]) -> bytes:
    """A .tar.gz of `members` (archive path -> bytes) that depends on nothing but them.

    Entries sorted by path, mtime 0, uid/gid 0 without names, mode 0644, and a gzip header
    with mtime 0 and no file name (tarfile's "w:gz" writes the current time there).
    """
    tar_bytes = _tar(members)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=_TAR_MTIME, compresslevel=_GZIP_LEVEL) as gz:
        gz.write(tar_bytes)
    return buffer.getvalue()


def _tar(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(members):
            data = members[path]
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), _TAR_MTIME, _FILE_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def archive_members(code_dir: Path) -> dict[str, bytes]:
    """The model archive's files: code/inference.py and code/requirements.txt (no weights)."""
    members = {
        f"code/{path.name}": path.read_bytes()
        for path in sorted(code_dir.iterdir())
        if path.is_file() and path.suffix in ARCHIVE_FILE_SUFFIXES
    }
    if "code/inference.py" not in members:
        raise FileNotFoundError(f"{code_dir} has no inference.py: the endpoint would serve nothing")
    return members


def inference_archive(code_dir: Path) -> bytes:
    """model.tar.gz for the endpoint, byte-for-byte the same for the same code."""
    return reproducible_tar_gz(archive_members(code_dir))


def deployment_digest(code_dir: Path, region: str, model_id: str) -> str:
    """The hex digits naming the SageMaker model and endpoint config.

    Covers everything that replaces the model (code, image, environment), so an unchanged
    deployment keeps its name and a changed one gets a new name (Pulumi creates the new model
    before deleting the old one, and SageMaker refuses two models of one name). The code is
    hashed uncompressed, so another zlib build cannot rename an unchanged model.
    """
    spec = json.dumps({"image": image_uri(region), "environment": container_environment(model_id)}, sort_keys=True)
    digest = hashlib.sha256(_tar(archive_members(code_dir)))
    digest.update(spec.encode())
    return digest.hexdigest()[:SAGEMAKER_DIGEST_LENGTH]
