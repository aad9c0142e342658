"""Chunk-level paths on arrays of unusual shapes: 0-d, empty, (1,), many dimensions, big chunks.

Every path that handles chunk coordinates (write, overwrite, delete, commit, diff both ways,
session status, rebase conflicts, reading old versions) runs on each shape, and a hypothesis
test checks that a diff names exactly the chunks a write touched.
"""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Callable

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icechunk_lib as ic
from icechunk_lib._sync import run

Coords = list[list[int]]


def _grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-s // c) for s, c in zip(shape, chunks, strict=True))


def _all_chunks(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Coords:
    return [list(c) for c in itertools.product(*(range(n) for n in _grid(shape, chunks)))]


def _touched(sel: tuple[slice, ...], chunks: tuple[int, ...]) -> Coords:
    """Chunks that the region ``sel`` (non-empty slices with start/stop) overlaps."""
    ranges = [range(s.start // c, (s.stop - 1) // c + 1) for s, c in zip(sel, chunks, strict=True)]
    return [list(c) for c in itertools.product(*ranges)]


def _commit(repo: ic.Repository, edit: Callable[[ic.IcechunkStore], None], message: str) -> str:
    session = repo.writable_session("main")
    edit(session.store)
    return session.commit(message)


@pytest.fixture
def mem_repo() -> ic.Repository:
    return ic.Repository.create(ic.in_memory_storage())


# --- 0-d arrays ------------------------------------------------------------------------------


@pytest.fixture
def scalar_history(mem_repo: ic.Repository) -> tuple[ic.Repository, list[str]]:
    """main: create x = 1.0, overwrite with 2.0, delete its only chunk (write the fill value)."""
    repo = mem_repo

    def create(store: ic.IcechunkStore) -> None:
        zarr.create_array(store, name="x", shape=(), dtype="f8", fill_value=0.0)[()] = 1.0

    def overwrite(store: ic.IcechunkStore) -> None:
        zarr.open_array(store, path="x")[()] = 2.0

    def delete(store: ic.IcechunkStore) -> None:
        # zarr deletes a chunk that holds only the fill value.
        zarr.open_array(store, path="x")[()] = 0.0

    ids = [
        _commit(repo, create, "create"),
        _commit(repo, overwrite, "overwrite"),
        _commit(repo, delete, "delete"),
    ]
    return repo, ids


def test_scalar_diff_each_commit_both_ways(scalar_history: tuple[ic.Repository, list[str]]) -> None:
    repo, (c1, c2, c3) = scalar_history
    first = repo.diff(from_snapshot_id=repo.lookup_snapshot(c1).parent_id, to_snapshot_id=c1)
    assert first.new_arrays == {"/x"}
    assert first.updated_chunks == {"/x": [[]]}
    for old, new in itertools.permutations((c1, c2, c3), 2):
        diff = repo.diff(from_snapshot_id=old, to_snapshot_id=new)
        assert diff.updated_chunks == {"/x": [[]]}, (old, new)
        assert not diff.new_arrays and not diff.deleted_arrays
        assert "/x: 1 chunk(s)" in repr(diff)
    assert repo.diff(from_snapshot_id=c2, to_snapshot_id=c2).is_empty()


def test_scalar_old_versions_read_back(scalar_history: tuple[ic.Repository, list[str]]) -> None:
    repo, ids = scalar_history
    for snap, value in zip(ids, (1.0, 2.0, 0.0), strict=True):
        store = repo.readonly_session(snapshot_id=snap).store
        assert zarr.open_array(store, path="x")[()] == value
    assert "x/c" not in run(_list(repo.readonly_session(snapshot_id=ids[2]).store))


async def _list(store: ic.IcechunkStore) -> list[str]:
    return [k async for k in store.list()]


def test_scalar_session_status_and_delete(mem_repo: ic.Repository) -> None:
    zarr.create_array(
        (s := mem_repo.writable_session("main")).store, name="x", shape=(), dtype="i4"
    )[()] = 5
    assert s.status().updated_chunks == {"/x": [[]]}
    s.commit("create")
    s = mem_repo.writable_session("main")
    run(s.store.delete("x/c"))
    assert s.status().updated_chunks == {"/x": [[]]}
    assert s.has_uncommitted_changes
    snap = s.commit("delete the chunk")
    diff = mem_repo.diff(
        from_snapshot_id=mem_repo.lookup_snapshot(snap).parent_id, to_branch="main"
    )
    assert diff.updated_chunks == {"/x": [[]]}
    assert zarr.open_array(mem_repo.readonly_session("main").store, path="x")[()] == 0


def test_scalar_deleted_array_diff(scalar_history: tuple[ic.Repository, list[str]]) -> None:
    repo, (_, c2, _) = scalar_history
    session = repo.writable_session("main")
    del zarr.open_group(session.store)["x"]
    gone = session.commit("drop x")
    assert repo.diff(from_snapshot_id=c2, to_snapshot_id=gone).deleted_arrays == {"/x"}
    back = repo.diff(from_snapshot_id=gone, to_snapshot_id=c2)
    assert back.new_arrays == {"/x"}
    assert back.updated_chunks == {"/x": [[]]}


@pytest.mark.parametrize(
    ("solver", "expected"),
    [
        (ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseOurs), 30),
        (ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseTheirs), 20),
    ],
)
def test_scalar_rebase_conflicts(
    mem_repo: ic.Repository, solver: ic.ConflictSolver, expected: int
) -> None:
    zarr.create_array(
        (s := mem_repo.writable_session("main")).store, name="x", shape=(), dtype="i4"
    )[()] = 10
    s.commit("create")
    theirs, ours = mem_repo.writable_session("main"), mem_repo.writable_session("main")
    zarr.open_array(theirs.store, path="x")[()] = 20
    theirs.commit("theirs")
    zarr.open_array(ours.store, path="x")[()] = 30
    with pytest.raises(ic.ConflictError):
        ours.commit("ours")
    with pytest.raises(ic.RebaseFailedError) as failed:
        ours.rebase(ic.ConflictDetector())
    [conflict] = failed.value.conflicts
    assert conflict.conflict_type is ic.ConflictType.ChunkDoubleUpdate
    assert conflict.path == "/x"
    assert conflict.conflicted_chunks == [[]]
    ours.rebase(solver)
    # Taking their chunk leaves ours with nothing to commit.
    assert ours.status().updated_chunks == ({"/x": [[]]} if expected == 30 else {})
    if expected == 30:
        ours.commit("ours, rebased")
    assert zarr.open_array(mem_repo.readonly_session("main").store, path="x")[()] == expected


def test_scalar_fork_pickle_and_merge(mem_repo: ic.Repository) -> None:
    zarr.create_array(
        (s := mem_repo.writable_session("main")).store, name="x", shape=(), dtype="i4"
    )[()] = 1
    s.commit("create")
    session = mem_repo.writable_session("main")
    fork = pickle.loads(pickle.dumps(session.fork()))
    zarr.open_array(fork.store, path="x")[()] = 9
    session.merge(pickle.loads(pickle.dumps(fork)))
    assert session.status().updated_chunks == {"/x": [[]]}
    session.commit("from a fork")
    assert zarr.open_array(mem_repo.readonly_session("main").store, path="x")[()] == 9


# --- other shapes ----------------------------------------------------------------------------

SHAPES = [
    pytest.param((0,), (4,), id="empty-1d"),
    pytest.param((3, 0), (2, 2), id="empty-2d"),
    pytest.param((1,), (1,), id="one"),
    pytest.param((3,), (10,), id="chunk-larger-than-shape"),
    pytest.param((2,) * 8, (1,) * 8, id="eight-dims"),
    pytest.param((5, 1, 7), (2, 1, 3), id="ragged-edges"),
]


@pytest.mark.parametrize(("shape", "chunks"), SHAPES)
def test_shape_edge_cases_through_diff(
    mem_repo: ic.Repository, shape: tuple[int, ...], chunks: tuple[int, ...]
) -> None:
    data = np.arange(1, math.prod(shape) + 1, dtype="i4").reshape(shape)

    def create(store: ic.IcechunkStore) -> None:
        arr = zarr.create_array(store, name="a", shape=shape, chunks=chunks, dtype="i4")
        arr[...] = data

    c1 = _commit(mem_repo, create, "create")
    written = _all_chunks(shape, chunks) if data.size else []
    first = mem_repo.diff(
        from_snapshot_id=mem_repo.lookup_snapshot(c1).parent_id, to_snapshot_id=c1
    )
    assert first.new_arrays == {"/a"}
    assert first.updated_chunks == ({"/a": written} if written else {})
    if not data.size:
        return
    corner = tuple(slice(0, 1) for _ in shape)

    def touch(store: ic.IcechunkStore) -> None:
        zarr.open_array(store, path="a")[corner] = -1

    c2 = _commit(mem_repo, touch, "touch a corner")
    for old, new in ((c1, c2), (c2, c1)):
        assert mem_repo.diff(from_snapshot_id=old, to_snapshot_id=new).updated_chunks == {
            "/a": [[0] * len(shape)]
        }
    back = zarr.open_array(mem_repo.readonly_session(snapshot_id=c1).store, path="a")[...]
    np.testing.assert_array_equal(back, data)


@st.composite
def _shape_and_region(
    draw: st.DrawFn,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[slice, ...]]:
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(st.integers(1, 8)) for _ in shape)
    region = []
    for n in shape:
        start = draw(st.integers(0, n - 1))
        region.append(slice(start, draw(st.integers(start + 1, n))))
    return shape, chunks, tuple(region)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_shape_and_region())
def test_diff_names_exactly_the_chunks_written(
    case: tuple[tuple[int, ...], tuple[int, ...], tuple[slice, ...]],
) -> None:
    shape, chunks, region = case
    repo = ic.Repository.create(ic.in_memory_storage())

    def create(store: ic.IcechunkStore) -> None:
        zarr.create_array(store, name="a", shape=shape, chunks=chunks, dtype="i2")[...] = 1

    def write(store: ic.IcechunkStore) -> None:
        zarr.open_array(store, path="a")[region] = 2

    c1 = _commit(repo, create, "create")
    session = repo.writable_session("main")
    write(session.store)
    touched = _touched(region, chunks)
    assert session.status().updated_chunks == {"/a": touched}
    c2 = session.commit("write a region")
    for old, new in ((c1, c2), (c2, c1)):
        assert repo.diff(from_snapshot_id=old, to_snapshot_id=new).updated_chunks == {"/a": touched}
