"""Concurrency: racing writers, session isolation, concurrent writes into one session.

Everything runs against real backends: the ``storage`` fixture (conftest) gives memory and
local filesystem in turn. The multi-process races use "spawn" children running
``race_worker.commit_worker``, on a local disk and on each real S3 server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import s3_servers
import zarr
import zarr.api.asynchronous as zasync
from faulty_storage import Call, FaultyStorage
from race_worker import (
    ROW,
    SENTINEL,
    cell_value,
    commit_worker,
    message,
    row_value,
    write_commit,
)
from zarr.core.buffer import default_buffer_prototype

import icechunk_lib as ic
from icechunk_lib.storage import LocalFileSystemStorage

PROCS = 4
COMMITS = 25
TIMEOUT = 120
INITIAL = "Repository initialized"


def reopen(storage: ic.Storage) -> ic.Repository:
    """A new Repository object (and for local storage a new storage object) on the same data."""
    if isinstance(storage, LocalFileSystemStorage):
        return ic.Repository.open(ic.local_filesystem_storage(storage.url))
    return ic.Repository.open(storage)


def read(session: ic.Session, path: str) -> np.ndarray[Any, Any]:
    return zarr.open_array(session.store, path=path, mode="r")[...]


def make_repo(storage: ic.Storage, **arrays: dict[str, Any]) -> ic.Repository:
    """A repository with one "setup" commit creating ``arrays`` (name -> create_array kwargs)."""
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    for name, kwargs in arrays.items():
        kwargs = dict(kwargs)
        data = kwargs.pop("data", None)
        arr = root.create_array(name, **kwargs)
        if data is not None:
            arr[...] = data
    session.commit("setup")
    return repo


def history(repo: ic.Repository, branch: str = "main") -> list[ic.SnapshotInfo]:
    return list(repo.ancestry(branch=branch))


def assert_linear(repo: ic.Repository, entries: list[ic.SnapshotInfo]) -> None:
    """Parents chain the history; each snapshot's own header agrees with the ancestry."""
    assert len({e.id for e in entries}) == len(entries)
    for child, parent in itertools.pairwise(entries):
        assert child.parent_id == parent.id
    assert entries[-1].parent_id is None
    assert entries[-1].message == INITIAL
    for entry in entries:
        looked_up = repo.lookup_snapshot(entry.id)
        assert (looked_up.parent_id, looked_up.message) == (entry.parent_id, entry.message)


# --- racing writers in separate processes -----------------------------------------------------


def _setup_cells() -> np.ndarray[Any, Any]:
    """The "cells" array after the setup commit: fill value but for the sentinel chunk."""
    cells = np.full((PROCS + 1, COMMITS), -1, dtype="i8")
    cells[0, 0] = SENTINEL
    return cells


def _setup_rows() -> np.ndarray[Any, Any]:
    rows = np.full((PROCS + 1, COMMITS, ROW), -1, dtype="f8")
    rows[0, 0] = SENTINEL
    return rows


# One inline cell and one native chunk per commit (process p writes row p + 1).
RACE_CELLS: dict[str, dict[str, Any]] = {
    "cells": {
        "shape": (PROCS + 1, COMMITS),
        "chunks": (1, 1),
        "dtype": "i8",
        "fill_value": -1,
        "data": _setup_cells(),
    },
    "rows": {
        "shape": (PROCS + 1, COMMITS, ROW),
        "chunks": (1, 1, ROW),
        "dtype": "f8",
        "fill_value": -1,
        "compressors": None,
        "data": _setup_rows(),
    },
}


def _run_workers(
    storage: ic.Storage, mode: str, timeout: float
) -> list[tuple[int, list[str], int]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=commit_worker, args=(storage, p, COMMITS, mode, barrier, results))
        for p in range(PROCS)
    ]
    for proc in procs:
        proc.start()
    out: list[tuple[int, list[str] | None, Any]] = []
    reads = 0
    deadline = time.monotonic() + timeout
    try:
        # Read while they race: every tip a reader sees is a complete commit.
        reader = reopen(storage)
        while len(out) < PROCS:
            assert time.monotonic() < deadline, "the workers did not finish"
            try:
                out.append(results.get(timeout=0.05))
            except queue.Empty:
                _check_tip(reader)
                reads += 1
    finally:
        for proc in procs:
            proc.join(TIMEOUT)
            if proc.is_alive():
                proc.kill()
    errors = [tb for _, landed, tb in out if landed is None]
    assert not errors, "\n".join(errors)
    assert [proc.exitcode for proc in procs] == [0] * PROCS
    assert reads > 0
    return sorted(out)  # type: ignore[arg-type]


