"""A dask ``LocalCluster`` of worker processes writing to S3 through pickled forks of a
session; the workers resolve the credentials from their environment."""

from __future__ import annotations

import numpy as np
import pytest
import s3_servers
import zarr
from conftest import s3_at
from s3_servers import S3Server

import icechunk_lib as ic

distributed = pytest.importorskip("distributed")


def _write_block(fork: ic.Session, start: int, stop: int) -> ic.Session:
    arr = zarr.open_array(fork.store, path="data", mode="r+")
    arr[start:stop] = np.arange(start, stop, dtype="f8") * 10
    return fork


@pytest.mark.slow
def test_forks_on_worker_processes_write_to_s3(
    seaweedfs_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", s3_servers.ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3_servers.SECRET_KEY),
        ("AWS_DEFAULT_REGION", s3_servers.REGION),
    ):
        monkeypatch.setenv(name, value)
    prefix = seaweedfs_server.fresh_prefix()
    repo = ic.Repository.create(s3_at(seaweedfs_server, prefix))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="data", shape=(400,), chunks=(50,), dtype="f8", compressors=None
    )
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
    session.commit("distributed write")

    reader = ic.Repository.open(s3_at(seaweedfs_server, prefix))
    values = zarr.open_array(reader.readonly_session("main").store, path="data", mode="r")[:]
    np.testing.assert_array_equal(values, np.arange(400) * 10.0)
