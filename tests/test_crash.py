"""Crash safety: a commit that fails or dies at any point leaves the previous commit intact.

In-process, ``FaultyStorage`` fails the N-th storage call of a commit for every N; across
processes, ``crash_worker.py`` is SIGKILLed at random moments and at every storage call of a
commit (the latter on a local disk and on SeaweedFS). Afterwards the repository, opened
through the plain storage, must read exactly as it did at its last commit, and accept new
commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import zarr
from crash_worker import commit_message, commit_value, create_repo, write_value
from faulty_storage import FaultyStorage, InjectedFaultError

import icechunk_lib as ic
from icechunk_lib.storage import LocalFileSystemStorage

WORKER = str(Path(__file__).with_name("crash_worker.py"))
TIMEOUT = 60

# Small manifests so the commit reads and writes several of them.
CONFIG = ic.RepositoryConfig(manifest=ic.ManifestConfig(max_refs_per_manifest=4))


# --- the repository state a crashing commit must preserve ----------------------------------


@dataclass
class State:
    """What a reader can observe of a repository at the tip of main."""

    tip: str
    history: list[ic.SnapshotInfo]
    refs: dict[str, bytes]
    arrays: dict[str, np.ndarray[Any, Any]]
    attrs: dict[str, dict[str, Any]]


def _objects(storage: ic.Storage, prefix: str) -> dict[str, bytes]:
    async def collect() -> dict[str, bytes]:
        keys = [info.key async for info in storage.list(prefix)]
        return {key: await storage.get(key) for key in sorted(keys)}

    return asyncio.run(collect())


def observe(storage: ic.Storage, snapshot_id: str | None = None) -> State:
    repo = ic.Repository.open(storage)
    tip = repo.lookup_branch("main")
    session = repo.readonly_session(snapshot_id=snapshot_id or tip)
    root = zarr.open_group(session.store, mode="r")
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    attrs: dict[str, dict[str, Any]] = {"/": dict(root.attrs)}
    for path, node in root.members(max_depth=None):
        attrs[path] = dict(node.attrs)
        if isinstance(node, zarr.Array):
            arrays[path] = node[...]
    return State(
        tip=tip,
        history=list(repo.ancestry(branch="main")),
        refs=_objects(storage, "refs/"),
        arrays=arrays,
        attrs=attrs,
    )


def assert_same(got: State, want: State) -> None:
    assert got.tip == want.tip
    assert got.history == want.history
    assert got.refs == want.refs
    assert sorted(got.arrays) == sorted(want.arrays)
    for path, data in want.arrays.items():
        np.testing.assert_array_equal(got.arrays[path], data, err_msg=path)
    assert got.attrs == want.attrs


def assert_same_data(got: State, want: State) -> None:
    assert sorted(got.arrays) == sorted(want.arrays)
    for path, data in want.arrays.items():
        np.testing.assert_array_equal(got.arrays[path], data, err_msg=path)
    assert got.attrs == want.attrs


# --- the commit under test -----------------------------------------------------------------


def setup_repo(storage: ic.Storage) -> ic.Repository:
    """Two commits: arrays with inline and native chunks, a group, attributes."""
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    root.create_array("inline", shape=(10,), chunks=(2,), dtype="i4", fill_value=0)[:] = np.arange(
        10
    )
    native = root.create_array(
        "native", shape=(6, 100), chunks=(1, 100), dtype="f8", fill_value=0, compressors=None
    )
    native[:] = np.arange(600).reshape(6, 100)
    root.create_array("doomed", shape=(4,), chunks=(2,), dtype="i4", fill_value=0)[:] = 3
    meta = root.create_array("meta", shape=(4,), chunks=(4,), dtype="i2", fill_value=0)
    meta[:] = 1
    meta.attrs["version"] = 1
    session.commit("setup")
    session = repo.writable_session("main")
    grp = zarr.open_group(session.store, mode="r+").create_group("grp")
    grp.create_array("deep", shape=(3, 3), chunks=(1, 3), dtype="u1", fill_value=0)[:] = 9
    session.commit("second")
    return repo


def change(session: ic.Session) -> None:
    """Every kind of change: chunk writes (inline, native, partial, deleted), a deleted array,
    a metadata update, a new array and a new group attribute."""
    root = zarr.open_group(session.store, mode="r+")
    inline = root["inline"]
    native = root["native"]
    meta = root["meta"]
    assert isinstance(inline, zarr.Array)
    assert isinstance(native, zarr.Array)
    assert isinstance(meta, zarr.Array)
    inline[0:4] = 7
    inline[9] = 99  # half a chunk: read, modify, write
    native[1] = 2.5
    native[5, :50] = 3.5
    native[2] = 0  # all fill value: the chunk is deleted
    del root["doomed"]
    meta.attrs["version"] = 2
    root.create_array("fresh", shape=(5,), chunks=(5,), dtype="i8", fill_value=0)[:] = 5
    root.attrs["changed"] = True


def changed(old: State) -> State:
    """The state ``change`` leads to from ``old`` (tip, history and refs left as they were)."""
    arrays = {k: v.copy() for k, v in old.arrays.items() if k != "doomed"}
    arrays["inline"][0:4] = 7
    arrays["inline"][9] = 99
    arrays["native"][1] = 2.5
    arrays["native"][5, :50] = 3.5
    arrays["native"][2] = 0
    arrays["fresh"] = np.full(5, 5)
    attrs = {k: dict(v) for k, v in old.attrs.items() if k != "doomed"}
    attrs["meta"]["version"] = 2
    attrs["fresh"] = {}
    attrs["/"]["changed"] = True
    return State(old.tip, old.history, old.refs, arrays, attrs)


def followup(session: ic.Session) -> None:
    """A small commit that applies on top of both the old and the changed state."""
    root = zarr.open_group(session.store, mode="r+")
    inline = root["inline"]
    assert isinstance(inline, zarr.Array)
    inline[5] = 55
    root.create_array("later", shape=(2,), chunks=(2,), dtype="i1", fill_value=4)


def followed(old: State) -> State:
    arrays = {k: v.copy() for k, v in old.arrays.items()}
    arrays["inline"][5] = 55
    arrays["later"] = np.full(2, 4)
    attrs = {k: dict(v) for k, v in old.attrs.items()}
    attrs["later"] = {}
    return State(old.tip, old.history, old.refs, arrays, attrs)


# --- backends ------------------------------------------------------------------------------


Factory = Callable[[str], ic.Storage]


@pytest.fixture(params=["memory", "local"])
def new_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """Make a fresh empty storage for a name."""
    if request.param == "memory":
        return lambda name: ic.in_memory_storage()
    return lambda name: ic.local_filesystem_storage(tmp_path / name)


def plain(storage: ic.Storage) -> ic.Storage:
    """The same data through a new storage object where the backend allows it."""
    if isinstance(storage, LocalFileSystemStorage):
        return ic.local_filesystem_storage(storage.url)
    return storage


def prepared(storage: ic.Storage) -> tuple[FaultyStorage, ic.Session, State]:
    """Set up the repository, then a session (through a FaultyStorage) holding ``change``."""
    setup_repo(storage)
    before = observe(plain(storage))
    faulty = FaultyStorage(storage)
    session = ic.Repository.open(faulty).writable_session("main")
    change(session)
    return faulty, session, before


def commit_calls(new_storage: Factory) -> list[str]:
    faulty, session, _ = prepared(new_storage("count"))
    faulty.reset()
    session.commit("change")
    return [f"{c.method} {c.key.split('/')[0]}" for c in faulty.calls]


def test_commit_call_count_covers_the_protocol(new_storage: Factory) -> None:
    calls = commit_calls(new_storage)
    # Reads of the old manifests, then manifests (fresh keys, written in place), snapshot
    # and log (published atomically), then the ref swap.
    assert calls[-1] == "put_if_match refs"
    assert calls.count("put_if_absent snapshots") == 1
    assert calls.count("put_if_absent transactions") == 1
    assert calls.count("put_new manifests") >= 2
    assert calls.count("get manifests") >= 1


@pytest.mark.parametrize("when", ["before", "after"])
def test_commit_failing_at_every_storage_call_keeps_previous_commit(
    new_storage: Factory, when: Literal["before", "after"]
) -> None:
    count = len(commit_calls(new_storage))
    for index in range(count):
        storage = new_storage(f"fail-{when}-{index}")
        faulty, session, before = prepared(storage)
        setup_id = before.history[1].id
        setup_state = observe(plain(storage), setup_id)
        faulty.arm(index, when=when)
        with pytest.raises(InjectedFaultError) as info:
            session.commit("change")
        assert info.value.call.index == index
        assert [c.index for c in faulty.faults] == [index]
        faulty.disarm()

        after = observe(plain(storage))
        if when == "after" and index == count - 1:
            # The swap itself happened; only its reply was lost: the commit is in.
            assert after.history[1:] == before.history
            assert after.history[0].message == "change"
            assert_same_data(after, changed(before))
        else:
            assert_same(after, before)
        # Every snapshot of the old history still reads as it did.
        assert_same_data(observe(plain(storage), setup_id), setup_state)

        # A fresh session commits on top.
        repo = ic.Repository.open(plain(storage))
        fresh = repo.writable_session("main")
        followup(fresh)
        new_id = fresh.commit("followup")
        final = observe(plain(storage))
        assert final.tip == new_id
        assert final.history[1:] == after.history
        assert_same_data(final, followed(after))


def test_failed_commit_can_be_retried_by_the_same_session(new_storage: Factory) -> None:
    count = len(commit_calls(new_storage))
    for index in range(count):
        storage = new_storage(f"retry-{index}")
        faulty, session, before = prepared(storage)
        faulty.arm(index)
        with pytest.raises(InjectedFaultError):
            session.commit("change")
        faulty.disarm()
        assert session.has_uncommitted_changes
        new_id = session.commit("change")
        after = observe(plain(storage))
        assert after.tip == new_id
        assert after.history[1:] == before.history
        assert_same_data(after, changed(before))


def test_failed_chunk_write_leaves_the_session_usable(new_storage: Factory) -> None:
    """Native chunks are written as the session writes; a failed one is simply not recorded."""
    storage = new_storage("chunk-write")
    faulty, session, before = prepared(storage)
    native = zarr.open_array(session.store, path="native", mode="r+")
    faulty.arm(0, match=lambda call: call.key.startswith("chunks/"))
    with pytest.raises(InjectedFaultError):
        native[0] = 42.0
    faulty.disarm()
    np.testing.assert_array_equal(native[0], before.arrays["native"][0])
    native[0] = 42.0
    session.commit("change")
    want = changed(before)
    want.arrays["native"][0] = 42.0
    assert_same_data(observe(plain(storage)), want)


def test_rebase_failing_at_every_storage_call_can_be_retried(new_storage: Factory) -> None:
    """A rebase that fails part way leaves the session able to rebase and commit later."""

    def landed_twice(name: str) -> tuple[FaultyStorage, ic.Session, State]:
        storage = new_storage(name)
        faulty, session, before = prepared(storage)
        repo = ic.Repository.open(plain(storage))
        for value in (1, 2):  # two commits land first: one touches a chunk we also write
            other = repo.writable_session("main")
            grp = zarr.open_group(other.store, mode="r+")
            grp["inline"][0:2] = value  # type: ignore[index]
            grp["grp/deep"][0] = value  # type: ignore[index]
            other.commit(f"other {value}")
        with pytest.raises(ic.ConflictError):
            session.commit("change")
        return faulty, session, before

    solver = ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseOurs)
    faulty, session, _ = landed_twice("rebase-count")
    faulty.reset()
    session.rebase(solver)
    count = faulty.count
    assert count >= 4  # ref, snapshot headers, transaction logs, tip snapshot

    for index in range(count):
        faulty, session, before = landed_twice(f"rebase-{index}")
        faulty.arm(index)
        with pytest.raises(InjectedFaultError):
            session.rebase(solver)
        faulty.disarm()
        session.rebase(solver)
        session.commit("change")
        after = observe(plain(faulty.inner))
        assert [e.message for e in after.history[:3]] == ["change", "other 2", "other 1"]
        want = changed(before)
        want.arrays["grp/deep"][0] = 2
        assert_same_data(after, want)


# --- processes killed mid-commit -------------------------------------------------------------


Spawn = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``crash_worker.py`` with the given arguments; every worker is killed at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, WORKER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.stdout is not None and not proc.stdout.closed:
            _kill(proc)


def _expect(proc: subprocess.Popen[str], prefix: str) -> str:
    """The worker's next line, which must start with ``prefix`` (else fail with its stderr)."""
    assert proc.stdout is not None
    watchdog = threading.Timer(TIMEOUT, proc.kill)  # a silent worker must not hang the test
    watchdog.start()
    try:
        line = proc.stdout.readline().strip()
    finally:
        watchdog.cancel()
    if not line.startswith(prefix):
        _, err = _kill(proc)
        pytest.fail(f"worker said {line!r}, expected {prefix!r}...\n{err}")
    return line