def _check_tip(repo: ic.Repository) -> None:
    """The tip holds exactly the cells written by the commits in its history."""
    session = repo.readonly_session("main")
    want = _setup_cells()
    for entry in repo.ancestry(snapshot_id=session.snapshot_id):
        if entry.message.startswith("proc "):
            proc, commit = (int(w) for w in entry.message.split()[1::2])
            want[proc + 1, commit] = cell_value(proc, commit)
    np.testing.assert_array_equal(read(session, "cells"), want)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shared_location", "mode"),
    [
        ("local", "reopen"),
        ("local", "rebase"),
        *((server, "rebase") for server in s3_servers.SERVER_KINDS),
    ],
    indirect=["shared_location"],
)
def test_racing_processes_land_every_commit_exactly_once(
    shared_location: Callable[[], tuple[str, ic.Storage]], mode: str
) -> None:
    """4 processes x 25 commits on main, on a local disk and on each S3 server: no commit
    lost or duplicated, history linear. The workers get the storage pickled."""
    url, storage = shared_location()
    make_repo(storage, **RACE_CELLS)
    results = _run_workers(storage, mode, TIMEOUT * (1 if "://" not in url else 4))

    repo = reopen(storage)
    entries = history(repo)
    expected = {message(p, i) for p in range(PROCS) for i in range(COMMITS)}
    counts = Counter(e.message for e in entries)
    assert set(counts) == expected | {"setup", INITIAL}
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert len(entries) == PROCS * COMMITS + 2
    assert_linear(repo, entries)
    # Every id a worker was handed back is in the history, under the message it committed.
    by_id = {e.id: e.message for e in entries}
    for proc, landed, _ in results:
        assert [by_id.get(sid) for sid in landed] == [message(proc, i) for i in range(COMMITS)]
    assert sum(conflicts for _, _, conflicts in results) > 0, "the writers never raced"

    # No lost update at any point: each snapshot holds exactly its own and its ancestors' writes.
    want = _setup_cells()
    for entry in reversed(entries[:-2]):
        proc, commit = (int(w) for w in entry.message.split()[1::2])
        want[proc + 1, commit] = cell_value(proc, commit)
        got = read(repo.readonly_session(snapshot_id=entry.id), "cells")
        np.testing.assert_array_equal(got, want, err_msg=entry.message)
    np.testing.assert_array_equal(read(repo.readonly_session("main"), "cells"), want)
    rows = read(repo.readonly_session("main"), "rows")
    want_rows = _setup_rows()
    for p in range(PROCS):
        for i in range(COMMITS):
            want_rows[p + 1, i] = row_value(p, i)
    np.testing.assert_array_equal(rows, want_rows)


def test_racing_threads_land_every_commit_exactly_once(storage: ic.Storage) -> None:
    """The same invariant in one process: 6 threads x 8 commits sharing one Repository."""
    threads, commits = 6, 8
    repo = make_repo(storage, **RACE_CELLS)
    barrier = threading.Barrier(threads)

    def worker(t: int) -> list[str]:
        proc, offset = divmod(t, 2)
        barrier.wait()
        landed = []
        for i in range(commits):
            commit = offset * commits + i
            session = repo.writable_session("main")
            write_commit(session, proc, commit)
            landed.append(session.commit(message(proc, commit), rebase_with=ic.ConflictDetector()))
        return landed

    with ThreadPoolExecutor(threads) as pool:
        landed = list(pool.map(worker, range(threads)))
    entries = history(repo)
    assert len(entries) == threads * commits + 2
    assert_linear(repo, entries)
    assert sorted(sid for ids in landed for sid in ids) == sorted(e.id for e in entries[:-2])
    tip = repo.readonly_session("main")
    cells, rows = read(tip, "cells"), read(tip, "rows")
    for t in range(threads):
        proc, offset = divmod(t, 2)
        for i in range(commits):
            commit = offset * commits + i
            assert cells[proc + 1, commit] == cell_value(proc, commit)
            np.testing.assert_array_equal(rows[proc + 1, commit], row_value(proc, commit))


