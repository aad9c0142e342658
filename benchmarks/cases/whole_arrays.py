"""Case 2: write then read whole arrays through zarr, with zarr's default compressor.

* small: 1000x1000 float64 in 10x10 chunks (10,000 chunks of about 800 bytes),
* large: 4000x4000 float32 in 500x500 chunks (64 chunks of 1 MB).

The data is random (normal), so chunks barely compress and none is small enough to be inlined
in a manifest: every engine stores every chunk as an object. A write is ``create_array``,
``array[:] = data`` and, for the versioned engines, the commit that makes it visible (the
commit alone is also reported). A read opens the repository afresh (nothing cached) and reads
``array[:]``. Each round writes to a new, empty repository or directory.

On S3, one more round of the large array goes through the proxy that counts requests
(``benchmarks/request_counter.py``): the requests of the write (commit included) and of the
read, by kind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import zarr

from benchmarks.engines import create_repo
from benchmarks.harness import Case, Context, Metric, Round, remove, stopwatch
from benchmarks.s3 import request_metrics

SIZES: dict[str, dict[str, Any]] = {
    "small": {"shape": (1000, 1000), "chunks": (10, 10), "dtype": "f8"},
    "large": {"shape": (4000, 4000), "chunks": (500, 500), "dtype": "f4"},
}


def _data(size: str, quick: bool) -> np.ndarray[Any, Any]:
    spec = SIZES[size]
    shape = spec["shape"]
    if quick:
        shape = (shape[0] // 2, shape[1] // 2)
    rng = np.random.default_rng(7)
    data: np.ndarray[Any, Any] = rng.standard_normal(shape, dtype=np.float64)
    return data.astype(spec["dtype"])


def _round(
    ctx: Context, engine: str, backend: str, size: str, data: np.ndarray[Any, Any], tag: str
) -> Round:
    path = ctx.tempdir(f"c2-{engine}-{backend}-{size}-{tag}")
    try:
        repo = create_repo(engine, backend, path / "repo")
        with stopwatch(profile=f"{size}_write") as write:
            store = repo.writable()
            array = zarr.create_array(
                store,
                name="x",
                shape=data.shape,
                chunks=SIZES[size]["chunks"],
                dtype=data.dtype,
            )
            array[:] = data
            before_commit = time.perf_counter()
            repo.commit(f"write {size}")
            commit = time.perf_counter() - before_commit
        values = {f"{size}_write": write.seconds}
        if repo.versioned:
            values[f"{size}_commit"] = commit * 1e3
        with stopwatch(profile=f"{size}_read") as read:
            reader = repo.reopen().readonly()
            back = zarr.open_array(reader, path="x", mode="r")[:]
        values[f"{size}_read"] = read.seconds
        if not np.array_equal(back, data):
            raise AssertionError(f"{engine} read back different data")
        return values
    finally:
        remove(path)


def _requests(ctx: Context, engine: str, data: np.ndarray[Any, Any]) -> Round:
    """The requests of one write and one read of the large array, counted by the proxy."""
    from benchmarks.s3 import counting

    path = ctx.tempdir(f"c2-{engine}-s3-counted")
    try:
        repo = create_repo(engine, "s3", path / "repo", counted=True)
        with counting(repo.prefix) as write:
            store = repo.writable()
            array = zarr.create_array(
                store, name="x", shape=data.shape, chunks=SIZES["large"]["chunks"], dtype=data.dtype
            )
            array[:] = data
            repo.commit("write large")
        with counting(repo.prefix) as read:
            reader = repo.reopen().readonly()
            zarr.open_array(reader, path="x", mode="r")[:]
        return {**write.values("req_large_write"), **read.values("req_large_read")}
    finally:
        remove(path)


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    data = {size: _data(size, ctx.quick) for size in SIZES}
    for size in SIZES:  # warm up codecs, thread pools and the engine's imports
        _round(ctx, engine, backend, size, data[size][:100, :100], "warm")
    for rnd in range(ctx.rounds(3)):
        values: Round = {}
        for size in SIZES:
            values.update(_round(ctx, engine, backend, size, data[size], str(rnd)))
        yield values
    if backend == "s3":
        yield _requests(ctx, engine, data["large"])


def _metrics() -> tuple[Metric, ...]:
    out = []
    for size, label in (
        ("small", "1000x1000 f8, 10k chunks"),
        ("large", "4000x4000 f4, 64 chunks"),
    ):
        out.append(Metric(f"{size}_write", f"write {label}", "s"))
        out.append(Metric(f"{size}_read", f"read {label}", "s"))
        out.append(
            Metric(
                f"{size}_commit",
                f"of which commit, {size}",
                "ms",
                engines=("ick", "icechunk"),
                plot=False,
            )
        )
    out += request_metrics("req_large_write", "write 4000x4000 f4")
    out += request_metrics("req_large_read", "read 4000x4000 f4")
    return tuple(out)


CASE = Case(
    id="2",
    title="Whole arrays",
    summary=(
        "Write (create, `array[:] = data`, commit) then read (fresh open, `array[:]`) a "
        "1000x1000 float64 array in 10x10 chunks (10,000 chunks) and a 4000x4000 float32 "
        "array in 500x500 chunks, random data, zarr's default compressor (zstd)."
    ),
    metrics=_metrics(),
    run=measure,
    backends=("memory", "local", "s3"),
    notes=(
        "Random data: every chunk is stored as its own object (none is small enough to be "
        "inlined in a manifest). `--quick` halves both sides of both arrays.",
    ),
)
