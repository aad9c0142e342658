"""Case 3: commit cost as the change grows (1k, 10k, 100k chunks), time and peak memory.

Each round starts from a new repository holding the empty arrays (one array, or 100 arrays
sharing the chunks evenly), writes all N chunks (1 KiB each, so stored as objects, not
inlined) in a new session, then times the commit alone. Peak memory is the resident memory
the commit adds on top of what the process held before it (the kernel's high-water mark,
so Icechunk's native allocations count too).

The extra row "1k of 100k" then rewrites every 100th chunk of the committed 100,000-chunk
array: a small change to a large array, where the cost should follow the change, not the
array.
"""

from __future__ import annotations

from collections.abc import Iterator

import zarr
from zarr.abc.store import Store

from benchmarks.common import chunk_pool, run, set_many
from benchmarks.engines import Repo, create_repo
from benchmarks.harness import Case, Context, Metric, PeakMemory, Round, remove, stopwatch

SIZES = (("1k", 1_000, 5), ("10k", 10_000, 3), ("100k", 100_000, 2))
"""(label, number of chunks, measured rounds at most)."""
LAYOUTS = (("one", "one array"), ("spread", "100 arrays"))
ARRAYS_SPREAD = 100
CHUNK = 128  # float64 elements: 1 KiB per chunk


def _keys(layout: str, n: int) -> list[str]:
    if layout == "one":
        return [f"a/c/{i}" for i in range(n)]
    per = n // ARRAYS_SPREAD
    return [f"s/a{j:02d}/c/{i}" for j in range(ARRAYS_SPREAD) for i in range(per)]


def _create(store: Store, layout: str, n: int) -> None:
    if layout == "one":
        zarr.create_array(store, name="a", shape=(CHUNK * n,), chunks=(CHUNK,), dtype="f8")
        return
    group = zarr.create_group(store, path="s")
    for j in range(ARRAYS_SPREAD):
        group.create_array(
            f"a{j:02d}", shape=(CHUNK * (n // ARRAYS_SPREAD),), chunks=(CHUNK,), dtype="f8"
        )


def _write(repo: Repo, keys: list[str], shift: int) -> None:
    pool = chunk_pool(1024, 16, seed=shift)
    store = repo.writable()
    run(set_many(store, ((k, pool[i % len(pool)]) for i, k in enumerate(keys))))


def _timed_commit(repo: Repo, message: str, name: str) -> tuple[float, float | None]:
    with PeakMemory() as mem, stopwatch(profile=name) as t:
        repo.commit(message)
    return t.seconds * 1e3, mem.megabytes


def _one_round(
    ctx: Context, engine: str, backend: str, label: str, n: int, layout: str, rnd: int, last: bool
) -> Iterator[Round]:
    path = ctx.tempdir(f"c3-{engine}-{backend}-{layout}-{label}-{rnd}")
    try:
        repo = create_repo(engine, backend, path / "repo")
        _create(repo.writable(), layout, n)
        repo.commit("arrays")
        keys = _keys(layout, n)
        _write(repo, keys, rnd)
        ms, mb = _timed_commit(repo, f"write {n} chunks", f"commit_{label}_{layout}")
        values: Round = {f"commit_{label}_{layout}": ms}
        if mb is not None:
            values[f"mem_{label}_{layout}"] = mb
        yield values
        if last and label == "100k" and layout == "one":
            for small in range(ctx.rounds(3)):
                _write(repo, keys[small::100], 100 + small)
                ms, mb = _timed_commit(repo, f"change {small}", "commit_1k_of_100k")
                values = {"commit_1k_of_100k": ms}
                if mb is not None:
                    values["mem_1k_of_100k"] = mb
                yield values
    finally:
        remove(path)


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    for _ in _one_round(ctx, engine, backend, "warm", 100, "one", 0, last=False):
        pass  # the first commit of a process also pays for imports and caches
    for label, n, cap in SIZES[:2] if ctx.quick else SIZES:
        for layout, _ in LAYOUTS:
            rounds = ctx.rounds(cap)
            for rnd in range(rounds):
                yield from _one_round(
                    ctx, engine, backend, label, n, layout, rnd, last=rnd == rounds - 1
                )


def _metrics() -> tuple[Metric, ...]:
    out = []
    for layout, layout_label in LAYOUTS:
        for label, _, _ in SIZES:
            out.append(Metric(f"commit_{label}_{layout}", f"commit {label}, {layout_label}", "ms"))
    out.append(Metric("commit_1k_of_100k", "commit 1k of 100k, one array", "ms"))
    for layout, layout_label in LAYOUTS:
        for label, _, _ in SIZES:
            out.append(
                Metric(f"mem_{label}_{layout}", f"peak memory {label}, {layout_label}", "MB")
            )
    out.append(Metric("mem_1k_of_100k", "peak memory 1k of 100k, one array", "MB"))
    return tuple(out)


CASE = Case(
    id="3",
    title="Commit cost",
    summary=(
        "Commit after writing 1k, 10k and 100k chunks of 1 KiB, in one array or spread "
        "over 100 arrays, and after rewriting 1k chunks of the 100k-chunk array: the "
        "commit's time and the peak resident memory it adds."
    ),
    metrics=_metrics(),
    run=measure,
    backends=("memory", "local", "s3"),
    engines=("ick", "icechunk"),
    notes=(
        "A plain zarr store has no commit, so only ick and Icechunk are compared.",
        "Peak memory is the growth of the process's resident set during the commit, so "
        "memory freed earlier and reused is not counted; small changes can show 0.",
        "`--quick` skips the 100k sizes.",
    ),
)
