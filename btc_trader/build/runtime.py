"""Running built bundles as Lambda does: the runtime's Python, only what ships on the path.

Lambda puts the function's code first on `sys.path`, then `/opt/python` (every layer unpacked
there), then the runtime's own packages (boto3). `lambda_path` gives the same order over the
build's directories; `runtime_python` finds an interpreter of the runtime's version (pyenv's,
as on these machines and CI) so nothing of the development venv leaks in.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

from btc_trader.build import BuildOutput, FunctionBundle
from btc_trader.build.interpreter import runtime_python  # noqa: F401 - re-exported

# Runs inside the runtime's interpreter started with -I -S (no site-packages, no PYTHON* vars).
_IMPORT_SCRIPT = r"""
import importlib, json, sys, time, traceback
request = json.loads(sys.stdin.read())
sys.path[:0] = request["path"]
failures, timings = {}, {}
for name in request["modules"]:
    started = time.perf_counter()
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failures[name] = f"{type(exc).__name__}: {exc}"
    timings[name] = time.perf_counter() - started
print(json.dumps({"failures": failures, "timings": timings, "version": sys.version.split()[0],
                  "path": [p for p in sys.path if "site-packages" in p]}))
"""


def lambda_path(bundle_dir: Path, output: BuildOutput) -> list[str]:
    """sys.path entries in Lambda's order: the code, the layers (/opt/python), the runtime."""
    return [str(bundle_dir), str(Path(output.layer_dir) / "python"), str(Path(output.powertools_dir) / "python"),
            str(Path(output.runtime_dir) / "python")]


def unpack(output: BuildOutput, bundle: FunctionBundle, destination: Path) -> Path:
    """The function's zip, unpacked as Lambda unpacks it into /var/task."""
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output.path(bundle.zip)) as archive:
        archive.extractall(destination)
    return destination


def providers(output: BuildOutput) -> dict[str, str]:
    """Top-level import name -> what provides it on Lambda."""
    found: dict[str, str] = {}
    for what, directory in (("the runtime", output.runtime_dir), ("the Powertools layer", output.powertools_dir),
                            ("the built layer", output.layer_dir)):
        for entry in (Path(directory) / "python").iterdir():
            if entry.name.endswith((".dist-info", ".data")) or entry.name in ("bin", "__pycache__"):
                continue
            found[entry.name.split(".")[0]] = what
    return found


def missing_providers(output: BuildOutput, bundle: FunctionBundle) -> list[str]:
    """A line per third-party import nothing on Lambda provides, naming what would provide it."""
    available = providers(output)
    distributions = packages_distributions()
    problems = []
    for module, importers in bundle.third_party.items():
        top = module.split(".")[0]
        if top in available:
            continue
        source = distributions.get(top)
        hint = (f"the distribution {source[0]} would provide it: pin it in requirements-lambda.txt"
                if source else "no installed distribution provides it")
        problems.append(f"{bundle.function}: {module} (imported by {', '.join(importers)}) comes from neither the "
                        f"runtime, the Powertools layer nor the built layer; {hint}")
    return problems


@dataclass
class ImportResult:
    function: str
    failures: dict[str, str]
    timings: dict[str, float]
    python: str
    site_packages: list[str]

    def problems(self, output: BuildOutput) -> list[str]:
        """One line per failed import, naming function, module and what provides it on Lambda."""
        available = providers(output)
        lines = []
        for module, error in self.failures.items():
            where = available.get(module.split(".")[0], "the bundle" if module.startswith(("btc_trader", "functions"))
                                  else "nothing")
            lines.append(f"{self.function}: import {module} failed ({error}); on Lambda it comes from {where}")
        return lines


def import_bundle(output: BuildOutput, function: str, environment: dict[str, str], python: str,
                  modules: list[str] | None = None) -> ImportResult:
    """Import every module `function` can reach in `python`, with only what ships on its path."""
    bundle = output.functions[function]
    wanted = modules if modules is not None else [*bundle.modules, *bundle.third_party]
    with tempfile.TemporaryDirectory(prefix=f"btc-trader-{function}-") as task:
        path = lambda_path(unpack(output, bundle, Path(task)), output)
        result = subprocess.run([python, "-I", "-S", "-c", _IMPORT_SCRIPT],
                                input=json.dumps({"path": path, "modules": wanted}),
                                capture_output=True, text=True, env=environment, timeout=300, cwd=task)
    if result.returncode != 0:
        raise RuntimeError(f"{function}: the runtime interpreter {python} failed: {result.stderr[-2000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return ImportResult(function, data["failures"], data["timings"], data["version"], data["path"])


WHEEL_PLATFORM = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)|manylinux(1|2010|2014)_(\w+)")
LEGACY_GLIBC = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}
AL2023_GLIBC = (2, 34)


def wheel_tag_problems(output: BuildOutput) -> list[str]:
    """Each shipped wheel's tags against the target (what can be checked when it cannot run here)."""
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[output.architecture]
    python = "cp" + output.runtime.removeprefix("python").replace(".", "")
    problems = []
    for directory in (output.layer_dir, output.powertools_dir):
        for wheel in sorted((Path(directory) / "python").glob("*.dist-info/WHEEL")):
            tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
            if not any(_tag_runs(tag, python, machine) for tag in tags):
                problems.append(f"{wheel.parent.name}: tags {tags} do not run on {output.runtime} {output.architecture} "
                                f"(Amazon Linux 2023, glibc {AL2023_GLIBC[0]}.{AL2023_GLIBC[1]})")
    return problems


def _tag_runs(tag: str, python: str, machine: str) -> bool:
    interpreter, abi, platform = tag.split("-")
    if not ({"py3", python} & set(interpreter.split(".")) or ("abi3" in abi and interpreter.startswith("cp3")
                                                             and int(interpreter[3:]) <= int(python[3:]))):
        return False
    for single in platform.split("."):
        if single == "any":
            return True
        match = WHEEL_PLATFORM.fullmatch(single)
        if match and match[1]:
            if (int(match[1]), int(match[2])) <= AL2023_GLIBC and match[3] == machine:
                return True
        elif match and LEGACY_GLIBC[match[4]] <= AL2023_GLIBC and match[5] == machine:
            return True
    return False
