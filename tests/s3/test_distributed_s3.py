"""A dask ``LocalCluster`` of worker processes writing to S3 through pickled forks of one
session, the coordinator merging and committing, then reading the commit back through the
cluster; the workers resolve the credentials from their environment. And a process forked
(``os.fork``, as multiprocessing's default start method does on Linux) from one that used
the storage: both keep working.

Every wait has a deadline and an alarm interrupts the test after ``DEADLINE`` seconds (with
every thread's stack on stderr), so a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import faulthandler
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import numpy as np
import pytest
import s3_servers
import zarr
from s3_servers import S3Server, s3_at

import icechunk_lib as ic

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

DEADLINE = 180
"""Seconds the whole test may take (a cluster starts in a few)."""
WAIT = 90
"""Seconds any one wait on the cluster may take."""
SHAPE = (8, 400)
ZARR_CHUNKS = (2, 100)
DASK_CHUNKS = (4, 200)
"""Four blocks of four zarr chunks each: two blocks, eight chunks, per worker."""


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Raise ``TimeoutError`` in the test after ``seconds``, every stack dumped first."""

    def expire(signum: int, frame: FrameType | None) -> None:
        faulthandler.dump_traceback(sys.stderr, all_threads=True)
        raise TimeoutError(f"the distributed S3 test took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _cluster() -> Iterator[distributed.Client]:
    """Two worker processes of one thread each, closed (with a deadline) in any case."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit="512MiB",
        timeout=WAIT,
    )
    try:
        client = distributed.Client(cluster, timeout=WAIT)
        try:
            yield client
        finally:
            client.close(timeout=WAIT)
    finally:
        cluster.close(timeout=WAIT)


def _write_block(fork: ic.Session, block: np.ndarray, row: int, col: int) -> ic.Session:  # type: ignore[type-arg]
    arr = zarr.open_array(fork.store, path="data", mode="r+")
    arr[row : row + block.shape[0], col : col + block.shape[1]] = block
    return fork


@pytest.fixture
def s3_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test keys in the environment, which the spawned workers inherit."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", s3_servers.ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3_servers.SECRET_KEY),
        ("AWS_DEFAULT_REGION", s3_servers.REGION),
    ):
        monkeypatch.setenv(name, value)


@pytest.mark.slow
@pytest.mark.usefixtures("s3_environment")
def test_worker_processes_write_and_read_s3(seaweedfs_server: S3Server) -> None:
    source = np.arange(np.prod(SHAPE), dtype="f8").reshape(SHAPE) * 0.5
    prefix = seaweedfs_server.fresh_prefix()
    repo = ic.Repository.create(s3_at(seaweedfs_server, prefix))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="data", shape=SHAPE, chunks=ZARR_CHUNKS, dtype="f8", fill_value=-1
    )
    session.commit("empty array")

    with _deadline(DEADLINE), _cluster() as client:
        session = repo.writable_session("main")
        data = da.from_array(source, chunks=DASK_CHUNKS)
        blocks = data.to_delayed()
        writes = [
            dask.delayed(_write_block)(
                session.fork(), blocks[i, j], i * DASK_CHUNKS[0], j * DASK_CHUNKS[1]
            )
            for i in range(blocks.shape[0])
            for j in range(blocks.shape[1])
        ]
        forks = [future.result(timeout=WAIT) for future in client.compute(writes)]
        assert len(forks) == 4
        session.merge(*forks)
        assert len(session.status().updated_chunks["/data"]) == 16
        snapshot = session.commit("distributed write")

        reader = ic.Repository.open(s3_at(seaweedfs_server, prefix))
        assert reader.lookup_branch("main") == snapshot
        store = reader.readonly_session("main").store
        local = zarr.open_array(store, path="data", mode="r")[:]
        np.testing.assert_array_equal(local, source)

        remote = da.from_zarr(zarr.open_array(store, path="data", mode="r"))
        assert remote.numblocks == (4, 4)
        total = client.compute(remote.sum()).result(timeout=WAIT)
        values = client.compute(remote).result(timeout=WAIT)
    np.testing.assert_array_equal(values, source)
    assert total == source.sum()


FORKED = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np, zarr
    import icechunk_lib as ic

    endpoint, bucket, prefix = sys.argv[1:4]
    storage = ic.s3_storage(
        bucket=bucket, prefix=prefix, endpoint_url=endpoint, allow_http=True,
        force_path_style=True, network_stream_timeout_seconds=20,
    )
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(8,), chunks=(2,), dtype="i4")[:] = 1
    session.commit("parent")  # the parent's client now keeps connections open
    pid = os.fork()
    if pid == 0:
        import faulthandler
        faulthandler.dump_traceback_later(60, exit=True)
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a")[:] = 2
        session.commit("child")
        sys.exit(0)  # a normal exit: what the child leaves behind is collected
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    start = time.monotonic()
    values = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")[:]
    print("parent read", values.tolist(), "in", time.monotonic() - start, flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.usefixtures("s3_environment")
def test_a_forked_child_uses_the_storage_and_the_parent_still_does(
    seaweedfs_server: S3Server,
) -> None:
    """The child makes connections of its own and leaves the parent's alone: closing its
    copies of them used to unregister the parent's sockets from the epoll instance both
    share, and the parent's next request waited for its read timeout."""
    args = [seaweedfs_server.endpoint_url, s3_servers.BUCKET, seaweedfs_server.fresh_prefix()]
    result = subprocess.run(
        [sys.executable, "-c", FORKED, *args], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    child, parent = result.stdout.splitlines()
    assert child == "child exit 0", result.stderr
    read, seconds = parent.split(" in ")
    assert read == "parent read [2, 2, 2, 2, 2, 2, 2, 2]"
    assert float(seconds) < 10, result.stderr  # far below the 20 s read timeout
    assert "Unclosed" not in result.stderr
