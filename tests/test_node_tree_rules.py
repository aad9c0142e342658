"""The node tree keeps zarr's shape: one root group, and only groups have children. A node put
inside an array would take over part of the array's chunk keys and hide its data."""

from __future__ import annotations

import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import icechunk_lib as ic
from icechunk_lib._sync import run


def _session(storage: ic.Storage) -> tuple[ic.Repository, ic.Session]:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_array("a", shape=(4,), chunks=(2,), dtype="i4")[:] = [1, 2, 3, 4]
    root.create_array("b", shape=(4,), chunks=(2,), dtype="i4")[:] = [5, 6, 7, 8]
    return repo, session


def _paths(session: ic.Session) -> list[str]:
    return [n.path for n in session.list_nodes(recursive=True)]


def test_moving_the_root_is_refused(storage: ic.Storage) -> None:
    repo, session = _session(storage)
    with pytest.raises(ic.InvalidNameError, match="root"):
        session.move("/", "/x")
    assert _paths(session) == ["/a", "/b"]
    sid = session.commit("arrays")
    root = zarr.open_group(repo.readonly_session(snapshot_id=sid).store, mode="r")
    assert sorted(root.keys()) == ["a", "b"]


@pytest.mark.parametrize("dst", ["/a/c", "/a/x", "/a/c/0"])
def test_moving_a_node_inside_an_array_is_refused(storage: ic.Storage, dst: str) -> None:
    _, session = _session(storage)
    with pytest.raises(ic.InvalidNameError, match="array /a"):
        session.move("/b", dst)
    assert _paths(session) == ["/a", "/b"]
    assert zarr.open_array(session.store, path="a")[:].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("key", ["a/c/zarr.json", "a/x/zarr.json", "a/x/y/zarr.json"])
def test_metadata_of_a_node_inside_an_array_is_refused(storage: ic.Storage, key: str) -> None:
    _, session = _session(storage)
    group_meta = b'{"zarr_format": 3, "node_type": "group", "attributes": {}}'
    buf = default_buffer_prototype().buffer.from_bytes(group_meta)
    with pytest.raises(ic.InvalidNameError, match="array /a"):
        run(session.store.set(key, buf))
    assert _paths(session) == ["/a", "/b"]
    assert zarr.open_array(session.store, path="a")[:].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("bad", [None, 5, b"/a"])
def test_a_move_path_that_is_not_text_is_a_clear_error(storage: ic.Storage, bad: object) -> None:
    _, session = _session(storage)
    with pytest.raises(ic.InvalidNameError):
        session.move(bad, "/z")  # type: ignore[arg-type]
    with pytest.raises(ic.InvalidNameError):
        session.move("/a", bad)  # type: ignore[arg-type]
    assert _paths(session) == ["/a", "/b"]


def test_turning_a_group_with_children_into_an_array_is_refused(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_group("g").create_array("c", shape=(2,), chunks=(1,), dtype="i4")[:] = [5, 6]
    array_meta = run(session.store.get("g/c/zarr.json", default_buffer_prototype()))
    assert array_meta is not None
    with pytest.raises(ic.InvalidNameError, match="children"):
        run(session.store.set("g/zarr.json", array_meta))
    assert _paths(session) == ["/g", "/g/c"]
    assert zarr.open_array(session.store, path="g/c")[:].tolist() == [5, 6]
