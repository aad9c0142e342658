"""The public ``Session`` surface: Icechunk's names plus a few listed extras; the engine's data
path lives on the ``Workspace``, reached only through ``workspace_of``."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.session import workspace_of
from icechunk_lib.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]

ICECHUNK_SESSION = frozenset(
    {
        "all_virtual_chunk_locations",
        "all_virtual_chunk_locations_async",
        "allow_pickling",
        "branch",
        "chunk_coordinates",
        "chunk_type",
        "chunk_type_async",
        "commit",
        "commit_async",
        "config",
        "discard_changes",
        "flush",
        "flush_async",
        "fork",
        "has_uncommitted_changes",
        "merge",
        "merge_async",
        "read_only",
        "rebase",
        "rebase_async",
        "snapshot_id",
        "status",
        "store",
    }
)
"""The public names of Icechunk 1.1's ``Session`` (checked against it when it is installed)."""

ICK_EXTRAS = {
    "status_async": "the async twin of status, as every other blocking call has one",
    "list_nodes": "the group/array tree with chunk statistics, behind `ick ls`",
    "list_nodes_async": "the async twin of list_nodes",
    "move": "rename a group or array without copying a chunk; Icechunk 1.1 cannot rename",
    "move_async": "the async twin of move",
}
"""ick's public ``Session`` names that Icechunk's Python ``Session`` lacks, with why."""


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def test_public_session_surface_is_icechunks_plus_the_listed_extras() -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    assert _public(ic.Session) - ICECHUNK_SESSION == set(ICK_EXTRAS)
    assert _public(session) == _public(ic.Session)  # no public instance attributes either
    assert all(reason for reason in ICK_EXTRAS.values())


def test_icechunk_session_names_are_current() -> None:
    icechunk = pytest.importorskip("icechunk")
    if not icechunk.__version__.startswith("1.1."):
        pytest.skip(f"the list is Icechunk 1.1's; installed: {icechunk.__version__}")
    assert _public(icechunk.Session) == ICECHUNK_SESSION


def test_engine_methods_live_on_the_workspace_only() -> None:
    engine = {"nodes", "set_chunk", "chunk_ref", "read_ref", "set_node", "iter_chunks"}
    assert engine <= _public(Workspace)
    assert not engine & _public(ic.Session)


_PRIVATE_SESSION_ACCESS = re.compile(
    r"\b\w*session\w*\._[a-z]\w*"  # session._x, self._session._x, ro_session._x
    r"|(?<![\w.])(?!self\b)\w+\._workspace\b"  # other._workspace: the session's own attribute
    r"|\._(?:pending_commit|check_mergeable|check_on_branch|commit_with_retries)\b"
)


def test_no_private_session_access_outside_session_py() -> None:
    """Engine code reaches a session's workspace with ``workspace_of``, never its privates."""
    found = []
    for package in ("icechunk_lib", "icechunk_cli", "tests"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "icechunk_lib" / "session.py" or path == Path(__file__).resolve():
                continue
            if path.is_relative_to(ROOT / "icechunk_lib" / "storage"):
                continue  # below the session (test_layers): a session there is an HTTP client's
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if _PRIVATE_SESSION_ACCESS.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, found


def test_the_checker_sees_private_session_access() -> None:
    hits = [
        "session._workspace",
        "self._session._refs",
        "ro_session._branch",
        "other._workspace",
        "s._pending_commit",
    ]
    misses = ["self._workspace", "session.commit()", "repo._objects", "store._session"]
    assert all(_PRIVATE_SESSION_ACCESS.search(line) for line in hits)
    assert not any(_PRIVATE_SESSION_ACCESS.search(line) for line in misses)


def test_store_uses_its_sessions_workspace_for_the_sessions_life() -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    ws = workspace_of(session)
    store = session.store
    zarr.create_array(store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 7
    assert workspace_of(store.session) is ws and store.with_read_only(True).session is session
    session.commit("a")
    assert workspace_of(session) is ws and ws.snapshot_id == session.snapshot_id
    np.testing.assert_array_equal(zarr.open_array(store, path="a", mode="r")[:], [7] * 4)


def test_unpickled_store_writes_through_its_unpickled_session() -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
    store = pickle.loads(pickle.dumps(session.store))
    zarr.open_array(store, path="a")[2:] = 5
    assert store.session is not session and store.session.has_uncommitted_changes
    assert workspace_of(store.session).dirty
    np.testing.assert_array_equal(zarr.open_array(store, path="a")[:], [1, 1, 5, 5])
    np.testing.assert_array_equal(zarr.open_array(session.store, path="a")[:], [1, 1, 1, 1])


def _coordinates(session: ic.Session, path: str) -> list[tuple[int, ...]]:
    async def collect() -> list[tuple[int, ...]]:
        return sorted([c async for c in session.chunk_coordinates(path)])

    return ic._sync.run(collect())


def test_chunk_coordinates_takes_an_array_path_as_icechunks_does() -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    group = zarr.open_group(session.store, mode="a")
    arr = group.create_array("a", shape=(4, 4), chunks=(2, 2), dtype="i4", fill_value=0)
    arr[:2, :] = 1
    session.commit("top row of chunks")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[2:, 2:] = 3  # one more, uncommitted
    assert _coordinates(session, "/a") == [(0, 0), (0, 1), (1, 1)]
    assert _coordinates(session, "a") == [(0, 0), (0, 1), (1, 1)]
    assert _coordinates(session, "/") == []  # a group holds no chunks
    with pytest.raises(ic.NodeNotFoundError, match="'/missing'"):
        _coordinates(session, "/missing")
