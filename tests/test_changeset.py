"""``ChangeSet``: a session's uncommitted state as plain data, and the engine functions and
solvers that take it as input instead of reaching into a session."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.changeset import ChangeSet
from icechunk_lib.conflicts import Conflict, ConflictType, Resolution
from icechunk_lib.errors import InvalidNameError, NodeNotFoundError
from icechunk_lib.format.manifest import INLINE, ChunkRef
from icechunk_lib.format.snapshot import ExtraObject
from icechunk_lib.ops.diff import diff_changes
from icechunk_lib.session import workspace_of


def _array_meta(shape: list[int], chunks: list[int]) -> bytes:
    return json.dumps(
        {
            "zarr_format": 3,
            "node_type": "array",
            "shape": shape,
            "data_type": "int32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
            "chunk_key_encoding": {"name": "default"},
            "fill_value": 0,
            "codecs": [{"name": "bytes"}],
        }
    ).encode()


GROUP = b'{"zarr_format": 3, "node_type": "group"}'


def _ref(value: bytes) -> ChunkRef:
    return ChunkRef(INLINE, b"", 0, len(value), 0, value)


def test_an_empty_change_set_changes_nothing() -> None:
    changes = ChangeSet({}, {})
    assert changes.is_empty()
    assert not changes.node_changes(())
    assert changes.live_chunks() == {}


def test_node_edits_keep_ids_through_updates_and_moves() -> None:
    changes = ChangeSet({}, {})
    changes.put_node("/", GROUP)
    arr, old = changes.put_node("/a", _array_meta([4], [2]))
    assert old is None and not changes.is_empty()
    updated, before = changes.put_node("/a", _array_meta([8], [2]))
    assert before is arr and updated.id == arr.id  # same rank: same node, same chunks
    changes.set_chunk_ref(arr.id, (0,), _ref(b"x"))
    changes.move("/a", "/b")
    assert changes.nodes["/b"].id == arr.id and "/a" not in changes.nodes
    assert changes.path_of(arr.id) == "/b"
    assert changes.chunks[arr.id][(0,)] == _ref(b"x")
    # Another rank is another array: the old one's chunk changes go with it.
    replaced, _ = changes.put_node("/b", _array_meta([4, 4], [2, 2]))
    assert replaced.id != arr.id and arr.id not in changes.chunks


def test_node_edits_keep_the_tree_rules() -> None:
    changes = ChangeSet({}, {})
    changes.put_node("/", GROUP)
    changes.put_node("/a", _array_meta([4], [2]))
    changes.put_node("/g", GROUP)
    changes.put_node("/g/x", GROUP)
    with pytest.raises(InvalidNameError, match="inside array /a"):
        changes.put_node("/a/b", GROUP)
    with pytest.raises(InvalidNameError, match="has children"):
        changes.put_node("/g", _array_meta([4], [2]))
    with pytest.raises(NodeNotFoundError):
        changes.move("/nope", "/z")
    with pytest.raises(InvalidNameError, match="root"):
        changes.move("/", "/z")
    with pytest.raises(InvalidNameError, match="inside the source"):
        changes.move("/g", "/g/x/y")
    assert changes.delete_tree("/g") == 2
    assert sorted(changes.nodes) == ["/", "/a"]


def test_chunk_changes_are_taken_back_or_deleted_outside_a_grid() -> None:
    changes = ChangeSet({}, {})
    arr, _ = changes.put_node("/a", _array_meta([6], [2]))
    for i in range(3):
        changes.put_native(arr.id, (i,), bytes(12), 10, i)
    changes.drop_chunk_changes("/a", [[1]])
    assert sorted(changes.chunks[arr.id]) == [(0,), (2,)]
    changes.drop_chunk_changes("/nowhere", [[0]])  # no such node: nothing to take back
    changes.delete_outside(arr.id, (2,), committed=[(5,)])
    record = changes.chunks[arr.id]
    assert record[(2,)] is None and record[(5,)] is None and record[(0,)] is not None
    changes.drop_chunk_changes("/a")
    assert changes.live_chunks() == {}


def test_a_copy_is_independent_and_a_merge_folds_another_change_set_in() -> None:
    base = ChangeSet({}, {})
    base.put_node("/", GROUP)
    arr, _ = base.put_node("/a", _array_meta([4], [2]))
    base_nodes = tuple(base.nodes.values())
    mine = ChangeSet(dict(base.nodes), {})
    theirs = mine.copy()
    mine.set_chunk_ref(arr.id, (0,), _ref(b"mine"))
    assert arr.id not in theirs.chunks  # the copy did not see the write
    theirs.set_chunk_ref(arr.id, (0,), _ref(b"theirs"))
    theirs.set_chunk_ref(arr.id, (1,), _ref(b"new"))
    theirs.move("/a", "/b")
    theirs.set_extra(ExtraObject("k", 1, 0, b"v"))
    mine.merge(theirs, base_nodes)
    assert sorted(mine.nodes) == ["/", "/b"]
    assert mine.chunks[arr.id][(0,)] == _ref(b"theirs")
    assert mine.chunks[arr.id][(1,)] == _ref(b"new")
    assert mine.extras["k"].data == b"v" and mine.extra_changes == {"k"}


def test_diff_takes_a_change_set_and_its_base() -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
    session.commit("a")
    base = asyncio.run(workspace_of(repo.readonly_session("main")).base_snapshot())
    changes = ChangeSet.from_snapshot(base)
    arr, _ = changes.put_node("/b", _array_meta([4], [2]))
    changes.set_chunk_ref(arr.id, (1,), _ref(b"z"))
    changes.delete_node("/a")
    diff = diff_changes(changes, base)
    assert diff.new_arrays == {"/b"} and diff.deleted_arrays == {"/a"}
    assert diff.updated_chunks == {"/b": [[1]]}


class _TheirsForOddChunks(ic.ConflictSolver):
    """A solver of one's own: their chunks win at odd coordinates, ours elsewhere."""

    def __init__(self) -> None:
        self.seen: list[Conflict] = []

    def resolve(self, changes: ChangeSet, conflicts: list[Conflict]) -> Resolution:
        self.seen.extend(conflicts)
        patched = changes.copy()
        for c in conflicts:
            odd = [xy for xy in c.conflicted_chunks if xy[0] % 2]
            patched.drop_chunk_changes(c.path, odd)
        return Resolution(patched, [])


