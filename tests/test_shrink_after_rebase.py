"""A shrink that lands after another writer's chunks beyond the new grid deletes them, as
zarr's resize does: growing the array again shows fill values, not the old chunks. Our chunks
in an array whose layout they changed, or beyond a grid they shrank, are a conflict."""

from __future__ import annotations

import json
import pickle

import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import icechunk_lib as ic
from icechunk_lib._sync import run
from icechunk_lib.conflicts import ConflictType

PROTO = default_buffer_prototype()


def _repo(storage: ic.Storage) -> ic.Repository:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    arr = zarr.group(session.store).create_array(
        "a", shape=(4,), chunks=(1,), dtype="i4", fill_value=0
    )
    arr[:2] = [1, 2]
    session.commit("base")
    return repo


def _regrown(repo: ic.Repository) -> list[int]:
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="a")
    assert arr.shape == (2,)
    arr.resize((4,))
    values: list[int] = arr[:].tolist()
    return values


def test_a_shrink_rebased_over_their_chunk_beyond_the_grid_deletes_it(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage)
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="a")[3] = 99
    theirs.commit("write chunk 3")
    zarr.open_array(ours.store, path="a").resize((2,))
    ours.commit("shrink", rebase_with=ic.ConflictDetector())
    assert _regrown(repo) == [1, 2, 0, 0]


def test_a_shrink_merged_with_a_fork_writing_beyond_the_grid_deletes_it(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage)
    session = repo.writable_session("main")
    shrinker = pickle.loads(pickle.dumps(session.fork()))
    writer = pickle.loads(pickle.dumps(session.fork()))
    zarr.open_array(writer.store, path="a")[3] = 99
    zarr.open_array(shrinker.store, path="a").resize((2,))
    session.merge(writer, shrinker)
    session.commit("merged")
    assert _regrown(repo) == [1, 2, 0, 0]


def test_our_chunk_beyond_the_grid_they_shrank_is_a_conflict(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="a").resize((2,))
    tip = theirs.commit("shrink")
    zarr.open_array(ours.store, path="a")[3] = 99
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.commit("write chunk 3", rebase_with=ic.BasicConflictSolver())
    assert [(c.conflict_type, c.path, c.conflicted_chunks) for c in info.value.conflicts] == [
        (ConflictType.ChunksUpdatedInUpdatedArray, "/a", [[3]])
    ]
    assert repo.lookup_branch("main") == tip
    assert _regrown(repo) == [1, 2, 0, 0]


def test_our_chunk_in_an_array_whose_data_type_they_changed_is_a_conflict(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage)
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    meta = json.loads(run(theirs.store.get("a/zarr.json", PROTO)).to_bytes())  # type: ignore[union-attr]
    meta["data_type"] = "float32"
    run(theirs.store.set("a/zarr.json", PROTO.buffer.from_bytes(json.dumps(meta).encode())))
    zarr.open_array(theirs.store, path="a")[:] = [1.5, 2.5, 3.5, 4.5]
    tip = theirs.commit("to float32")
    zarr.open_array(ours.store, path="a")[3] = 99  # a chunk they wrote too
    zarr.open_array(ours.store, path="a")[2] = 98
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.commit("int32 writes", rebase_with=ic.BasicConflictSolver())
    assert ConflictType.ChunksUpdatedInUpdatedArray in [
        c.conflict_type for c in info.value.conflicts
    ]
    assert repo.lookup_branch("main") == tip


def test_our_chunks_in_an_array_whose_attributes_or_size_they_changed_rebase(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage)
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    arr = zarr.open_array(theirs.store, path="a")
    arr.attrs["units"] = "m"
    arr.resize((6,))
    theirs.commit("attrs and grow")
    zarr.open_array(ours.store, path="a")[3] = 99
    ours.commit("write", rebase_with=ic.ConflictDetector())
    read = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    assert read[:].tolist() == [1, 2, 0, 99, 0, 0]
    assert read.attrs["units"] == "m"
