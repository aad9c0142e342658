"""Distributed writes: forked sessions pickled to dask worker processes, merged, committed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic

distributed = pytest.importorskip("distributed")


def _write_block(fork: ic.Session, start: int, stop: int) -> ic.Session:
    arr = zarr.open_array(fork.store, path="data", mode="r+")
    arr[start:stop] = np.arange(start, stop, dtype="i8") * 10
    return fork


@pytest.mark.slow
def test_forks_on_worker_processes(tmp_path: Path) -> None:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "repo"))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="data", shape=(400,), chunks=(25,), dtype="i8")
    session.commit("empty array")

    session = repo.writable_session("main")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        futures = [
            client.submit(_write_block, session.fork(), i, i + 100, pure=False)
            for i in range(0, 400, 100)
        ]
        forks = client.gather(futures)
    session.merge(*forks)
    assert session.status().updated_chunks == {"/data": [[i] for i in range(16)]}
    session.commit("distributed write")

    values = zarr.open_array(repo.readonly_session("main").store, path="data")[:]
    np.testing.assert_array_equal(values, np.arange(400) * 10)


def test_fork_requires_clean_session(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="w")
    with pytest.raises(ic.IcechunkError, match="uncommitted changes"):
        session.fork()


def test_merge_in_process(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(1,), dtype="i4")
    session.commit("a")
    session = repo.writable_session("main")
    left, right = session.fork(), session.fork()
    zarr.open_array(left.store, path="a")[0:2] = 7
    zarr.open_array(right.store, path="a")[2:4] = 9
    zarr.create_group(right.store, path="newgroup")
    session.merge(left, right)
    session.commit("merged")
    ro = repo.readonly_session("main")
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="a")[:], [7, 7, 9, 9])
    assert "newgroup" in zarr.open_group(ro.store, mode="r")
