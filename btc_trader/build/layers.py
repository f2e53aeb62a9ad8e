"""The dependency layer, and stand-ins for what Lambda itself provides, built for the runtime.

Three directories, each installed by pip for Lambda's platform (Amazon Linux 2023, glibc 2.34)
and cached under `build/cache/` by a hash of its inputs:

- the **dependency layer**: exactly the pins of `requirements-lambda.txt`, installed with
  `--no-deps` so nothing unpinned arrives; its completeness is checked instead (every
  requirement of every shipped distribution must be met by this layer, the Powertools layer or
  the runtime);
- a **Powertools layer stand-in**: `aws-lambda-powertools[all]` at the pinned version minus what
  AWS strips from the public layer (boto*, s3transfer, dateutil, urllib3, six, jmespath);
- a **runtime stand-in**: boto3 at the pinned version, as the Lambda runtime carries it.

Both layers unpack into the same `/opt/python`, so the dependency layer must never ship a
distribution the Powertools layer ships: two versions of one package would mix their files.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from email.parser import Parser
from importlib.metadata import version as installed_version
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Lambda's python3.12/3.13 runtimes run on Amazon Linux 2023 (glibc 2.34): manylinux wheels up to
# 2_34 run there. pip takes several --platform values and admits wheels tagged with any of them.
GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
# What AWS removes from aws-lambda-powertools[all] when it publishes the layer (the runtime has them).
STRIPPED_FROM_POWERTOOLS = ("boto3", "botocore", "s3transfer", "python-dateutil", "urllib3", "six", "jmespath")
# What the Lambda Python runtime itself carries besides the standard library.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
# A requirement the Powertools layer meets with another version than the requirer pins, accepted
# only for the reason given here (the import test proves the combination imports).
ACCEPTED_VERSION_SKEW = {
    ("ccxt", "cffi"): "ccxt pins its whole tree exactly; cffi is used only by cryptography, "
                      "which the Powertools layer ships together with its own cffi",
    ("ccxt", "pycparser"): "ccxt pins its whole tree exactly; pycparser is cffi's build-time "
                           "parser, shipped by the Powertools layer with its cffi",
}
LAYER_FORMAT = "2"  # bump when the layout of what is built changes, to invalidate caches


class BuildError(RuntimeError):
    """The build cannot produce what Lambda would run; the message names what and why."""


@dataclass(frozen=True)
class Target:
    """What Lambda runs the functions on: `python3.12` on `x86_64`, ..."""

    runtime: str
    architecture: str

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    @property
    def name(self) -> str:
        return f"{self.runtime}-{self.architecture}"

    def platforms(self) -> list[str]:
        machine = MACHINES[self.architecture]
        return [f"{tag}_{machine}" for tag in GLIBC_TAGS]

    def marker_environment(self) -> dict[str, str]:
        """The values of PEP 508 markers on Lambda, to read Requires-Dist as Lambda would."""
        env = default_environment()
        env.update(platform_system="Linux", sys_platform="linux", os_name="posix",
                   platform_machine=MACHINES[self.architecture], implementation_name="cpython",
                   platform_python_implementation="CPython", python_version=self.python_version,
                   python_full_version=f"{self.python_version}.0")
        return env


@dataclass(frozen=True)
class Distribution:
    name: str  # canonical
    version: str
    requires: tuple[str, ...]
    dist_info: Path

    def top_level(self) -> set[str]:
        """Import names this distribution provides (from its RECORD)."""
        names = set()
        record = self.dist_info / "RECORD"
        for line in record.read_text(encoding="utf-8").splitlines() if record.exists() else []:
            first = line.split(",")[0].split("/")[0]
            if first.endswith((".dist-info", ".data")) or first in {"..", "bin", "__pycache__"}:
                continue
            names.add(first.removesuffix(".py") if first.endswith(".py") else first.split(".")[0])
        return names


def distributions(site: Path) -> dict[str, Distribution]:
    """The distributions installed in a directory, by canonical name."""
    found = {}
    for dist_info in sorted(site.glob("*.dist-info")):
        metadata = Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
        name = canonicalize_name(metadata["Name"])
        found[name] = Distribution(name, metadata["Version"], tuple(metadata.get_all("Requires-Dist") or ()),
                                   dist_info)
    return found


def pinned_requirements(requirements: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, by canonical name; anything else is refused."""
    pins = {}
    for number, raw in enumerate(requirements.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#")[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not match:
            raise BuildError(f"{requirements.name}:{number}: {line!r} is not pinned as name==version; "
                             "the dependency layer is built from exact pins only")
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _pip_install(target_dir: Path, target: Target, arguments: list[str], offline: bool, what: str) -> None:
    """Install for Lambda's platform into `target_dir/python` once; a complete install is reused."""
    stamp = target_dir / ".complete"
    if stamp.exists():
        return
    if offline:
        raise BuildError(f"{what} for {target.name} is not built and this run may not download it; "
                         "run `make build` (or `btc-trader build --stack <stack>`) with network access")
    shutil.rmtree(target_dir, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
               *[arg for platform in target.platforms() for arg in ("--platform", platform)],
               "--implementation", "cp", "--python-version", target.python_version,
               "--only-binary=:all:", "--target", str(target_dir / "python"), *arguments]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        errors = "\n".join(line for line in result.stderr.splitlines() if "WARNING: Location" not in line)
        raise BuildError(f"building {what} for {target.name} failed (pip {' '.join(arguments)}):\n{errors[-3000:]}")
    stamp.write_text(" ".join(command) + "\n")


_PRECOMPILE_SCRIPT = r"""
import importlib, json, py_compile, sys
request = json.loads(sys.stdin.read())
sys.path[:0] = request["path"]
for name in request["modules"]:
    try:
        importlib.import_module(name)
    except BaseException:
        pass  # the import test names what fails; here only what loads is compiled
layer = request["layer"]
files = sorted({m.__file__ for m in list(sys.modules.values())
                if (getattr(m, "__file__", None) or "").startswith(layer) and m.__file__.endswith(".py")})
for path in files:
    py_compile.compile(path, doraise=False, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
print(len(files))
"""


def precompile(layer: Path, others: list[Path], modules: list[str], target: Target) -> str:
    """Ship bytecode for the layer modules the handlers import, compiled by the runtime's Python.

    /opt is read-only on Lambda, so a layer without bytecode is compiled again at every cold
    start. Only what the handlers' imports load is compiled (all of ccxt's exchanges would
    take the layer over Lambda's 50 MB direct upload), as unchecked-hash .pyc files (PEP 552):
    used whatever the files' times after unzipping, and reproducible byte for byte. Without the
    runtime's interpreter the layer ships sources only, and the returned note says so.
    """
    from btc_trader.build.interpreter import runtime_python

    stamp = layer / f".compiled-{_digest(*modules)}"
    if stamp.exists():
        return stamp.read_text(encoding="utf-8").strip()
    python = runtime_python(target.runtime)
    if python is None:
        return (f"no {target.runtime} interpreter here: {layer.name} ships without bytecode "
                "(slower cold starts); install it (pyenv) and rebuild")
    path = [str(layer / "python"), *(str(other / "python") for other in others)]
    result = subprocess.run([python, "-I", "-S", "-B", "-c", _PRECOMPILE_SCRIPT], capture_output=True, text=True,
                            input=json.dumps({"path": path, "modules": modules, "layer": str(layer / "python")}),
                            env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"})
    if result.returncode != 0:
        raise BuildError(f"compiling {layer.name} with {python} failed:\n{result.stderr[-2000:]}")
    note = f"{layer.name}: bytecode of the {result.stdout.strip()} modules the handlers load, by {python}"
    stamp.write_text(note + "\n", encoding="utf-8")
    return note


def dependency_layer_dir(requirements: Path, target: Target, cache: Path, offline: bool) -> Path:
    """The pinned requirements installed for `target` (no dependencies resolved: all are pinned)."""
    pinned_requirements(requirements)  # refuse an unpinned line before pip sees it
    directory = cache / f"layer-{target.name}-{_digest(requirements.read_bytes(), target.name, LAYER_FORMAT)}"
    _pip_install(directory, target, ["--no-deps", "-r", str(requirements)], offline,
                 f"the dependency layer ({requirements.name})")
    return directory


def powertools_version() -> str:
    """The Powertools release pinned for the project (the one the tests run)."""
    return installed_version("aws-lambda-powertools")


def powertools_layer_dir(target: Target, cache: Path, offline: bool) -> Path:
    """A stand-in for the public Powertools layer: `[all]` minus what AWS strips from it."""
    pin = powertools_version()
    directory = cache / f"powertools-{target.name}-{_digest(pin, target.name, LAYER_FORMAT)}"
    if not (directory / ".complete").exists():
        _pip_install(directory, target, [f"aws-lambda-powertools[all]=={pin}"], offline,
                     f"the Powertools layer stand-in (aws-lambda-powertools[all]=={pin})")
        site = directory / "python"
        for name, dist in distributions(site).items():
            if name in STRIPPED_FROM_POWERTOOLS:
                for top in dist.top_level():
                    shutil.rmtree(site / top, ignore_errors=True)
                    (site / f"{top}.py").unlink(missing_ok=True)
                shutil.rmtree(dist.dist_info)
        (directory / ".complete").write_text(f"aws-lambda-powertools[all]=={pin} minus {STRIPPED_FROM_POWERTOOLS}\n")
    return directory


def runtime_dir(target: Target, cache: Path, offline: bool) -> Path:
    """boto3 (and what it needs) as the Lambda runtime carries it."""
    pin = installed_version("boto3")
    directory = cache / f"runtime-{target.name}-{_digest(pin, target.name, LAYER_FORMAT)}"
    _pip_install(directory, target, [f"boto3=={pin}"], offline, f"the runtime stand-in (boto3=={pin})")
    return directory


def check_layers(requirements: Path, layer: Path, powertools: Path, runtime: Path, target: Target) -> list[str]:
    """Refuse overlaps with the Powertools layer and unmet requirements; returns accepted skews."""
    ours = distributions(layer / "python")
    theirs = distributions(powertools / "python")
    provided = {**distributions(runtime / "python"), **theirs, **ours}
    problems, notes = [], []
    for name in sorted(set(ours) & set(theirs)):
        problems.append(
            f"{requirements.name} ships {name} {ours[name].version}, which the Powertools layer already ships "
            f"({theirs[name].version}); both unpack into /opt/python and their files would mix: remove the pin")
    environment = target.marker_environment()
    for dist in ours.values():
        for text in dist.requires:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({**environment, "extra": ""}):
                continue
            needed = canonicalize_name(requirement.name)
            have = provided.get(needed)
            if have is None:
                problems.append(f"{dist.name} {dist.version} requires {requirement}, which neither "
                                f"{requirements.name}, the Powertools layer nor the runtime provides: pin it")
            elif not requirement.specifier.contains(have.version, prereleases=True):
                where = "the Powertools layer" if needed in theirs else (
                    "the runtime" if needed not in ours else requirements.name)
                reason = ACCEPTED_VERSION_SKEW.get((dist.name, needed)) if where == "the Powertools layer" else None
                message = f"{dist.name} {dist.version} requires {requirement}; {where} has {have.version}"
                if reason:
                    notes.append(f"{message} (accepted: {reason})")
                else:
                    problems.append(message)
    if problems:
        raise BuildError("the dependency layer is inconsistent:\n  " + "\n  ".join(problems))
    return notes
