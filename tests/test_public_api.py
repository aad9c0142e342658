"""The public surface: exported names, sync/async twins, and the layering rules of DESIGN.md."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import icechunk_lib as ic
import icechunk_lib.format
from icechunk_lib import errors
from icechunk_lib._lazy import export_order as _ruff_order

PACKAGE_DIR = Path(ic.__file__).parent


def _modules() -> list[ModuleType]:
    found = [ic]
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="icechunk_lib."):
        try:
            found.append(importlib.import_module(info.name))
        except ImportError as exc:  # an optional integration whose extra is not installed
            optional = {"xarray", "dask", "distributed", "s3fs", "aiohttp"}
            if exc.name and exc.name.split(".")[0] in optional:
                continue
            raise
    return found


# --- exported names ----------------------------------------------------------------------------


def test_top_level_all_is_sorted_unique_and_resolves() -> None:
    names = ic.__all__
    assert names == sorted(names, key=_ruff_order)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(ic, name) is not None, name


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_every_module_all_is_sorted_and_resolves(module: ModuleType) -> None:
    names = getattr(module, "__all__", None)
    if names is None:
        pytest.skip(f"{module.__name__} has no __all__")
    assert list(names) == sorted(names, key=_ruff_order)
    assert len(set(names)) == len(names)
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, missing


def _type_checking_imports(package: ModuleType) -> dict[str, str]:
    """name -> module of the ``if TYPE_CHECKING:`` imports in ``package``'s ``__init__.py``."""
    assert package.__file__ is not None
    found: dict[str, str] = {}
    for node in ast.parse(Path(package.__file__).read_text()).body:
        if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"):
            continue
        for stmt in node.body:
            assert isinstance(stmt, ast.ImportFrom) and stmt.module, ast.unparse(stmt)
            for alias in stmt.names:
                # "import X as X" marks a re-export for type checkers; a bare import is private.
                assert alias.asname == alias.name, ast.unparse(stmt)
                assert alias.name not in found, alias.name
                found[alias.name] = stmt.module
    return found


LAZY_PACKAGES = [ic, icechunk_lib.format, icechunk_lib.storage]


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda m: m.__name__)
def test_typing_imports_match_the_export_table(package: ModuleType) -> None:
    # The export table feeds __all__ and the lazy loader; type checkers and editors read the
    # TYPE_CHECKING imports instead, so a name in one list only is a name half exported.
    table = package._EXPORTS.targets
    typing = _type_checking_imports(package)
    assert typing, f"{package.__name__} has no TYPE_CHECKING imports"
    only_typing = sorted(set(typing) - set(table))
    only_table = sorted(set(table) - set(typing))
    assert (only_typing, only_table) == ([], []), "names missing from one list"
    moved = {n: (typing[n], table[n]) for n in table if typing[n] != table[n]}
    assert not moved, moved
    for name, module in table.items():
        assert hasattr(importlib.import_module(module), name), f"{module} has no {name}"
    eager = set(package.__all__) - set(table)  # defined by the package itself, not loaded
    assert all(name in vars(package) for name in eager), eager
    assert dir(package) == sorted(package.__all__)


_LAZY_PROBE = """
import json, sys
import icechunk_lib, icechunk_lib.format
print(json.dumps(sorted(m for m in sys.modules if m.startswith("icechunk_lib"))))
"""


def test_importing_the_packages_loads_none_of_their_exports() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LAZY_PROBE], check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout) == ["icechunk_lib", "icechunk_lib._lazy", "icechunk_lib.format"]


ICECHUNK_NAMES = {
    "Repository": [
        "create",
        "open",
        "open_or_create",
        "exists",
        "fetch_config",
        "save_config",
        "config",
        "storage",
        "ancestry",
        "async_ancestry",
        "lookup_snapshot",
        "create_branch",
        "list_branches",
        "lookup_branch",
        "reset_branch",
        "delete_branch",
        "create_tag",
        "list_tags",
        "lookup_tag",
        "delete_tag",
        "diff",
        "readonly_session",
        "writable_session",
        "transaction",
    ],
    "Session": [
        "store",
        "commit",
        "status",
        "discard_changes",
        "rebase",
        "has_uncommitted_changes",
        "read_only",
        "snapshot_id",
        "branch",
    ],
}


@pytest.mark.parametrize("cls", sorted(ICECHUNK_NAMES))
def test_icechunk_method_names(cls: str) -> None:
    # Code written for Icechunk 1.1 (`import icechunk_lib as icechunk`) relies on these names.
    missing = [m for m in ICECHUNK_NAMES[cls] if not hasattr(getattr(ic, cls), m)]
    assert not missing, missing


