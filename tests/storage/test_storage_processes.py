"""Cross-process guarantees: no lost update and one create-if-absent winner on local storage."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from pathlib import Path

import pytest
from _storage_workers import claim_worker, increment_worker, read_and_write_memory

from icechunk_lib.storage import InMemoryStorage, LocalFileSystemStorage

pytestmark = pytest.mark.slow

WORKERS = 4
INCREMENTS = 50
TIMEOUT = 60


def _context() -> multiprocessing.context.SpawnContext:
    # spawn: fresh interpreters, like separate programs sharing a repository.
    return multiprocessing.get_context("spawn")


def _join(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(TIMEOUT)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def test_processes_lose_no_compare_and_swap_update(tmp_path: Path) -> None:
    storage = LocalFileSystemStorage(tmp_path / "repo")
    asyncio.run(storage.create_root())
    asyncio.run(storage.put("counter", b"0"))
    ctx = _context()
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=increment_worker,
            args=(storage.url, "counter", INCREMENTS, barrier, results),
        )
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    retries = [results.get(timeout=TIMEOUT) for _ in processes]
    _join(processes)
    assert asyncio.run(storage.get("counter")) == str(WORKERS * INCREMENTS).encode()
    assert all(isinstance(r, int) for r in retries)


def test_processes_race_put_if_absent_one_winner(tmp_path: Path) -> None:
    storage = LocalFileSystemStorage(tmp_path / "repo")
    asyncio.run(storage.create_root())
    keys = [f"refs/tag.t{i}/ref" for i in range(20)]
    ctx = _context()
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=claim_worker, args=(storage.url, keys, worker, barrier, results))
        for worker in range(WORKERS)
    ]
    for process in processes:
        process.start()
    won = dict(results.get(timeout=TIMEOUT) for _ in processes)
    _join(processes)
    for key in keys:
        winners = [worker for worker, keys_won in won.items() if key in keys_won]
        assert len(winners) == 1, f"{key}: winners {winners}"
        assert asyncio.run(storage.get(key)) == f"worker {winners[0]}".encode()


def test_memory_storage_is_rebuilt_in_another_process() -> None:
    storage = InMemoryStorage()
    asyncio.run(storage.put("config", b"cfg"))
    with _context().Pool(1) as pool:
        data, url = pool.apply(read_and_write_memory, (storage,))
    assert (data, url) == (b"cfg", storage.url)
    assert not asyncio.run(storage.exists("child"))  # the child wrote to its own copy
