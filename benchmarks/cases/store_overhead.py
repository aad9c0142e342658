"""Case 1: store overhead of ``get`` / ``set`` / ``exists`` on small chunks.

Keys are chunk keys of a real 1-D array (so the versioned stores treat them as chunks) and
every value is 1 KiB: above the 512-byte inline threshold of ick and Icechunk, so each set
writes an object on the backend just as a plain store writes one. Sets go through a writable
session; gets and exists go through a read-only session after the commit (a warm one: the
manifest is loaded once before timing), as a reader of committed data sees them.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterator

import zarr
from zarr.abc.store import Store
from zarr.core.buffer import Buffer

from benchmarks.common import PROTOTYPE, chunk_pool, run
from benchmarks.engines import create_repo
from benchmarks.harness import Case, Context, Metric, Round, profiled, remove

CHUNK_BYTES = 1024
OPS = ("set", "get", "exists")


def _metrics() -> tuple[Metric, ...]:
    out = []
    for op in OPS:
        out.append(Metric(f"{op}_seq", f"{op}, sequential", "us/op"))
        out.append(Metric(f"{op}_gather", f"{op}, gathered", "us/op"))
    return tuple(out)


# The clock runs inside the coroutine: handing it to the event loop costs more than one
# operation of a plain memory store.
async def _seq(op: Callable[[str], Awaitable[object]], keys: list[str]) -> float:
    start = time.perf_counter()
    for key in keys:
        await op(key)
    return (time.perf_counter() - start) / len(keys) * 1e6


async def _gather(op: Callable[[str], Awaitable[object]], keys: list[str]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(op(key) for key in keys))
    return (time.perf_counter() - start) / len(keys) * 1e6


def _setter(store: Store, values: dict[str, Buffer]) -> Callable[[str], Awaitable[None]]:
    def put(key: str) -> Awaitable[None]:
        return store.set(key, values[key])

    return put


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    n = 300 if ctx.quick else 2000
    path = ctx.tempdir(f"c1-{engine}-{backend}")
    pool = chunk_pool(CHUNK_BYTES, 16)
    try:
        repo = create_repo(engine, backend, path / "repo")
        store = repo.writable()
        zarr.create_array(
            store, name="a", shape=(128 * 2 * n,), chunks=(128,), dtype="f8", compressors=None
        )
        repo.commit("array")
        seq_keys = [f"a/c/{i}" for i in range(n)]
        gather_keys = [f"a/c/{i}" for i in range(n, 2 * n)]
        keys = seq_keys + gather_keys
        for rnd in range(ctx.rounds() + 1):  # round 0 warms up and is not reported
            values: Round = {}
            store = repo.writable()
            put = _setter(store, {k: pool[(i + rnd) % len(pool)] for i, k in enumerate(keys)})
            with profiled("set_seq"):
                values["set_seq"] = run(_seq(put, seq_keys))
            with profiled("set_gather"):
                values["set_gather"] = run(_gather(put, gather_keys))
            repo.commit(f"round {rnd}")

            reader = repo.reopen().readonly()
            first = run(reader.get(seq_keys[0], PROTOTYPE))
            if first is None or len(first) != CHUNK_BYTES:
                raise AssertionError("read back a wrong chunk")
            get = functools.partial(reader.get, prototype=PROTOTYPE)
            with profiled("get_seq"):
                values["get_seq"] = run(_seq(get, seq_keys))
            with profiled("get_gather"):
                values["get_gather"] = run(_gather(get, gather_keys))
            with profiled("exists_seq"):
                values["exists_seq"] = run(_seq(reader.exists, seq_keys))
            with profiled("exists_gather"):
                values["exists_gather"] = run(_gather(reader.exists, gather_keys))
            if rnd:
                yield values
    finally:
        remove(path)


CASE = Case(
    id="1",
    title="Store overhead",
    summary=(
        "`store.set` / `store.get` / `store.exists` of 1 KiB chunks, one at a time "
        "(sequential) and all at once with `asyncio.gather` (2,000 keys each), in "
        "microseconds per operation."
    ),
    metrics=_metrics(),
    run=measure,
    backends=("memory", "local", "s3"),
)
