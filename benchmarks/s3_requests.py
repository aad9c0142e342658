"""Client CPU per S3 request: ``S3Storage`` GETs, PUTs and HEADs of small objects against a
SeaweedFS on loopback, sequential and with several in flight.

CPU time (``time.process_time``) is the figure to compare on a shared machine: wall time
follows the load of whatever else runs there, the client's CPU per request does not.

    PYTHONPATH=. .venv/bin/python -m benchmarks.s3_requests [--requests 1000] [--size 800]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.s3 import _servers

__all__ = ["main", "measure"]


async def _timed(
    label: str, count: int, in_flight: int, one: Callable[[int], Awaitable[Any]]
) -> None:
    limit = asyncio.Semaphore(in_flight)

    async def limited(i: int) -> None:
        async with limit:
            await one(i)

    wall, cpu = time.perf_counter(), time.process_time()
    if in_flight == 1:
        for i in range(count):
            await one(i)
    else:
        await asyncio.gather(*(limited(i) for i in range(count)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{label:<6} {in_flight:>3} in flight: {cpu / count * 1000:6.3f} ms CPU, "
        f"{wall / count * 1000:6.3f} ms wall per request",
        flush=True,
    )


async def measure(storage: Any, count: int, size: int) -> None:
    """Write ``count`` objects, then time GETs, HEADs and PUTs of them."""
    data = b"x" * size
    async with storage:
        await asyncio.gather(*(storage.put(f"chunks/c{i}", data) for i in range(count)))
        await storage.get("chunks/c0")  # the connection is made
        for in_flight in (1, 10):
            await _timed("GET", count, in_flight, lambda i: storage.get(f"chunks/c{i}"))
            await _timed("HEAD", count, in_flight, lambda i: storage.exists(f"chunks/c{i}"))
            await _timed("PUT", count, in_flight, lambda i: storage.put(f"chunks/c{i}", data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--size", type=int, default=800)
    args = parser.parse_args()
    servers = _servers()
    server = servers.start("seaweedfs")
    try:
        storage = servers.s3_at(server, server.fresh_prefix())
        asyncio.run(measure(storage, args.requests, args.size))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