def test_commit_when_manifest_bounds_are_not_componentwise(storage: ic.Storage) -> None:
    """A piece's first/last chunks are lexicographic bounds, not per-dimension ones.

    Found by the racing writers: whichever order commits land in, the next one must work.
    """
    repo = make_repo(
        storage, a={"shape": (4, 25), "chunks": (1, 1), "dtype": "i8", "fill_value": -1}
    )
    for index in [(0, 8), (2, 0), (0, 0)]:  # the last commit's manifest starts at (0, 8)
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[index] = 1
        session.commit(f"write {index}")
    want = np.full((4, 25), -1)
    want[0, 8] = want[2, 0] = want[0, 0] = 1
    np.testing.assert_array_equal(read(repo.readonly_session("main"), "a"), want)


# --- isolation ---------------------------------------------------------------------------------

ISOLATION_ARRAYS: dict[str, dict[str, Any]] = {
    "a": {"shape": (8,), "chunks": (2,), "dtype": "i4", "fill_value": 0, "data": np.arange(8)},
    "big": {
        "shape": (4, 100),
        "chunks": (1, 100),
        "dtype": "f8",
        "fill_value": 0,
        "compressors": None,
        "data": np.ones((4, 100)),
    },
}


def _write_uncommitted(session: ic.Session) -> None:
    root = zarr.open_group(session.store, mode="r+")
    root["a"][:] = 100 + np.arange(8)
    root["big"][1] = 7.0
    root.create_array("new", shape=(3,), chunks=(3,), dtype="i4", fill_value=5)
    root.attrs["who"] = "writer"


def _assert_old(session: ic.Session) -> None:
    root = zarr.open_group(session.store, mode="r")
    np.testing.assert_array_equal(root["a"][:], np.arange(8))
    np.testing.assert_array_equal(root["big"][:], np.ones((4, 100)))
    assert "new" not in root
    assert "who" not in root.attrs


def _assert_new(session: ic.Session) -> None:
    root = zarr.open_group(session.store, mode="r")
    np.testing.assert_array_equal(root["a"][:], 100 + np.arange(8))
    np.testing.assert_array_equal(root["big"][1], np.full(100, 7.0))
    np.testing.assert_array_equal(root["big"][2], np.ones(100))
    np.testing.assert_array_equal(root["new"][:], [5, 5, 5])
    assert root.attrs["who"] == "writer"


def test_uncommitted_writes_are_invisible_until_commit(storage: ic.Storage) -> None:
    repo = make_repo(storage, **ISOLATION_ARRAYS)
    base = repo.lookup_branch("main")
    old_history = history(repo)
    before_ro = repo.readonly_session("main")
    before_rw = repo.writable_session("main")
    pinned = repo.readonly_session(snapshot_id=base)

    writer = repo.writable_session("main")
    _write_uncommitted(writer)
    _assert_new(writer)  # a session reads its own writes
    assert writer.has_uncommitted_changes

    for session in (
        before_ro,
        before_rw,
        pinned,
        repo.readonly_session("main"),
        repo.writable_session("main"),
        reopen(storage).readonly_session("main"),
        reopen(storage).writable_session("main"),
    ):
        _assert_old(session)
    assert reopen(storage).lookup_branch("main") == base
    assert history(reopen(storage)) == old_history

    new_id = writer.commit("write")
    assert writer.snapshot_id == new_id
    assert repo.lookup_branch("main") == new_id
    _assert_new(writer)
    for session in (
        repo.readonly_session("main"),
        repo.writable_session("main"),
        reopen(storage).readonly_session("main"),
        reopen(storage).readonly_session(snapshot_id=new_id),
    ):
        _assert_new(session)
    # Sessions opened earlier stay at the snapshot they started from.
    for session in (before_ro, before_rw, pinned):
        assert session.snapshot_id == base
        _assert_old(session)
    # ... and a writer opened earlier cannot commit over the new snapshot unnoticed.
    zarr.open_array(before_rw.store, path="a", mode="r+")[0] = -1
    with pytest.raises(ic.ConflictError) as info:
        before_rw.commit("stale")
    assert (info.value.expected_parent, info.value.actual_parent) == (base, new_id)