def test_every_error_is_an_icechunk_error_named_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, Warning):  # warnings sit beside the tree, named as such
            assert issubclass(cls, UserWarning) and name.endswith("Warning"), name
            continue
        assert issubclass(cls, ic.IcechunkError), name
        assert name.endswith("Error"), name
    for name in ic.__all__:
        obj = getattr(ic, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert obj is getattr(errors, name), name


def test_error_tree_docstring_lists_every_error() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, name


# --- sync and async twins ------------------------------------------------------------------------


def _async_methods(cls: type) -> list[tuple[str, str]]:
    pairs = []
    # Inherited ones too: Repository takes its branch and tag methods from a base class.
    names = {n for klass in cls.__mro__ if klass is not object for n in vars(klass)}
    for name in sorted(names):
        if name.endswith("_async"):
            pairs.append((name, name.removesuffix("_async")))
        elif name.startswith("async_"):  # Icechunk's spelling for async iterators
            pairs.append((name, name.removeprefix("async_")))
    return pairs


@pytest.mark.parametrize("cls", [ic.Repository, ic.Session], ids=lambda c: c.__name__)
def test_every_async_method_has_a_sync_twin(cls: type) -> None:
    pairs = _async_methods(cls)
    assert pairs, f"{cls.__name__} has no async methods"
    for async_name, sync_name in pairs:
        assert hasattr(cls, sync_name), f"{cls.__name__}.{async_name} has no {sync_name}"
        # Both are plain methods, or both static, or both class methods.
        kinds = {type(inspect.getattr_static(cls, n)) for n in (async_name, sync_name)}
        assert len(kinds) == 1 or not kinds & {staticmethod, classmethod}, kinds
        a = getattr(cls, async_name)
        s = getattr(cls, sync_name)
        assert inspect.iscoroutinefunction(a) or inspect.isasyncgenfunction(a), async_name
        assert not inspect.iscoroutinefunction(s) and not inspect.isasyncgenfunction(s), sync_name
        a_params = list(inspect.signature(a).parameters.values())
        s_params = list(inspect.signature(s).parameters.values())
        assert [(p.name, p.kind, p.default) for p in a_params] == [
            (p.name, p.kind, p.default) for p in s_params
        ], (async_name, sync_name)


# --- layering ------------------------------------------------------------------------------------

FORBIDDEN_IN_FORMAT = [
    "icechunk_lib.storage",
    "icechunk_lib.session",
    "icechunk_lib.store",
    "icechunk_lib.repository",
    "icechunk_lib.objects",
    "icechunk_lib.refs",
    "zarr",
    "fsspec",
    "s3fs",
]

# Import only icechunk_lib.format, with a bare stand-in for the parent package: the real
# icechunk_lib/__init__.py imports the whole library, which would hide what format pulls in.
_PROBE = """
import json, sys, types
parent = types.ModuleType("icechunk_lib")
parent.__path__ = [sys.argv[1]]
sys.modules["icechunk_lib"] = parent
import icechunk_lib.format
import icechunk_lib.format.refs, icechunk_lib.format.snapshot, icechunk_lib.format.txlog
import icechunk_lib.format.manifest, icechunk_lib.format.manifest_codec
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_format_loads_no_storage_session_or_zarr() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(PACKAGE_DIR)],
        check=True,
        capture_output=True,
        text=True,
    )
    loaded = json.loads(out.stdout)
    assert "icechunk_lib.format.manifest" in loaded
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_IN_FORMAT)]
    assert not bad, bad


_HISTORY_PROBE = """
import json, sys
import icechunk_lib as ic
repo = ic.Repository.create(ic.local_filesystem_storage(sys.argv[1]))
repo.create_branch("dev", repo.lookup_branch("main"))
print(len(list(repo.ancestry(branch="dev"))), repo.resolve("dev"), len(repo.reflog("main")))
print(json.dumps(sorted(m for m in ("numpy", "zarr", "fsspec", "s3fs") if m in sys.modules)))
"""


def test_refs_and_history_load_no_numpy_or_zarr(tmp_path: Path) -> None:
    """What the ``ick`` command needs for history and refs imports nothing heavy."""
    out = subprocess.run(
        [sys.executable, "-c", _HISTORY_PROBE, str(tmp_path / "repo")],
        check=True,
        capture_output=True,
        text=True,
    )
    first, heavy = out.stdout.splitlines()
    assert first.startswith("1 ")
    assert json.loads(heavy) == []


def _imports(path: Path) -> set[str]:
    """Every module an ``import`` statement in ``path`` names (relative ones made absolute)."""
    package = "icechunk_lib." + ".".join(path.relative_to(PACKAGE_DIR).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                found.add(f"{base}.{node.module}" if node.module else base)
            else:
                assert node.module is not None
                found.add(node.module)
    return found


ALLOWED = {
    # icechunk_lib._lazy is the stdlib-only lazy-export helper both packages share.
    "format": {
        "msgspec",
        "numpy",
        "xxhash",
        "zstandard",
        "icechunk_lib.errors",
        "icechunk_lib._lazy",
    },
    "storage": {
        "fsspec",
        "s3fs",
        "aiobotocore",
        # aiobotocore's own base: the S3 backend falls back to its timestamp parser.
        "botocore",
        # The S3 backend's direct requests (aiohttp and its URL type, with the s3 extra).
        "aiohttp",
        "yarl",
        "multidict",
        "xxhash",
        "icechunk_lib.errors",
        "icechunk_lib._lazy",
        "azure.core",  # credentials for adlfs (the azure extra)
        "google.oauth2",  # credentials for gcsfs (the gcs extra)
    },
}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lower_layers_import_only_what_design_allows(layer: str) -> None:
    # format: bytes only; storage: bytes only and no format imports (DESIGN.md, "Layers").
    allowed = ALLOWED[layer] | {f"icechunk_lib.{layer}"}
    bad: dict[str, list[str]] = {}
    for path in sorted((PACKAGE_DIR / layer).rglob("*.py")):
        for module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if any(module == a or module.startswith(a + ".") for a in allowed):
                continue
            bad.setdefault(path.name, []).append(module)
    assert not bad, bad
