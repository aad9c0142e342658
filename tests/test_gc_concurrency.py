"""gc beside writers, beside another gc, and killed mid-run, on real local storage.

The writers are 4 "spawn" processes running ``race_worker.commit_worker`` (each commit
writes a native chunk and an inline cell, rebasing on conflicts); gc runs over and over in
this process meanwhile. The other gc and the killed one are separate processes too.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from gc_support import age, keys, read_chunks, write_chunks
from race_worker import ROW, SENTINEL, cell_value, commit_worker, message, row_value

import icechunk_lib as ic

PROCS = 4
COMMITS = 10
TIMEOUT = 240
GRACE = timedelta(seconds=120)
"""The cut-off gc uses beside the writers: now minus a grace longer than any of their
sessions stays open (each writes its chunk, then commits, rebasing until it lands: seconds
at most here). A cut-off later than a session's first write could take its chunks."""
OLD = timedelta(days=10)
WORKER = str(Path(__file__).with_name("gc_crash_worker.py"))
ICK = Path(sys.executable).with_name("ick")


def _make_race_repo(path: Path) -> ic.Repository:
    """The arrays the race workers write, plus aged garbage: a deleted branch's chunks."""
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    cells = root.create_array(
        "cells", shape=(PROCS + 1, COMMITS), chunks=(1, 1), dtype="i8", fill_value=-1
    )
    rows = root.create_array(
        "rows",
        shape=(PROCS + 1, COMMITS, ROW),
        chunks=(1, 1, ROW),
        dtype="f8",
        fill_value=-1,
        compressors=None,
    )
    cells[0, 0] = SENTINEL
    rows[0, 0] = SENTINEL
    session.commit("setup")
    repo.create_branch("junk", repo.lookup_branch("main"))
    junk = repo.writable_session("junk")
    zarr.open_array(junk.store, path="rows", mode="r+")[0, 1:] = 99.0
    junk.commit("junk")
    repo.delete_branch("junk")
    age(repo.storage, OLD)
    return repo


def _expected() -> tuple[np.ndarray, np.ndarray]:
    cells = np.full((PROCS + 1, COMMITS), -1, dtype="i8")
    rows = np.full((PROCS + 1, COMMITS, ROW), -1, dtype="f8")
    cells[0, 0] = rows[0, 0] = SENTINEL
    for p in range(PROCS):
        for i in range(COMMITS):
            cells[p + 1, i] = cell_value(p, i)
            rows[p + 1, i] = row_value(p, i)
    return cells, rows


def _check_everything_reads_back(repo: ic.Repository) -> None:
    entries = list(repo.ancestry(branch="main"))
    counts = Counter(e.message for e in entries)
    expected = {message(p, i) for p in range(PROCS) for i in range(COMMITS)}
    assert expected <= set(counts) and all(counts[m] == 1 for m in expected)
    session = repo.readonly_session(branch="main")
    cells, rows = _expected()
    np.testing.assert_array_equal(
        zarr.open_array(session.store, path="cells", mode="r")[...], cells
    )
    np.testing.assert_array_equal(zarr.open_array(session.store, path="rows", mode="r")[...], rows)
    for entry in entries[:-1]:  # every commit of the history reads completely too
        snap = repo.readonly_session(snapshot_id=entry.id)
        zarr.open_array(snap.store, path="rows", mode="r")[...]
    report = repo.verify()
    assert report.ok, report.problems