def test_readers_never_block_on_a_busy_writer(storage: ic.Storage) -> None:
    """Readers read while other threads keep writing uncommitted changes into a session."""
    repo = make_repo(storage, **ISOLATION_ARRAYS)
    writer = repo.writable_session("main")
    stop = threading.Event()

    def write_forever() -> int:
        arr = zarr.open_array(writer.store, path="a", mode="r+")
        n = 0
        while not stop.is_set():
            arr[:] = 100 + np.arange(8) + n
            n += 1
        return n

    with ThreadPoolExecutor(6) as pool:
        writers = [pool.submit(write_forever) for _ in range(2)]
        try:
            for _ in range(10):
                reads = [
                    pool.submit(_assert_old, make())
                    for make in (
                        lambda: repo.readonly_session("main"),
                        lambda: reopen(storage).readonly_session("main"),
                        lambda: repo.writable_session("main"),
                    )
                ]
                for future in reads:
                    future.result(timeout=30)
        finally:
            stop.set()
        assert all(w.result(timeout=30) > 0 for w in writers)
    assert writer.has_uncommitted_changes


def test_readers_see_nothing_of_a_commit_in_progress(storage: ic.Storage) -> None:
    """Pause a commit at each of its storage calls: readers go on and see the old snapshot."""
    repo = make_repo(storage, **ISOLATION_ARRAYS)
    base = repo.lookup_branch("main")
    faulty = FaultyStorage(storage)
    probe = ic.Repository.open(faulty).writable_session("main")
    _write_uncommitted(probe)
    faulty.reset()
    probe.commit("probe")
    calls = faulty.count
    assert calls >= 5
    repo.reset_branch("main", base)

    for index in range(calls):
        # A fresh Repository each time: cold caches make every commit do the same calls.
        session = ic.Repository.open(faulty).writable_session("main")
        _write_uncommitted(session)
        paused, resume = threading.Event(), threading.Event()

        def pause(
            call: Call, paused: threading.Event = paused, resume: threading.Event = resume
        ) -> None:
            paused.set()
            assert resume.wait(30)

        faulty.arm(index, on_fault=pause)
        # The writer runs on its own event loop so pausing it stalls nothing else.
        with ThreadPoolExecutor(1) as pool:
            commit = pool.submit(asyncio.run, session.commit_async(f"paused at {index}"))
            assert paused.wait(30)
            try:
                assert repo.lookup_branch("main") == base
                _assert_old(repo.readonly_session("main"))
                _assert_old(reopen(storage).readonly_session("main"))
            finally:
                resume.set()
            new_id = commit.result(timeout=30)
        faulty.disarm()
        assert repo.lookup_branch("main") == new_id
        _assert_new(reopen(storage).readonly_session("main"))
        repo.reset_branch("main", base)


# --- concurrent writes into one session ----------------------------------------------------


def test_threads_write_disjoint_regions_of_one_session(storage: ic.Storage) -> None:
    threads = 8
    repo = make_repo(
        storage,
        small={"shape": (16, 64), "chunks": (2, 8), "dtype": "i4", "fill_value": -1},
        big={
            "shape": (16, 512),
            "chunks": (2, 64),
            "dtype": "f8",
            "fill_value": -1,
            "compressors": None,
        },
    )
    session = repo.writable_session("main")
    barrier = threading.Barrier(threads)
    small_want = np.arange(16 * 64, dtype="i4").reshape(16, 64)
    big_want = np.arange(16 * 512, dtype="f8").reshape(16, 512) / 7

    def worker(t: int) -> None:
        store = session.store
        small = zarr.open_array(store, path="small", mode="r+")
        big = zarr.open_array(store, path="big", mode="r+")
        rows = slice(2 * t, 2 * t + 2)
        barrier.wait()
        own = zarr.create_array(store, name=f"own{t}", shape=(4, 4), chunks=(2, 2), dtype="i4")
        for col in range(0, 64, 8):
            small[rows, col : col + 8] = small_want[rows, col : col + 8]
        for col in range(0, 512, 64):
            big[rows, col : col + 64] = big_want[rows, col : col + 64]
        own[...] = t

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    # Written through the session, visible in it before the commit.
    np.testing.assert_array_equal(read(session, "small"), small_want)
    new_id = session.commit("threads")

    tip = reopen(storage).readonly_session("main")
    assert tip.snapshot_id == new_id
    np.testing.assert_array_equal(read(tip, "small"), small_want)
    np.testing.assert_array_equal(read(tip, "big"), big_want)
    for t in range(threads):
        np.testing.assert_array_equal(read(tip, f"own{t}"), np.full((4, 4), t))


