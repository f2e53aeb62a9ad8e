"""A handler's import closure, computed statically from the checkout's sources.

Every `import` anywhere in a reached module counts, including those inside functions (the live
executor imports ccxt only when it trades), because Lambda will run them sooner or later; only
imports under `if TYPE_CHECKING:` are left out, since they never run. First-party modules
(`btc_trader`, `functions`) are followed into their files; anything else is recorded as a
third-party or standard-library import for the layers and the runtime to provide.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

FIRST_PARTY = ("btc_trader", "functions")


@dataclass
class Closure:
    """What one handler can reach: first-party modules with their files, and outside imports."""

    handler: str
    modules: dict[str, Path] = field(default_factory=dict)  # module name -> source file
    # third-party module name -> the first-party modules importing it (for error messages)
    third_party: dict[str, set[str]] = field(default_factory=dict)

    def files(self, root: Path) -> list[str]:
        """The bundle's files, relative to the checkout, sorted."""
        return sorted(path.relative_to(root).as_posix() for path in self.modules.values())

    def top_level_third_party(self) -> dict[str, set[str]]:
        """Third-party top-level packages -> the modules importing them."""
        found: dict[str, set[str]] = {}
        for name, importers in self.third_party.items():
            found.setdefault(name.split(".")[0], set()).update(importers)
        return found


def module_file(name: str, root: Path) -> Path | None:
    """The source file of a first-party module, or None when there is none."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can execute (nested ones included, TYPE_CHECKING ones not)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, *([node.module] if node.module else [])])


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, root: Path) -> list[str]:
    """Modules an import statement loads (a `from x import y` loads x.y when y is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _absolute(node, module, is_package)
    names = [base]
    if base.split(".")[0] in FIRST_PARTY:
        names += [f"{base}.{alias.name}" for alias in node.names
                  if alias.name != "*" and module_file(f"{base}.{alias.name}", root)]
    return names


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_closure(handler: str, root: Path) -> Closure:
    """Follow `handler`'s imports through the first-party sources under `root`."""
    closure = Closure(handler)
    pending = [handler]
    stdlib = sys.stdlib_module_names
    while pending:
        name = pending.pop()
        if name in closure.modules:
            continue
        path = module_file(name, root)
        if path is None:
            raise ModuleNotFoundError(f"{handler} reaches {name}, which has no source file under {root}")
        closure.modules[name] = path
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        pending.extend(parent for parent in _parents(name) if parent not in closure.modules)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _runtime_imports(tree):
            for imported in _imported_names(node, name, is_package, root):
                top = imported.split(".")[0]
                if not imported or top == "__future__" or top in stdlib:
                    continue
                if top in FIRST_PARTY:
                    if module_file(imported, root):
                        pending.append(imported)
                    else:  # `from pkg.mod import attr` where attr is no module: pkg.mod is followed
                        raise ModuleNotFoundError(f"{name} imports {imported}, which has no source file")
                else:
                    closure.third_party.setdefault(imported, set()).add(name)
    return closure