@pytest.mark.slow
def test_gc_beside_four_committing_processes_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    _make_race_repo(path)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=commit_worker, args=(str(path), p, COMMITS, "rebase", barrier, results))
        for p in range(PROCS)
    ]
    for proc in procs:
        proc.start()
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    out: list[tuple[int, Any, Any]] = []
    summaries: list[ic.GCSummary] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(out) < PROCS:
            assert time.monotonic() < deadline, "the workers did not finish"
            summaries.append(repo.garbage_collect(datetime.now(UTC) - GRACE))
            try:
                while True:
                    out.append(results.get_nowait())
            except queue.Empty:
                pass
    finally:
        for proc in procs:
            proc.join(TIMEOUT)
            if proc.is_alive():
                proc.kill()
    errors = [tb for _, landed, tb in out if landed is None]
    assert not errors, "\n".join(errors)
    assert [proc.exitcode for proc in procs] == [0] * PROCS
    assert len(summaries) >= 2, "gc did not run while the workers wrote"
    # The aged junk went in the first run; the young leftovers of lost races stayed.
    assert summaries[0].chunks_deleted == COMMITS - 1
    assert sum(s.chunks_deleted for s in summaries) == COMMITS - 1
    assert sum(s.full for s in summaries) < len(summaries), "no run was incremental"
    _check_everything_reads_back(repo)

    # Once everything is old, the leftovers of lost races go too; still nothing is lost.
    age(repo.storage, OLD)
    later = repo.garbage_collect(datetime.now(UTC) - GRACE)
    # Each lost race left one snapshot nothing names (the junk branch left the other).
    collected = sum(s.snapshots_deleted for s in [*summaries, later])
    assert collected == 1 + sum(conflicts for _, _, conflicts in out)
    _check_everything_reads_back(repo)
    again = repo.garbage_collect(datetime.now(UTC) - GRACE)
    assert (again.snapshots_deleted, again.manifests_deleted, again.chunks_deleted) == (0, 0, 0)


def _garbage_repo(path: Path) -> tuple[ic.Repository, set[str]]:
    """main with chunks, plus a deleted branch and a deleted tag holding 30 chunks; aged."""
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    write_chunks(repo, "main", "a", 0, 40, 1.0)
    repo.create_tag("keep", write_chunks(repo, "main", "a", 0, 5, 2.0))
    before = keys(repo.storage)
    repo.create_branch("dev", repo.lookup_branch("main"))
    for start in (0, 10, 20):
        write_chunks(repo, "dev", "a", 100 + start, 10, 3.0)
    repo.create_tag("gone", repo.lookup_branch("dev"))
    repo.delete_branch("dev")
    repo.delete_tag("gone")
    garbage = keys(repo.storage) - before
    age(repo.storage, OLD)
    return repo, garbage


def _refs_read_completely(repo: ic.Repository) -> None:
    assert list(read_chunks(repo, {"branch": "main"}, "a", 40)) == [2.0] * 5 + [1.0] * 35
    assert list(read_chunks(repo, {"tag": "keep"}, "a", 40)) == [2.0] * 5 + [1.0] * 35
    report = repo.verify()
    assert report.ok, report.problems


@pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")
def test_two_gc_processes_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    repo, garbage = _garbage_repo(path)
    cmd = [str(ICK), "gc", "--yes", "--json", "--older-than", "7d", "-R", str(path)]
    runs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    done = [run.communicate(timeout=TIMEOUT) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in done]
    summaries = [json.loads(stdout) for stdout, _ in done]
    assert not keys(repo.storage) & garbage
    # Each object went once: both runs may have counted one they both listed, never more.
    assert 30 <= sum(s["chunks_deleted"] for s in summaries) <= 60
    _refs_read_completely(repo)
    assert repo.garbage_collect(datetime.now(UTC) - timedelta(days=7)).chunks_deleted == 0


@pytest.mark.parametrize("kill_at", [1, 2, 3, 4])
def test_gc_killed_mid_delete_leaves_every_ref_readable(tmp_path: Path, kill_at: int) -> None:
    """Killed after the 1st..4th batch of deletes (snapshots, logs, manifests, chunks; the
    last before the run writes its record)."""
    path = tmp_path / "repo"
    repo, garbage = _garbage_repo(path)
    before = keys(repo.storage)
    proc = subprocess.run(
        [sys.executable, WORKER, str(path), str(kill_at)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ},
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert proc.stdout.strip() == "killing"
    gone = before - keys(repo.storage)
    assert gone and gone <= garbage
    assert (gone < garbage) == (kill_at < 4)  # died part of the way through, or just before
    assert not keys(repo.storage, ["gc/"])  # recording comes last
    _refs_read_completely(repo)
    # The next run finishes the job, and the one after finds nothing.
    repo.garbage_collect(datetime.now(UTC) - timedelta(days=7))
    assert not keys(repo.storage) & garbage
    _refs_read_completely(repo)
    again = repo.garbage_collect(datetime.now(UTC) - timedelta(days=7))
    assert (again.snapshots_deleted, again.chunks_deleted) == (0, 0)
