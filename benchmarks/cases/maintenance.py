"""Case 8: maintenance: expire and gc on 1,000 commits / 1,000,000 chunks, then gc again.

The repository (local disk) holds one array of 100,000 native chunks of 1 KiB (uncompressed,
above both engines' inline threshold). Each of 1,000 commits rewrites 1,000 of them in turn,
so 1,000,000 chunk files were written and 100,000 are live at the tip. One measured round:
1. ``expire_snapshots(older_than=<time of commit 500>)``;
2. ``garbage_collect(<now>)``: deletes the released snapshots and the chunks only they held;
3. ten more commits of one chunk each, then ``garbage_collect(<now>)`` again: what a nightly
   run costs after a small day.
Time and peak memory (resident, kernel high-water mark) of each step. The repositories take
minutes to build, so they are kept in ``OUT/cache``; each round works on a hard-linked copy
(both engines replace files by rename, never in place, which a check after the round
confirms on the cached refs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import zarr

from benchmarks.common import chunk_pool, run, set_many
from benchmarks.engines import create_repo, open_repo
from benchmarks.harness import Case, Context, Metric, PeakMemory, Round, remove, stopwatch

FIXTURE_VERSION = 1
CHUNK = 128  # float64 elements: 1 KiB per chunk
PER_COMMIT = 1000


def _sizes(ctx: Context) -> tuple[int, int]:
    """(commits, live chunks): 1,000 x 1,000 written, 100,000 live; a tenth with --quick."""
    return (100, 10_000) if ctx.quick else (1_000, 100_000)


def _digest(repo: Path) -> str:
    """A hash of every ref file: the cached repository must not change under a round."""
    h = hashlib.sha256()
    for path in sorted((repo / "refs").rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _build(ctx: Context, engine: str) -> tuple[Path, dt.datetime]:
    """The cached repository and the moment of its middle commit (the expiry cut-off)."""
    commits, slots = _sizes(ctx)
    home = ctx.cache / f"maintenance-v{FIXTURE_VERSION}-{commits}-{engine}"
    done = home / "complete.json"
    if done.exists():
        info = json.loads(done.read_text())
        return home / "repo", dt.datetime.fromisoformat(info["cutoff"])
    remove(home)
    home.mkdir(parents=True)
    print(f"    building {home.name} (cached for later runs)", flush=True)
    started = time.perf_counter()
    repo = create_repo(engine, "local", home / "repo")
    zarr.create_array(
        repo.writable(),
        name="a",
        shape=(slots * CHUNK,),
        chunks=(CHUNK,),
        dtype="f8",
        compressors=None,
        fill_value=0.0,
    )
    repo.commit("array")
    pool = chunk_pool(CHUNK * 8, 64)
    cutoff = None
    for i in range(commits):
        store = repo.writable()
        first = (i * PER_COMMIT) % slots
        items = ((f"a/c/{first + k}", pool[(i + k) % len(pool)]) for k in range(PER_COMMIT))
        run(set_many(store, items))
        repo.commit(f"rewrite chunks {first}..{first + PER_COMMIT - 1}")
        if i == commits // 2:
            time.sleep(0.01)  # strictly between two commits' times
            cutoff = dt.datetime.now(dt.UTC)
            time.sleep(0.01)
    assert cutoff is not None
    info = {
        "seconds": time.perf_counter() - started,
        "cutoff": cutoff.isoformat(),
        "refs": _digest(home / "repo"),
    }
    done.write_text(json.dumps(info))
    return home / "repo", cutoff


def _copy(source: Path, target: Path) -> None:
    remove(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)


def _gc(repo: object) -> tuple[float, float | None, int]:
    with PeakMemory() as mem, stopwatch() as t:
        summary = repo.garbage_collect(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return t.seconds, mem.megabytes, int(summary.chunks_deleted)


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    cached, cutoff = _build(ctx, engine)
    expected = json.loads((cached.parent / "complete.json").read_text())["refs"]
    pool = chunk_pool(CHUNK * 8, 4, seed=7)
    for r in range(ctx.rounds(cap=1 if not ctx.quick else 2)):
        work = ctx.scratch / f"c8-{engine}-{r}"
        _copy(cached, work)
        try:
            handle = open_repo(engine, work)
            repo = handle._repo  # type: ignore[attr-defined]
            with PeakMemory() as mem, stopwatch(profile="expire") as t:
                released = repo.expire_snapshots(older_than=cutoff)
            if not released:
                raise AssertionError("expire_snapshots released nothing")
            values: Round = {"expire": t.seconds}
            if mem.megabytes is not None:
                values["expire_mb"] = mem.megabytes
            first, first_mb, deleted = _gc(repo)
            if deleted == 0:
                raise AssertionError("the first gc deleted no chunks")
            values["gc_first"] = first
            values["gc_first_chunks"] = deleted
            if first_mb is not None:
                values["gc_first_mb"] = first_mb
            for i in range(10):
                store = handle.writable()
                run(set_many(store, [(f"a/c/{i}", pool[i % len(pool)])]))
                handle.commit(f"small change {i}")
            second, second_mb, deleted = _gc(repo)
            values["gc_second"] = second
            if second_mb is not None:
                values["gc_second_mb"] = second_mb
            values["gc_ratio"] = first / second if second > 0 else 0.0
            yield values
        finally:
            remove(work)
        if _digest(cached) != expected:
            raise AssertionError(f"the cached repository {cached} changed under a round")


CASE = Case(
    id="8",
    title="Maintenance",
    summary=(
        "`expire_snapshots` and `garbage_collect` on a repository of 1,000 commits and "
        "1,000,000 written chunks (100,000 live), then `garbage_collect` again after 10 "
        "one-chunk commits; time and peak memory of each."
    ),
    metrics=(
        Metric("expire", "expire snapshots older than the middle commit", "s"),
        Metric("expire_mb", "expire, peak memory", "MB", plot=False),
        Metric("gc_first", "gc after the expiry", "s"),
        Metric("gc_first_mb", "gc after the expiry, peak memory", "MB", plot=False),
        Metric("gc_first_chunks", "chunks the first gc deleted", "count", plot=False),
        Metric("gc_second", "gc again after 10 small commits", "s"),
        Metric("gc_second_mb", "second gc, peak memory", "MB", plot=False),
        Metric("gc_ratio", "first gc time / second gc time", "x", plot=False),
    ),
    run=measure,
    engines=("ick", "icechunk"),
    backends=("local",),
    notes=(
        "A plain zarr store has no snapshots to expire or collect.",
        "Each engine runs on its own copy of its cached repository; one round (two with "
        "`--quick`, which uses 100 commits and 10,000 live chunks).",
    ),
)