async def test_asyncio_tasks_set_keys_concurrently(storage: ic.Storage) -> None:
    repo = await ic.Repository.create_async(storage)
    session = await repo.writable_session_async("main")
    store = session.store
    await zasync.group(store=store)
    await zasync.create_array(
        store,
        name="small",
        shape=(32, 32),
        chunks=(4, 4),
        dtype="<i8",
        fill_value=0,
        compressors=None,
    )
    await zasync.create_array(
        store,
        name="big",
        shape=(8, 8, 128),
        chunks=(1, 1, 128),
        dtype="<f8",
        fill_value=0,
        compressors=None,
    )
    proto = default_buffer_prototype()
    small = {(i, j): np.full((4, 4), 100 * i + j, dtype="<i8") for i in range(8) for j in range(8)}
    big = {(i, j): np.arange(128, dtype="<f8") + 1000 * i + j for i in range(8) for j in range(8)}

    async def put(key: str, value: np.ndarray[Any, Any]) -> None:
        await asyncio.sleep(0)
        await store.set(key, proto.buffer.from_bytes(value.tobytes()))
        got = await store.get(key, proto)
        assert got is not None and got.to_bytes() == value.tobytes()

    await asyncio.gather(
        *(put(f"small/c/{i}/{j}", v) for (i, j), v in small.items()),
        *(put(f"big/c/{i}/{j}/0", v) for (i, j), v in big.items()),
        # zarr's own concurrent chunk writes, through the same session at the same time
        zasync.create_array(
            store, name="viazarr", data=np.arange(4096).reshape(64, 64), chunks=(8, 8)
        ),
    )
    new_id = await session.commit_async("tasks")

    reader = await repo.readonly_session_async(snapshot_id=new_id)
    rstore = reader.store
    got_small = await (await zasync.open_array(store=rstore, path="small", mode="r")).getitem(...)
    got_big = await (await zasync.open_array(store=rstore, path="big", mode="r")).getitem(...)
    got_zarr = await (await zasync.open_array(store=rstore, path="viazarr", mode="r")).getitem(...)
    for (i, j), v in small.items():
        np.testing.assert_array_equal(got_small[4 * i : 4 * i + 4, 4 * j : 4 * j + 4], v)
    for (i, j), v in big.items():
        np.testing.assert_array_equal(got_big[i, j], v)
    np.testing.assert_array_equal(got_zarr, np.arange(4096).reshape(64, 64))


def test_write_racing_a_commit_is_committed_or_rejected(storage: ic.Storage) -> None:
    """A write into a session that is committing must land in the commit or raise.

    The commit is paused just before it writes its snapshot (its manifests are written);
    another thread then writes a chunk through the same session.
    """
    repo = make_repo(storage, **ISOLATION_ARRAYS)
    faulty = FaultyStorage(storage)
    session = ic.Repository.open(faulty).writable_session("main")
    big = zarr.open_array(session.store, path="big", mode="r+")
    big[0] = 10.0
    paused, resume = threading.Event(), threading.Event()

    def pause(call: Call) -> None:
        paused.set()
        assert resume.wait(30)

    faulty.arm(0, on_fault=pause, match=lambda call: call.key.startswith("snapshots/"))
    with ThreadPoolExecutor(2) as pool:
        commit = pool.submit(asyncio.run, session.commit_async("commit"))
        assert paused.wait(30)
        write = pool.submit(big.__setitem__, 3, 30.0)
        with contextlib.suppress(TimeoutError):
            write.exception(timeout=1)  # may block until the commit ends: that is fine
        resume.set()
        new_id = commit.result(timeout=30)
        error = write.exception(timeout=30)
    faulty.disarm()

    committed = read(repo.readonly_session(snapshot_id=new_id), "big")
    assert committed[0, 0] == 10.0
    if error is None:
        assert committed[3, 0] == 30.0, "the write returned normally but was not committed"
    else:
        # Rejected: either as "commit in progress" or, once it ended, as read-only.
        assert isinstance(error, ic.IcechunkError)
        assert "commit of this session is in progress" in str(error) or isinstance(
            error, ic.ReadOnlySessionError
        )
    assert not session.has_uncommitted_changes
    assert session.read_only


