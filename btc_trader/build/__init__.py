"""`btc-trader build`: what `pulumi up` uploads, built once (SAM's `sam build`).

For a stack's runtime and architecture it writes under `build/<runtime>-<arch>/`:

- `functions/<function>.zip`: one bundle per handler in `functions/`, holding only the modules
  its handler can reach (btc_trader.build.closure);
- `layer.zip`: the dependency layer from `requirements-lambda.txt` (btc_trader.build.layers);
- `manifest.json`: hashes, sizes, each bundle's modules and third-party imports.

The Pulumi components upload exactly these files; the local runner and the import test run
them. Zips are reproducible (sorted entries, fixed times and modes), so unchanged code gives
unchanged hashes and Pulumi sees no change. pip runs only when `requirements-lambda.txt`, the
runtime or the architecture change (cached under `build/cache/`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from btc_trader.build.closure import import_closure
from btc_trader.build.layers import (
    BuildError,
    Target,
    check_layers,
    dependency_layer_dir,
    distributions,
    powertools_layer_dir,
    powertools_version,
    precompile,
    runtime_dir,
)

__all__ = ["BuildError", "BuildOutput", "FunctionBundle", "Target", "build", "handlers"]

FUNCTION_UNZIPPED_LIMIT = 250 * 1024 * 1024  # function + all its layers, unzipped
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # a zip uploaded with the API call instead of through S3
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: reproducible archives
MANIFEST = "manifest.json"


@dataclass
class FunctionBundle:
    """One function's code archive and what it holds."""

    function: str  # e.g. "price-collector"
    handler: str  # e.g. "functions.price_collector.lambda_handler"
    zip: str  # path relative to the build directory
    sha256: str
    unzipped_bytes: int
    modules: list[str]
    third_party: dict[str, list[str]]  # module -> first-party modules importing it


@dataclass
class BuildOutput:
    """What `btc-trader build` wrote for one runtime and architecture."""

    runtime: str
    architecture: str
    directory: str  # absolute
    layer_zip: str  # relative to directory
    layer_sha256: str
    layer_zipped_bytes: int
    layer_unzipped_bytes: int
    layer_dir: str  # the unpacked dependency layer (its `python/` is what /opt/python gets)
    powertools_dir: str  # the Powertools layer stand-in
    powertools_version: str
    runtime_dir: str  # boto3 as the runtime carries it
    powertools_unzipped_bytes: int
    inputs: str  # hash of everything the build read; a different one means rebuild
    functions: dict[str, FunctionBundle] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    layer_key: str = ""  # the layer directory and its bytecode: equal keys, equal layer.zip

    @property
    def target(self) -> Target:
        return Target(self.runtime, self.architecture)

    def path(self, relative: str) -> Path:
        return Path(self.directory) / relative

    def bundle(self, handler_module: str) -> FunctionBundle:
        """The bundle whose handler lives in `handler_module` (e.g. `functions.risk_manager`)."""
        for bundle in self.functions.values():
            if bundle.handler.rpartition(".")[0] == handler_module:
                return bundle
        raise BuildError(f"the build in {self.directory} has no bundle for {handler_module}; "
                         "run `btc-trader build` again")

    def report(self) -> list[str]:
        """One line per artifact with its size against Lambda's limits."""
        mb = 1024 * 1024
        upload = "direct upload" if self.layer_zipped_bytes <= DIRECT_UPLOAD_LIMIT else "through S3: over"
        lines = [f"layer.zip  {self.layer_zipped_bytes / mb:6.1f} MB zipped ({upload} limit 50 MB), "
                 f"{self.layer_unzipped_bytes / mb:6.1f} MB unzipped; Powertools layer {self.powertools_version} "
                 f"{self.powertools_unzipped_bytes / mb:.1f} MB unzipped"]
        layers = self.layer_unzipped_bytes + self.powertools_unzipped_bytes
        for name, bundle in sorted(self.functions.items()):
            total = bundle.unzipped_bytes + layers
            lines.append(f"{name:22s} {len(bundle.modules):3d} modules {bundle.unzipped_bytes / 1024:7.1f} KB; "
                         f"with both layers {total / mb:6.1f} MB of 250 MB unzipped")
        return lines

    @classmethod
    def load(cls, directory: Path) -> BuildOutput:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        data["functions"] = {k: FunctionBundle(**v) for k, v in data["functions"].items()}
        return cls(**data)


def handlers(root: Path) -> dict[str, str]:
    """function name -> handler module: every module of `functions/` (new ones included)."""
    return {path.stem.replace("_", "-"): f"functions.{path.stem}"
            for path in sorted((root / "functions").glob("*.py")) if path.stem != "__init__"}


def _tree_bytes(directory: Path) -> int:
    """Source size (bytecode written by local runs is not part of what AWS publishes)."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file() and path.suffix != ".pyc")


def write_zip(destination: Path, files: list[tuple[str, Path]]) -> str:
    """A reproducible zip of `(archive name, file)` pairs; returns its sha256."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = 0o100644 << 16  # a regular file, readable by Lambda's user
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)
    temporary.replace(destination)
    return hashlib.sha256(destination.read_bytes()).hexdigest()


def _layer_files(layer_dir: Path) -> list[tuple[str, Path]]:
    # Only the unchecked-hash bytecode of `precompile` (any other .pyc was written by a local run).
    return [(path.relative_to(layer_dir).as_posix(), path)
            for path in (layer_dir / "python").rglob("*")
            if path.is_file() and (path.suffix != ".pyc" or _unchecked_hash(path))]


