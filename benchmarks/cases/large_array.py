"""Case 4: an array of 1,000,000 chunks: cold open and first chunk, then 1,000 random chunks.

The array is 1000x1000 float64 in 1x1 chunks, uncompressed, so every chunk is 8 bytes and the
versioned engines keep it inline in their manifests: the work is the index, not the data.
Each measured round is a new Python process (``benchmarks/worker.py``) that imports the
engine and zarr, then times ``Repository.open`` + a read-only session + ``open_array`` + one
chunk, and counts the bytes it read meanwhile (``rchar``); then it reads 1,000 random chunks
with one ``vindex`` selection.

The repositories take minutes to build, so they are kept in ``OUT/cache`` across runs.
A plain zarr store's read cost does not depend on the chunks it never opens, so its
directory holds the metadata and only the chunks that are read.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from benchmarks.common import as_buffer, run, set_many
from benchmarks.engines import create_repo
from benchmarks.harness import Case, Context, Metric, Round, remove
from benchmarks.worker import random_coords

SEED = 42
COUNT = 1000
FIXTURE_VERSION = 1
"""Part of the cache directory's name: bump it when the fixture's content changes."""


def _shape(ctx: Context) -> tuple[int, int]:
    return (1000, 100) if ctx.quick else (1000, 1000)


def _first(shape: tuple[int, int]) -> tuple[int, int]:
    """The chunk read first: somewhere in the middle, not at an edge of the grid."""
    return (shape[0] * 617 // 1000, shape[1] * 383 // 1000)


def _chunk(i: int, j: int, cols: int) -> bytes:
    return np.float64(i * cols + j).tobytes()


def _build(ctx: Context, engine: str, shape: tuple[int, int]) -> Path:
    """The cached repository (or plain directory) for ``engine``, built on first use."""
    name = f"large-v{FIXTURE_VERSION}-{shape[0]}x{shape[1]}-{engine}"
    home = ctx.cache / name
    if (home / "complete.json").exists():
        return home / "repo"
    remove(home)
    home.mkdir(parents=True)
    print(f"    building {name} (cached for later runs)", flush=True)
    started = time.perf_counter()
    repo = create_repo(engine, "local", home / "repo")
    store = repo.writable()
    zarr.create_array(store, name="big", shape=shape, chunks=(1, 1), dtype="f8", compressors=None)
    rows, cols = shape
    if engine == "zarr":
        wanted = [_first(shape), *random_coords(shape, COUNT, SEED)]
    else:
        wanted = [(i, j) for i in range(rows) for j in range(cols)]
    items = ((f"big/c/{i}/{j}", as_buffer(_chunk(i, j, cols))) for i, j in wanted)
    run(set_many(store, items, batch=5000))
    repo.commit("one chunk per element")
    info = {"seconds": time.perf_counter() - started}
    (home / "complete.json").write_text(json.dumps(info))
    return home / "repo"


def _sizes(repo: Path) -> dict[str, int]:
    """Bytes on disk of the largest manifest, all manifests, and the other metadata."""
    manifests = [p.stat().st_size for p in (repo / "manifests").glob("*") if p.is_file()]
    other = 0
    for sub in ("snapshots", "refs"):
        sizes = [p.stat().st_size for p in (repo / sub).rglob("*") if p.is_file()]
        # Only the tip snapshot is needed; refs are small and all may be listed.
        other += max(sizes, default=0) if sub == "snapshots" else sum(sizes)
    if (repo / "config").is_file():
        other += (repo / "config").stat().st_size
    return {
        "manifest_max": max(manifests, default=0),
        "manifest_total": sum(manifests),
        "metadata_other": other,
    }


def _worker(ctx: Context, engine: str, path: Path, shape: tuple[int, int]) -> dict[str, Any]:
    command = [
        ctx.python,
        "-m",
        "benchmarks.worker",
        "cold-read",
        f"--engine={engine}",
        f"--path={path}",
        f"--rows={shape[0]}",
        f"--cols={shape[1]}",
        "--first={},{}".format(*_first(shape)),
        f"--count={COUNT}",
        f"--seed={SEED}",
    ]
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=ctx.root, env=ctx.process_env(), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"worker failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = elapsed
    return result


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    shape = _shape(ctx)
    path = _build(ctx, engine, shape)
    sizes = _sizes(path) if engine != "zarr" else {}
    _worker(ctx, engine, path, shape)  # warm the page cache: "cold" means a new process
    for _ in range(ctx.rounds()):
        result = _worker(ctx, engine, path, shape)
        values: Round = {
            "cold_first": result["cold_first"],
            "random": result["random"],
            "process": result["process"],
        }
        if "bytes_first" in result:
            values["bytes_first"] = result["bytes_first"]
        if sizes:
            values["manifest_max"] = sizes["manifest_max"]
            values["manifest_total"] = sizes["manifest_total"]
            values["read_budget"] = sizes["manifest_max"] + sizes["metadata_other"] + 65536
        yield values


CASE = Case(
    id="4",
    title="Large arrays",
    summary=(
        "A 1000x1000 array in 1x1 chunks (1,000,000 chunks): open the repository and read "
        "one chunk in a new process (cold), then 1,000 random chunks."
    ),
    metrics=(
        Metric("cold_first", "cold open + first chunk", "s"),
        Metric("random", "then 1,000 random chunks", "s"),
        Metric("process", "whole process (start, imports, all reads)", "s", plot=False),
        Metric("bytes_first", "bytes read for open + first chunk", "bytes"),
        Metric("manifest_max", "largest manifest file", "bytes", plot=False),
        Metric("manifest_total", "all manifest files", "bytes", plot=False),
        Metric(
            "read_budget",
            "read budget: one manifest + snapshot, refs, config + 64 kB",
            "bytes",
            engines=("ick",),
            plot=False,
        ),
    ),
    run=measure,
    backends=("local",),
    notes=(
        "Local backend only: a new process cannot see another process's memory storage.",
        "Bytes read count every `read` system call of the process during the timed part "
        "(metadata, manifests, chunks; zarr's codec registry is loaded beforehand).",
        "The plain zarr directory holds only the chunks that are read (see above); "
        "`--quick` uses a 1000x100 array (100,000 chunks).",
    ),
)