def test_status_while_another_event_loop_writes() -> None:
    """``status()`` from one thread while tasks on another thread's loop write chunks."""
    repo = make_repo(
        ic.in_memory_storage(),
        a={"shape": (1000, 1000), "chunks": (1, 1), "dtype": "i1", "fill_value": 0},
    )
    session = repo.writable_session("main")
    store = session.store
    one = default_buffer_prototype().buffer.from_bytes(b"\x01")
    stop, started = threading.Event(), threading.Event()

    async def write_rows() -> int:
        rows = 0
        while not stop.is_set() and rows < 1000:
            await asyncio.gather(*(store.set(f"a/c/{rows}/{j}", one) for j in range(1000)))
            rows += 1
            started.set()
        return rows

    with ThreadPoolExecutor(1) as pool:
        writer = pool.submit(asyncio.run, write_rows())
        try:
            assert started.wait(30)
            deadline = time.monotonic() + 3
            while not writer.done() and time.monotonic() < deadline:
                session.status()
        finally:
            stop.set()
        rows = writer.result(timeout=60)
    assert len(session.status().updated_chunks["/a"]) == rows * 1000


def test_dask_threaded_writes_into_one_session(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.group(store=session.store)
    data = np.arange(96 * 80, dtype="f8").reshape(96, 80)
    x = da.from_array(data, chunks=(8, 16))
    with dask.config.set(scheduler="threads", num_workers=8):
        da.to_zarr(x, session.store, component="via_to_zarr", compute=True)
        target = zarr.create_array(
            session.store,
            name="via_store",
            shape=x.shape,
            chunks=(8, 16),
            dtype="f8",
            compressors=None,
        )
        da.store(x * 2, target, lock=False)
    new_id = session.commit("dask")
    tip = reopen(storage).readonly_session(snapshot_id=new_id)
    np.testing.assert_array_equal(read(tip, "via_to_zarr"), data)
    np.testing.assert_array_equal(read(tip, "via_store"), data * 2)


# --- two sessions racing to commit -------------------------------------------------------------

RACE_ARRAYS: dict[str, dict[str, Any]] = {
    "a": {"shape": (8,), "chunks": (2,), "dtype": "i4", "fill_value": 0, "data": np.zeros(8)},
}


def _commit_in_thread(style: str) -> Callable[[ic.Session, str], str]:
    if style == "sync":
        return lambda session, msg: session.commit(msg)
    # own event loop per thread: the two commits really run in parallel
    return lambda session, msg: asyncio.run(session.commit_async(msg))


def _race(sessions: list[ic.Session], style: str) -> list[str | BaseException]:
    commit = _commit_in_thread(style)
    barrier = threading.Barrier(len(sessions))

    def run(i: int) -> str | BaseException:
        barrier.wait()
        try:
            return commit(sessions[i], f"racer {i}")
        except ic.ConflictError as exc:
            return exc

    with ThreadPoolExecutor(len(sessions)) as pool:
        return list(pool.map(run, range(len(sessions))))


@pytest.mark.parametrize("style", ["sync", "own_loop"])
def test_two_sessions_race_one_wins_loser_rebases(storage: ic.Storage, style: str) -> None:
    repo = make_repo(storage, **RACE_ARRAYS)
    for rnd in range(8):
        base = repo.lookup_branch("main")
        s0, s1 = repo.writable_session("main"), repo.writable_session("main")
        zarr.open_array(s0.store, path="a", mode="r+")[0:2] = rnd * 10 + 1
        zarr.open_array(s1.store, path="a", mode="r+")[2:4] = rnd * 10 + 2
        outcome = _race([s0, s1], style)
        won = [i for i, r in enumerate(outcome) if isinstance(r, str)]
        assert len(won) == 1, outcome
        winner, loser = won[0], 1 - won[0]
        winner_id, error = outcome[winner], outcome[loser]
        assert isinstance(winner_id, str) and isinstance(error, ic.ConflictError)
        assert error.branch == "main"
        assert error.expected_parent == base
        assert error.actual_parent == winner_id
        assert repo.lookup_branch("main") == winner_id
        assert repo.lookup_snapshot(winner_id).parent_id == base

        losing = (s0, s1)[loser]
        assert losing.has_uncommitted_changes
        losing.rebase(ic.ConflictDetector())
        assert losing.snapshot_id == winner_id
        loser_id = losing.commit(f"racer {loser} again")
        assert repo.lookup_snapshot(loser_id).parent_id == winner_id
        got = read(repo.readonly_session("main"), "a")
        np.testing.assert_array_equal(got[0:2], rnd * 10 + 1)
        np.testing.assert_array_equal(got[2:4], rnd * 10 + 2)
    entries = history(repo)
    assert len(entries) == 2 + 2 * 8
    assert_linear(repo, entries)


def _overlapping(repo: ic.Repository) -> tuple[ic.Session, str]:
    """Theirs writes chunk 0 and commits; ours writes chunks 0 and 1 from the same base."""
    theirs, ours = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="a", mode="r+")[0:2] = 1
    ours_arr = zarr.open_array(ours.store, path="a", mode="r+")
    ours_arr[0:2] = 2
    ours_arr[2:4] = 22
    theirs_id = theirs.commit("theirs")
    return ours, theirs_id