def _kill(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL the worker; return what else it printed (read through the same buffers)."""
    assert proc.stdout is not None and proc.stderr is not None
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(TIMEOUT)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    return out, err


def check_consistent(repo: ic.Repository, entries: list[ic.SnapshotInfo]) -> None:
    """Each snapshot holds exactly what its commit wrote: one value everywhere."""
    for entry in entries:
        if entry.parent_id is None:
            continue
        session = repo.readonly_session(snapshot_id=entry.id)
        root = zarr.open_group(session.store, mode="r")
        want = commit_value(entry.message)
        assert root.attrs["value"] == want, entry
        for name in ("x", "y"):
            data = root[name][...]  # type: ignore[index]
            assert (data == want).all(), (entry, name, data)


def check_linear(repo: ic.Repository) -> list[ic.SnapshotInfo]:
    entries = list(repo.ancestry(branch="main"))
    for child, parent in itertools.pairwise(entries):
        assert child.parent_id == parent.id
    assert entries[-1].parent_id is None
    return entries


@pytest.mark.slow
def test_worker_killed_at_random_moments(tmp_path: Path, spawn: Spawn) -> None:
    path = str(tmp_path / "repo")
    create_repo(path)
    rng = random.Random(20240607)
    checked: set[str] = set()
    acknowledged: set[str] = set()
    for iteration in range(8):
        proc = spawn("loop", path, f"w{iteration}", "100000")
        _expect(proc, "ready")
        if iteration == 4:
            # However slow the machine, one worker dies with commits behind it (checked at
            # the end): wait for its first commit before the random delay.
            acknowledged.add(_expect(proc, "committed").split()[2])
        # Sometimes early (maybe in the first commit), sometimes after many commits.
        delay = rng.choice([0.0, 0.002, 0.01]) + rng.uniform(0, 0.25)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(delay)
        out, err = _kill(proc)
        assert proc.returncode == -signal.SIGKILL, err
        acknowledged |= {
            line.split()[2] for line in out.splitlines() if line.startswith("committed")
        }

        repo = ic.Repository.open(ic.local_filesystem_storage(path))
        entries = check_linear(repo)
        ids = {e.id for e in entries}
        assert acknowledged <= ids, "a commit the worker saw succeed is gone"
        check_consistent(repo, [e for e in entries if e.id not in checked])
        checked |= ids
        # New commits work, from the sync API.
        session = repo.writable_session("main")
        message = commit_message(f"t{iteration}", 0)
        write_value(session, commit_value(message))
        acknowledged.add(session.commit(message))

    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    entries = check_linear(repo)
    check_consistent(repo, entries)
    assert acknowledged <= {e.id for e in entries}
    assert len(entries) > 2 + 8


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("shared_location", ["local", "seaweedfs"], indirect=True)
def test_worker_killed_at_every_storage_call_of_a_commit(
    shared_location: Callable[[], tuple[str, ic.Storage]], spawn: Spawn, when: str
) -> None:
    """A writer SIGKILLed at each storage call of a commit, on a local disk and on
    SeaweedFS: the repository reads at its last commit and the next commit works."""

    def fresh() -> tuple[str, ic.Storage]:
        url, storage = shared_location()
        create_repo(url)
        return url, storage

    url, _ = fresh()
    out = subprocess.run(
        [sys.executable, WORKER, "count", url, "w1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout
    count = int(out.split()[1])
    assert count >= 5

    procs = []
    for index in range(count):
        url, storage = fresh()
        before = observe(storage)
        procs.append((index, storage, before, spawn("pause", url, "w1", str(index), when)))
    for index, storage, before, proc in procs:
        _expect(proc, f"paused {index} ")
        _, err = _kill(proc)
        assert proc.returncode == -signal.SIGKILL, err
        repo = ic.Repository.open(storage)
        entries = check_linear(repo)
        check_consistent(repo, entries)
        after = observe(storage)
        if when == "after" and index == count - 1:
            assert after.history[1:] == before.history  # the swap happened before the kill
        else:
            assert_same(after, before)
        session = repo.writable_session("main")
        message = commit_message("t1", 0)
        write_value(session, commit_value(message))
        session.commit(message)
        check_consistent(repo, check_linear(repo))
