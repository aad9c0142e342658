"""Commit internals: how rewritten manifest pieces are written, and what a commit holds at once."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib import commit as commit_module
from icechunk_lib.objects import ObjectStore
from icechunk_lib.session import workspace_of


def _repo(storage: ic.Storage, max_refs: int) -> ic.Repository:
    config = ic.RepositoryConfig(
        inline_chunk_threshold_bytes=0,
        manifest=ic.ManifestConfig(max_refs_per_manifest=max_refs),
    )
    return ic.Repository.create(storage, config=config)


def _manifest_ids(repo: ic.Repository, path: str) -> list[str]:
    session = repo.readonly_session("main")
    node = ic._sync.run(workspace_of(session).nodes())[path]
    return [m.manifest_id for m in node.manifests]


def test_change_touching_every_piece_rewrites_them_a_few_at_a_time(
    storage: ic.Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(storage, max_refs=8)
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(64,), chunks=(1,), dtype="i8")
    arr[:] = np.arange(1, 65)  # no chunk equals the fill value, so all 64 are stored
    session.commit("64 chunks in 8 pieces")
    assert len(_manifest_ids(repo, "/a")) == 8

    in_flight = 0
    most = 0
    real_write = ObjectStore.write_manifest

    async def slow_write(self: ObjectStore, manifest: object) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.01)  # give every other piece the chance to start
            return await real_write(self, manifest)  # type: ignore[arg-type]
        finally:
            in_flight -= 1

    monkeypatch.setattr(ObjectStore, "write_manifest", slow_write)
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="a")
    arr[::4] = -1  # two chunks in every piece
    session.commit("touch every piece")

    assert 1 <= most <= commit_module._PIECES_IN_FLIGHT
    ids = _manifest_ids(repo, "/a")
    assert len(ids) == 8 and len(set(ids)) == 8  # each big piece is a file of its own
    expected = np.arange(1, 65)
    expected[::4] = -1
    ro = repo.readonly_session("main")
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="a")[:], expected)


def test_small_rewritten_pieces_of_several_arrays_share_one_file(storage: ic.Storage) -> None:
    repo = _repo(storage, max_refs=100)
    session = repo.writable_session("main")
    for name in ("x", "y", "z"):
        arr = zarr.create_array(session.store, name=name, shape=(4,), chunks=(1,), dtype="i8")
        arr[:] = [1, 2, 3, 4]
    session.commit("three small arrays")
    session = repo.writable_session("main")
    for name in ("x", "y", "z"):
        zarr.open_array(session.store, path=name)[0] = 9
    session.commit("one chunk each")
    ids = {i for name in ("/x", "/y", "/z") for i in _manifest_ids(repo, name)}
    assert len(ids) == 1
    ro = repo.readonly_session("main")
    for name in ("x", "y", "z"):
        np.testing.assert_array_equal(zarr.open_array(ro.store, path=name)[:], [9, 2, 3, 4])
