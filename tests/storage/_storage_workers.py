"""Functions run in spawned worker processes; kept apart so children import only ick."""

from __future__ import annotations

import asyncio
import random
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from icechunk_lib.errors import ObjectExistsError, PreconditionFailedError
from icechunk_lib.storage import InMemoryStorage, LocalFileSystemStorage, Storage


async def increment(storage: Storage, key: str, times: int) -> int:
    """Add one to the integer at ``key`` ``times`` times with compare-and-swap; return retries."""
    retries = 0
    for _ in range(times):
        while True:
            data, token = await storage.get_versioned(key)
            try:
                await storage.put_if_match(key, str(int(data) + 1).encode(), token)
                break
            except PreconditionFailedError:
                retries += 1
                await asyncio.sleep(random.random() / 1000)  # de-synchronise the losers
    return retries


def increment_worker(
    root: str, key: str, times: int, barrier: Barrier, results: Queue[int]
) -> None:
    """Process entry point: increment the counter once every worker is ready."""
    storage = LocalFileSystemStorage(root)
    barrier.wait()
    results.put(asyncio.run(increment(storage, key, times)))


async def claim(storage: Storage, keys: list[str], worker: int) -> list[str]:
    """Try to create every key; return the ones this worker created."""
    won = []
    for key in keys:
        try:
            await storage.put_if_absent(key, f"worker {worker}".encode())
            won.append(key)
        except ObjectExistsError:
            pass
    return won


def claim_worker(
    root: str, keys: list[str], worker: int, barrier: Barrier, results: Queue[tuple[int, list[str]]]
) -> None:
    """Process entry point: race the other workers to create ``keys``."""
    storage = LocalFileSystemStorage(root)
    barrier.wait()
    results.put((worker, asyncio.run(claim(storage, keys, worker))))


def read_and_write_memory(storage: InMemoryStorage) -> tuple[bytes, str]:
    """Read ``config`` from a storage unpickled in this process, then write ``child``."""

    async def run() -> tuple[bytes, str]:
        data = await storage.get("config")
        await storage.put("child", b"written in the child")
        return data, storage.url

    return asyncio.run(run())
