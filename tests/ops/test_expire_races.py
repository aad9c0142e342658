"""Expiration beside writers: no ref is left pointing at a released snapshot, no commit lost.

A ``FaultyStorage`` hook performs a real ref change or commit, from another thread's own
event loop, at a chosen step of the run (just before its record is written); the thread
tests race real writers against repeated expirations.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from expire_helpers import (
    commit,
    commit_on_own_loop,
    new_repo,
    rebasing_writer,
    values,
    written_at,
)
from faulty_storage import Call, FaultyStorage

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.objects import EXPIRATIONS


def _in_thread(work: Callable[[], object]) -> Callable[[Call], None]:
    """An ``on_fault`` hook running ``work`` once, in its own thread, to the end."""
    done: list[object] = []

    def hook(call: Call) -> None:
        if done:
            return
        done.append(call)
        thread = threading.Thread(target=work)
        thread.start()
        thread.join(60)
        assert not thread.is_alive()

    return hook


def _at_record_write(call: Call) -> bool:
    return call.method == "put_if_absent" and call.key.startswith(EXPIRATIONS)


def _records(storage: ic.Storage) -> list[str]:
    async def read() -> list[str]:
        return [i.key async for i in storage.list(EXPIRATIONS)]

    return _sync.run(read())


def _reachable(repo: ic.Repository) -> set[str]:
    tips = [repo.lookup_branch(b) for b in repo.list_branches()]
    tips += [repo.lookup_tag(t) for t in repo.list_tags()]
    return {info.id for tip in tips for info in repo.ancestry(snapshot_id=tip)}


def _root(repo: ic.Repository) -> str:
    return [i.id for i in repo.ancestry(branch="main")][-1]


def _open_on_own_loop(storage: ic.Storage, action: Callable[[ic.Repository], object]) -> None:
    import asyncio

    async def run() -> None:
        repo = await ic.Repository.open_async(storage)
        result = action(repo)
        if asyncio.iscoroutine(result):
            await result

    asyncio.run(run())


def test_a_branch_created_at_a_snapshot_being_released_makes_the_run_retry(
    storage: ic.Storage,
) -> None:
    repo = new_repo(storage)
    created = repo.lookup_branch("main")
    root = _root(repo)
    ids = [commit(repo, "main", i, i + 1) for i in range(4)]
    tip = commit(repo, "main", 9, 9)
    target = ids[2]
    faulty = FaultyStorage(storage)
    faulty.arm(
        0,
        match=_at_record_write,
        on_fault=_in_thread(
            lambda: _open_on_own_loop(storage, lambda r: r.create_branch_async("late", target))
        ),
    )
    released = ic.Repository.open(faulty).expire_snapshots(written_at(repo, tip))
    assert faulty.faults, "the hook never ran"
    fresh = ic.Repository.open(storage)
    assert fresh.lookup_branch("late") == target
    assert target not in released
    assert released == {created, *ids} - {target}
    assert not released & _reachable(fresh)
    # the retry re-parented the late branch's tip too: a second record
    assert len(_records(storage)) == 2
    assert [i.id for i in fresh.ancestry(branch="late")] == [target, root]
    assert values(fresh, target)[:4] == [1, 2, 3, 0]
    assert fresh.verify().ok


def test_a_commit_on_a_branch_being_deleted_keeps_the_branch(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    root = _root(repo)
    base = commit(repo, "main", 0, 1)
    repo.create_branch("old", base)
    old_tip = commit(repo, "old", 1, 11)
    tip = commit(repo, "main", 2, 2)
    landed: list[str] = []
    faulty = FaultyStorage(storage)
    faulty.arm(
        0,
        match=_at_record_write,
        on_fault=_in_thread(lambda: landed.append(commit_on_own_loop(storage, "old", 3, 33))),
    )
    released = ic.Repository.open(faulty).expire_snapshots(
        written_at(repo, tip), delete_expired_branches=True
    )
    (new_tip,) = landed
    fresh = ic.Repository.open(storage)
    assert fresh.lookup_branch("old") == new_tip
    assert released.deleted_branches == ()
    assert new_tip not in released and old_tip in released
    assert values(fresh, new_tip)[:4] == [1, 11, 0, 33]
    assert [i.id for i in fresh.ancestry(branch="old")] == [new_tip, root]
    assert not released & _reachable(fresh)
    assert fresh.verify().ok


def test_a_commit_landing_on_a_released_parent_is_reparented_on_retry(
    storage: ic.Storage,
) -> None:
    """A tag created at an old snapshot and a commit on a branch there, while the run is
    between planning and writing: both reach snapshots the plan released."""
    repo = new_repo(storage)
    ids = [commit(repo, "main", i, i + 1) for i in range(3)]
    repo.create_branch("side", ids[2])
    tip = commit(repo, "main", 9, 9)
    faulty = FaultyStorage(storage)

    def meanwhile() -> None:
        _open_on_own_loop(storage, lambda r: r.create_tag_async("kept", ids[0]))
        commit_on_own_loop(storage, "side", 5, 55)

    faulty.arm(0, match=_at_record_write, on_fault=_in_thread(meanwhile))
    released = ic.Repository.open(faulty).expire_snapshots(written_at(repo, tip))
    fresh = ic.Repository.open(storage)
    assert ids[0] not in released
    assert not released & _reachable(fresh)
    side = fresh.lookup_branch("side")
    assert values(fresh, side)[:6] == [1, 2, 3, 0, 0, 55]
    assert fresh.verify().ok


@pytest.mark.parametrize("rounds", [4])
def test_writers_and_repeated_expirations_lose_nothing(storage: ic.Storage, rounds: int) -> None:
    repo = new_repo(storage)
    for name in ("w1", "w2"):
        repo.create_branch(name, repo.lookup_branch("main"))
    commits = 6
    errors: list[BaseException] = []
    landed: dict[str, list[str]] = {"main": [], "w1": [], "w2": []}

    def writer(branch: str, index: int) -> None:
        try:
            for n in range(commits):
                landed[branch].append(commit(ic.Repository.open(storage), branch, index, n + 1))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(b, i)) for i, b in enumerate(("main", "w1", "w2"))
    ]
    for t in threads:
        t.start()
    results = []
    expirer = ic.Repository.open(storage)
    for _ in range(rounds):
        results.append(expirer.expire_snapshots(dt.datetime.now(dt.UTC)))
    for t in threads:
        t.join(120)
    assert not errors, errors
    results.append(expirer.expire_snapshots(dt.datetime.now(dt.UTC)))
    fresh = ic.Repository.open(storage)
    released = set().union(*results)
    assert not released & _reachable(fresh)
    for i, branch in enumerate(("main", "w1", "w2")):
        assert len(landed[branch]) == commits
        assert fresh.lookup_branch(branch) == landed[branch][-1]
        assert values(fresh, landed[branch][-1])[i] == commits
    report = fresh.verify()
    assert report.ok, report.problems


def test_processes_rebasing_beside_repeated_expirations_land_every_commit(
    tmp_path: Path,
) -> None:
    """Writers in other processes lose races and rebase while their bases are released."""
    path = tmp_path / "repo"
    path.mkdir()
    repo = new_repo(ic.local_filesystem_storage(path))
    procs, commits = 3, 6
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [
        ctx.Process(target=rebasing_writer, args=(str(path), i, commits, results))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    out = []
    expired: set[str] = set()
    deadline = time.monotonic() + 180
    try:
        while len(out) < procs:
            assert time.monotonic() < deadline, "the writers did not finish"
            expired |= repo.expire_snapshots(dt.datetime.now(dt.UTC))
            try:
                out.append(results.get(timeout=0.05))
            except queue.Empty:
                continue
    finally:
        for w in workers:
            w.join(60)
            if w.is_alive():
                w.kill()
    failed = [tb for _, tb in out if isinstance(tb, str)]
    assert not failed, "\n".join(failed)
    expired |= repo.expire_snapshots(dt.datetime.now(dt.UTC))
    landed = [sid for _, ids in out for sid in ids]
    assert len(set(landed)) == procs * commits
    tip = repo.lookup_branch("main")
    assert values(repo, tip)[:procs] == [commits] * procs
    history = {i.id for i in repo.ancestry(branch="main")}
    assert not expired & history
    assert set(landed) <= expired | history
    assert repo.verify().ok
