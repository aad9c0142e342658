"""A shrink that lands after another writer's chunks beyond the new grid deletes them, as
zarr's resize does: growing the array again shows fill values, not the old chunks."""

from __future__ import annotations

import pickle

import zarr

import icechunk_lib as ic


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