def test_a_solver_of_ones_own_returns_a_patched_change_set(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(1,), dtype="i4")[:] = 0
    session.commit("zeros")
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="a")[:] = 2
    theirs.commit("twos")
    zarr.open_array(ours.store, path="a")[:] = 1
    solver = _TheirsForOddChunks()
    ours.commit("ones where even", rebase_with=solver)
    assert [c.conflict_type for c in solver.seen] == [ConflictType.ChunkDoubleUpdate]
    back = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(back[:], [1, 2, 1, 2])


def test_writes_during_a_rebase_are_refused_not_lost(storage: ic.Storage) -> None:
    """The rebase replays a copy of the change set; a write landing meanwhile would vanish."""
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(2,), chunks=(1,), dtype="i4")[:] = 0
    session.commit("zeros")
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="a")[:] = 2
    theirs.commit("twos")
    zarr.open_array(ours.store, path="a")[:] = 1
    refused: list[Exception] = []

    class WritingSolver(ic.ConflictSolver):
        def resolve(self, changes: ChangeSet, conflicts: list[Conflict]) -> Resolution:
            try:
                ours.discard_changes()  # a sync write, from the rebase's own thread
            except ic.SessionError as exc:
                refused.append(exc)
            return Resolution(changes, [])

    ours.rebase(WritingSolver())
    assert len(refused) == 1
    assert "cannot discard changes: a rebase of this session is in progress" in str(refused[0])
    assert ours.snapshot_id == repo.lookup_branch("main")
    assert zarr.open_array(ours.store, path="a", mode="r")[:].tolist() == [1, 1]