def _unchecked_hash(pyc: Path) -> bool:
    with pyc.open("rb") as file:
        header = file.read(8)
    return len(header) == 8 and int.from_bytes(header[4:8], "little") == 0b01  # PEP 552 flags


def _inputs_hash(root: Path, target: Target, closures: dict, requirements: Path) -> str:
    digest = hashlib.sha256(f"{target.name}|{powertools_version()}".encode())
    digest.update(requirements.read_bytes())
    for function, closure in sorted(closures.items()):
        digest.update(function.encode())
        for relative in closure.files(root):
            digest.update(relative.encode() + b"\0" + (root / relative).read_bytes())
    return digest.hexdigest()[:20]


def build(root: Path, target: Target, offline: bool = False, echo: Callable[[str], None] | None = None) -> BuildOutput:
    """Build (or reuse) every function bundle and the dependency layer for `target`.

    `offline` never runs pip: a layer that is not in the cache is an error saying how to build it.
    """
    say = echo or (lambda line: None)
    requirements = root / "requirements-lambda.txt"
    directory = root / "build" / target.name
    cache = root / "build" / "cache"
    closures = {function: import_closure(module, root) for function, module in handlers(root).items()}
    inputs = _inputs_hash(root, target, closures, requirements)
    if (directory / MANIFEST).exists():
        previous = BuildOutput.load(directory)
        if previous.inputs == inputs and all(previous.path(b.zip).exists() for b in previous.functions.values()) \
                and previous.path(previous.layer_zip).exists() \
                and all((Path(d) / ".complete").exists()
                        for d in (previous.layer_dir, previous.powertools_dir, previous.runtime_dir)):
            say(f"build/{target.name} is up to date")
            return previous
    layer = dependency_layer_dir(requirements, target, cache, offline)
    powertools = powertools_layer_dir(target, cache, offline)
    runtime = runtime_dir(target, cache, offline)
    notes = check_layers(requirements, layer, powertools, runtime, target)
    imported = sorted({name for closure in closures.values() for name in closure.third_party})
    compiled = precompile(layer, [powertools, runtime], imported, target)
    notes.append(compiled)
    layer_key = f"{layer}|{compiled}"
    layer_zip = directory / "layer.zip"
    layer_files = _layer_files(layer)
    previous = BuildOutput.load(directory) if (directory / MANIFEST).exists() else None
    if previous and previous.layer_key == layer_key and layer_zip.exists():
        layer_sha = previous.layer_sha256  # the layer did not change: only the bundles are re-zipped
    else:
        layer_sha = write_zip(layer_zip, layer_files)
    output = BuildOutput(
        runtime=target.runtime, architecture=target.architecture, directory=str(directory),
        layer_zip="layer.zip", layer_sha256=layer_sha, layer_zipped_bytes=layer_zip.stat().st_size,
        layer_unzipped_bytes=sum(path.stat().st_size for _, path in layer_files),
        layer_dir=str(layer), powertools_dir=str(powertools), powertools_version=powertools_version(),
        runtime_dir=str(runtime), powertools_unzipped_bytes=_tree_bytes(powertools / "python"),
        inputs=inputs, notes=notes, layer_key=layer_key,
    )
    for function, closure in closures.items():
        files = closure.files(root)
        relative = f"functions/{function}.zip"
        sha = write_zip(directory / relative, [(name, root / name) for name in files])
        output.functions[function] = FunctionBundle(
            function=function, handler=f"{closure.handler}.lambda_handler", zip=relative, sha256=sha,
            unzipped_bytes=sum((root / name).stat().st_size for name in files),
            modules=sorted(closure.modules),
            third_party={name: sorted(importers) for name, importers in sorted(closure.third_party.items())},
        )
    for bundle in output.functions.values():
        total = bundle.unzipped_bytes + output.layer_unzipped_bytes + output.powertools_unzipped_bytes
        if total > FUNCTION_UNZIPPED_LIMIT:
            raise BuildError(f"{bundle.function} with its layers is {total / 2**20:.0f} MB unzipped; "
                             "Lambda allows 250 MB: trim requirements-lambda.txt")
    if output.layer_zipped_bytes > DIRECT_UPLOAD_LIMIT:
        notes.append(f"layer.zip is {output.layer_zipped_bytes / 2**20:.0f} MB, over Lambda's 50 MB direct upload: "
                     "`pulumi up` uploads it through the stack's private artifacts bucket")
    (directory / MANIFEST).write_text(json.dumps(asdict(output), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    _prune(cache, target, keep={layer, powertools, runtime})
    for note in notes:
        say(f"note: {note}")
    return output


def _prune(cache: Path, target: Target, keep: set[Path]) -> None:
    """Drop this target's cached installs of earlier inputs (each is ~100 MB)."""
    for kind in ("layer", "powertools", "runtime"):
        for stale in cache.glob(f"{kind}-{target.name}-*"):
            if stale not in keep and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)


def load_build(root: Path, target: Target) -> BuildOutput | None:
    """The last build for `target`, or None when there is none."""
    directory = root / "build" / target.name
    return BuildOutput.load(directory) if (directory / MANIFEST).exists() else None


def layer_distributions(output: BuildOutput) -> dict[str, str]:
    """Distribution -> version shipped by the dependency layer."""
    return {name: dist.version for name, dist in distributions(Path(output.layer_dir) / "python").items()}
