"""Racing writers on real S3-compatible servers: 4 processes x 25 commits on one branch,
every commit lands exactly once (tests/test_concurrency.py does the same on a local disk).
The workers get the storage pickled, and their credentials from the environment."""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest
import s3_servers
from race_worker import cell_value, commit_worker, message
from s3_servers import StorageFactory
from test_concurrency import (
    COMMITS,
    INITIAL,
    PROCS,
    RACE_CELLS,
    TIMEOUT,
    _setup_cells,
    assert_linear,
    make_repo,
    read,
)

import icechunk_lib as ic


@pytest.mark.slow
def test_racing_processes_land_every_commit_exactly_once(
    new_s3: StorageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", s3_servers.ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3_servers.SECRET_KEY),
        ("AWS_DEFAULT_REGION", s3_servers.REGION),
    ):
        monkeypatch.setenv(name, value)
    storage = new_s3()
    make_repo(storage, **RACE_CELLS)

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=commit_worker, args=(storage, p, COMMITS, "rebase", barrier, results))
        for p in range(PROCS)
    ]
    for proc in procs:
        proc.start()
    out: list[tuple[int, Any, Any]] = []
    deadline = time.monotonic() + 4 * TIMEOUT
    try:
        while len(out) < PROCS:
            assert time.monotonic() < deadline, "the workers did not finish"
            try:
                out.append(results.get(timeout=1))
            except queue.Empty:
                continue
    finally:
        for proc in procs:
            proc.join(TIMEOUT)
            if proc.is_alive():
                proc.kill()
    errors = [tb for _, landed, tb in out if landed is None]
    assert not errors, "\n".join(errors)

    repo = ic.Repository.open(storage)
    entries = list(repo.ancestry(branch="main"))
    counts = Counter(e.message for e in entries)
    expected = {message(p, i) for p in range(PROCS) for i in range(COMMITS)}
    assert set(counts) == expected | {"setup", INITIAL}
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert_linear(repo, entries)
    by_id = {e.id: e.message for e in entries}
    for proc_index, landed, _ in out:
        assert [by_id.get(sid) for sid in landed] == [
            message(proc_index, i) for i in range(COMMITS)
        ]
    want = _setup_cells()
    for p in range(PROCS):
        for i in range(COMMITS):
            want[p + 1, i] = cell_value(p, i)
    np.testing.assert_array_equal(read(repo.readonly_session("main"), "cells"), want)
