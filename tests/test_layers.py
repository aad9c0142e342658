"""The engine's layering: every import, at module level or inside a function, points down.

``test_public_api`` guards ``format`` and ``storage``; this file guards the modules above
them, in the order docs/architecture.md draws. Imports under ``if TYPE_CHECKING:`` are for
annotations only and may point anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import icechunk_lib as ic

PACKAGE_DIR = Path(ic.__file__).parent

LAYERS: list[set[str]] = [
    {"errors", "_sync", "_lazy"},
    {"format", "storage"},
    {"zarr_keys", "names", "changes", "storage_settings", "write_access"},
    {
        "virtual.access",
        "virtual.stores",
        "virtual.spec",
        "virtual._local",
        "virtual._ranges",
        "virtual._templates",
        "virtual._v2meta",
    },
    {"virtual._parquet", "virtual.resolver", "virtual._remote"},
    {"virtual._refs"},
    {"virtual", "virtual.fetch"},
    {"objects", "chunk_changes"},
    {"refs", "lineage"},
    {
        "history",
        "discover",
        "saved_config",
        "repository_refs",
        "ops.reachable",
        "ops.chunk_rows",
        "regions",
        "preloading",
    },
    {"changeset"},
    {
        "ops.source_meta",
        "ops.tree",
        "ops.diff",
        "ops.verify",
        "ops.stats",
        "ops.expire",
        "ops.gc_marks",
        "conflicts",
        "commit",
    },
    {"ops.import_source", "ops.gc", "ops.rewrite", "virtual.locations"},
    {"ops"},
    {"workspace"},
    {"session", "virtual.writes"},
    {"store", "ops.importer", "virtual.kerchunk"},
    {"repository_maintenance"},
    {"repository"},
    {""},
]
"""Lowest first; a module may import only modules of lower layers (and its own package).

``""`` is ``icechunk_lib/__init__.py``; ``format`` and ``storage`` stand for their packages.
"""

RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
UPWARD_ALLOWED = {("session", "store")}
"""``Session.store`` builds the store that wraps the session, importing it on first use: a
module-level import would load zarr with every session (``ick ls``, ``ick status``)."""
SKIPPED = {"testing", "xarray", "dask"}
"""Packages outside the engine's layers (test kits, optional integrations)."""


def _unit(module: str) -> str:
    """The layer name of an ``icechunk_lib`` module: ``icechunk_lib.format.snapshot`` is
    ``format``, ``icechunk_lib.ops.tree`` is ``ops.tree`` (as are the modules of
    ``virtual``), ``icechunk_lib`` is ``""``."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if parts[0] in ("format", "storage"):
        return parts[0]
    return ".".join(parts[:2]) if parts[0] in ("ops", "virtual") else parts[0]


def _runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``icechunk_lib`` import in ``path`` that runs, wherever it
    is, skipping ``if TYPE_CHECKING:`` blocks."""
    package = ".".join(["icechunk_lib", *path.relative_to(PACKAGE_DIR).parent.parts])
    return _imports_in(path.read_text(), package, str(path))


def _imports_in(source: str, package: str, name: str = "<probe>") -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module == "icechunk_lib":  # ``from icechunk_lib import _sync`` names a module
                subs = [a.name for a in node.names if _is_module(a.name)]
                found.extend((node.lineno, f"icechunk_lib.{a}") for a in subs)
                if len(subs) == len(node.names):
                    module = ""
            if module:
                found.append((node.lineno, module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source, name))
    return [(line, m) for line, m in found if m.split(".")[0] == "icechunk_lib"]


def _is_module(name: str) -> bool:
    return (PACKAGE_DIR / f"{name}.py").exists() or (PACKAGE_DIR / name).is_dir()


def _engine_files() -> list[Path]:
    files = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR).parts
        if parts[0] in ("format", "storage") or parts[0] in SKIPPED:
            continue
        files.append(path)
    return files


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["icechunk_lib", *parts])