def test_overlapping_chunks_fail_conflict_detector(storage: ic.Storage) -> None:
    repo = make_repo(storage, **RACE_ARRAYS)
    base = repo.lookup_branch("main")
    ours, theirs_id = _overlapping(repo)
    with pytest.raises(ic.ConflictError) as info:
        ours.commit("ours")
    assert (info.value.expected_parent, info.value.actual_parent) == (base, theirs_id)
    with pytest.raises(ic.RebaseFailedError) as failed:
        ours.rebase(ic.ConflictDetector())
    [conflict] = failed.value.conflicts
    assert conflict.conflict_type is ic.ConflictType.ChunkDoubleUpdate
    assert conflict.path == "/a"
    assert conflict.conflicted_chunks == [[0]]
    with pytest.raises(ic.RebaseFailedError):
        ours.commit("ours", rebase_with=ic.ConflictDetector())
    assert repo.lookup_branch("main") == theirs_id
    # The failed rebase left the session intact: a solver can still resolve it.
    ours.rebase(ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseOurs))
    ours.commit("ours")
    np.testing.assert_array_equal(read(repo.readonly_session("main"), "a")[:4], [2, 2, 22, 22])


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (ic.VersionSelection.UseOurs, [2, 2, 22, 22]),
        (ic.VersionSelection.UseTheirs, [1, 1, 22, 22]),
    ],
)
@pytest.mark.parametrize("how", ["rebase", "commit"])
def test_basic_conflict_solver_picks_a_side(
    storage: ic.Storage, selection: ic.VersionSelection, expected: list[int], how: str
) -> None:
    repo = make_repo(storage, **RACE_ARRAYS)
    ours, theirs_id = _overlapping(repo)
    solver = ic.BasicConflictSolver(on_chunk_conflict=selection)
    if how == "rebase":
        with pytest.raises(ic.ConflictError):
            ours.commit("ours")
        ours.rebase(solver)
        assert ours.snapshot_id == theirs_id
        ours_id = ours.commit("ours")
    else:
        ours_id = ours.commit("ours", rebase_with=solver)
    assert repo.lookup_snapshot(ours_id).parent_id == theirs_id
    got = read(reopen(repo.storage).readonly_session("main"), "a")
    np.testing.assert_array_equal(got, [*expected, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        read(repo.readonly_session(snapshot_id=theirs_id), "a")[:4], [1, 1, 0, 0]
    )


# --- rebasing other kinds of changes -------------------------------------------------------

Change = Callable[[zarr.Group], None]

PAIR_ARRAYS: dict[str, dict[str, Any]] = {
    "a": {"shape": (8,), "chunks": (2,), "dtype": "i4", "fill_value": 0, "data": np.arange(8)},
    "b": {"shape": (4,), "chunks": (2,), "dtype": "i4", "fill_value": 0, "data": np.arange(4)},
}


def _set(path: str, where: slice, value: int) -> Change:
    def run(root: zarr.Group) -> None:
        arr = root[path]
        assert isinstance(arr, zarr.Array)
        arr[where] = value

    return run


def _attrs(path: str, **attrs: Any) -> Change:
    return lambda root: root[path].attrs.update(attrs)


def _new_array(path: str, value: int) -> Change:
    return lambda root: root.create_array(
        path, shape=(2,), chunks=(2,), dtype="i4", fill_value=value
    ).__setitem__(slice(None), value)


def _delete(path: str) -> Change:
    return lambda root: root.__delitem__(path)


def _apply_pair(
    storage: ic.Storage, theirs: Change, ours: Change
) -> tuple[ic.Repository, ic.Session]:
    """Both sessions start from the same commit; theirs lands first."""
    repo = make_repo(storage, **PAIR_ARRAYS)
    their_session, our_session = repo.writable_session("main"), repo.writable_session("main")
    theirs(zarr.open_group(their_session.store, mode="r+"))
    ours(zarr.open_group(our_session.store, mode="r+"))
    their_session.commit("theirs")
    with pytest.raises(ic.ConflictError):
        our_session.commit("ours")
    return repo, our_session


@pytest.mark.parametrize(
    ("theirs", "ours", "check"),
    [
        pytest.param(
            _attrs("a", units="m"),
            _set("a", slice(0, 2), 9),
            lambda root: root["a"].attrs["units"] == "m" and list(root["a"][:2]) == [9, 9],
            id="attrs-vs-chunks",
        ),
        pytest.param(
            _set("a", slice(0, 2), 9),
            _attrs("a", units="m"),
            lambda root: root["a"].attrs["units"] == "m" and list(root["a"][:2]) == [9, 9],
            id="chunks-vs-attrs",
        ),
        pytest.param(
            _new_array("x", 1),
            _new_array("y", 2),
            lambda root: list(root["x"][:]) == [1, 1] and list(root["y"][:]) == [2, 2],
            id="new-vs-new",
        ),
        pytest.param(
            _delete("b"),
            _set("a", slice(6, 8), 5),
            lambda root: "b" not in root and list(root["a"][6:]) == [5, 5],
            id="delete-vs-chunks-elsewhere",
        ),
        pytest.param(
            _set("a", slice(0, 2), 9),
            _set("b", slice(0, 4), 4),
            lambda root: list(root["a"][:2]) == [9, 9] and list(root["b"][:]) == [4] * 4,
            id="chunks-vs-chunks-elsewhere",
        ),
    ],
)
def test_independent_changes_rebase_and_both_survive(
    storage: ic.Storage, theirs: Change, ours: Change, check: Callable[[zarr.Group], bool]
) -> None:
    repo, session = _apply_pair(storage, theirs, ours)
    session.rebase(ic.ConflictDetector())
    session.commit("ours")
    root = zarr.open_group(reopen(storage).readonly_session("main").store, mode="r")
    assert check(root)
    assert [e.message for e in history(repo)][:2] == ["ours", "theirs"]


@pytest.mark.parametrize(
    ("theirs", "ours", "conflict"),
    [
        pytest.param(
            _new_array("x", 1),
            _new_array("x", 2),
            ic.ConflictType.NewNodeConflictsWithExistingNode,
            id="same-new-path",
        ),
        pytest.param(
            _delete("b"),
            _set("b", slice(0, 2), 9),
            ic.ConflictType.ChunksUpdatedInDeletedArray,
            id="chunks-of-deleted",
        ),
        pytest.param(
            _attrs("a", units="m"),
            _attrs("a", units="km"),
            ic.ConflictType.ZarrMetadataDoubleUpdate,
            id="metadata-twice",
        ),
        pytest.param(
            _set("a", slice(0, 2), 9),
            _delete("a"),
            ic.ConflictType.DeleteOfUpdatedArray,
            id="delete-of-updated",
        ),
    ],
)
def test_conflicting_changes_fail_the_detector(
    storage: ic.Storage, theirs: Change, ours: Change, conflict: ic.ConflictType
) -> None:
    repo, session = _apply_pair(storage, theirs, ours)
    tip = repo.lookup_branch("main")
    with pytest.raises(ic.RebaseFailedError) as info:
        session.rebase(ic.ConflictDetector())
    assert conflict in {c.conflict_type for c in info.value.conflicts}
    assert repo.lookup_branch("main") == tip