@pytest.mark.parametrize("path", _engine_files(), ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_engine_imports_point_down(path: Path) -> None:
    unit = _unit(_module_of(path))
    assert unit in RANK, f"{unit or '__init__'} has no layer: add it to LAYERS"
    upward = []
    for line, module in _runtime_imports(path):
        target = _unit(module)
        if target == unit or (unit, target) in UPWARD_ALLOWED:
            continue
        assert target in RANK, f"{path.name}:{line} imports {module}, which has no layer"
        if RANK[target] >= RANK[unit]:
            upward.append(f"line {line}: {module}")
    assert not upward, f"{unit} imports modules of its own or a higher layer: {upward}"


def _names_imported_from(path: Path, module: str) -> set[str]:
    """The names ``path`` imports from ``module`` by ``from module import ...`` at run time
    (outside ``if TYPE_CHECKING:``)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module == module:
            names.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def test_only_the_store_imports_session_at_run_time() -> None:
    """The engine takes change sets and snapshots, never the object a user holds; the store
    wraps a session, and the repository (above it) opens them. Engine code that is handed a
    session (the store, the importer) takes its workspace with ``workspace_of``."""
    importers = sorted(
        _unit(_module_of(path))
        for path in _engine_files()
        for _, module in _runtime_imports(path)
        if module == "icechunk_lib.session"
    )
    assert set(importers) <= {"store", "ops.importer", "repository", ""}, importers
    assert "store" in importers
    names = {
        _unit(_module_of(path)): _names_imported_from(path, "icechunk_lib.session")
        for path in _engine_files()
    }
    assert {unit for unit, found in names.items() if "Session" in found} <= {
        "store",
        "repository",
        "",
    }
    assert names["ops.importer"] == {"workspace_of"}


def test_the_checker_sees_imports_inside_functions() -> None:
    """An import hidden in a function body counts; one under TYPE_CHECKING does not; relative
    and ``from icechunk_lib import x`` imports name their module."""
    code = (
        "from typing import TYPE_CHECKING\n"
        "from icechunk_lib import _sync\n"
        "from .tree import NodeInfo\n"
        "if TYPE_CHECKING:\n    from icechunk_lib.session import Session\n"
        "def f():\n    from icechunk_lib.store import IcechunkStore\n"
    )
    found = [m for _, m in _imports_in(code, "icechunk_lib.ops")]
    assert found == [
        "icechunk_lib._sync",
        "icechunk_lib.ops.tree",
        "icechunk_lib.store",
    ]


LAZY_IMPORTS = {
    ("objects", "icechunk_lib.format.manifest"): "history and refs load no numpy",
    ("objects", "icechunk_lib.format.manifest_codec"): "history and refs load no numpy",
    ("repository", "icechunk_lib.ops.diff"): "history and refs load no numpy",
    ("repository_maintenance", "icechunk_lib.ops.verify"): "history and refs load no numpy",
    ("repository_maintenance", "icechunk_lib.ops.stats"): "history and refs load no numpy",
    ("repository_maintenance", "icechunk_lib.ops.expire"): "each operation loads when called",
    ("repository_maintenance", "icechunk_lib.ops.gc"): "history and refs load no numpy",
    ("repository_maintenance", "icechunk_lib.ops.rewrite"): "history and refs load no numpy",
    ("repository", "icechunk_lib.session"): "history and refs load no numpy or zarr",
    ("session", "icechunk_lib.store"): "a session loads zarr only when its store is asked for",
    ("virtual.fetch", "icechunk_lib.virtual._remote"): "aiohttp loads only for remote sources",
}
"""The engine's imports inside functions, each deferring a heavy module on purpose; an
import deferred to dodge a cycle means a layer is wrong."""


def test_engine_imports_inside_functions_are_only_the_deliberately_lazy_ones() -> None:
    found = set()
    for path in _engine_files():
        unit = _unit(_module_of(path))
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "icechunk_lib"
                ):
                    found.add((unit, node.module))
    assert found <= set(LAZY_IMPORTS), sorted(found - set(LAZY_IMPORTS))
