"""Case 9 (on demand): virtual chunks: record 1,000,000 references and commit, read 1,000.

Write: a new repository declares one local-file container; an array of 1,000 x 1,000 chunks
gets a virtual reference for every chunk with one ``set_virtual_refs`` call (the
``VirtualChunkSpec`` s are built beforehand, outside the timing, pointing into 100 source
files), then the session commits. Both steps are timed, with the peak resident memory the
``set_virtual_refs`` call adds.

Read: the bench writes one local file holding 1,000 chunks of 8 KiB (raw float64, no codec
but ``bytes``), points an array's 1,000 chunks at them, commits, and times
``zarr.open_array(store=session.store)[...]`` on a new read-only session, checking the values.

Run it with ``--cases 9`` (``all`` leaves it out: Icechunk takes tens of seconds per round).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from benchmarks.engines import import_engine
from benchmarks.harness import Case, Context, Metric, PeakMemory, Round, remove, stopwatch

GRID = (1000, 1000)
"""Chunk grid of the written array: 1,000,000 chunks (100 x 316 with ``--quick``)."""
QUICK_GRID = (100, 316)
SOURCES = 100
"""Source files the write's references point into (they need not exist to be recorded)."""
READ_CHUNKS = 1000
READ_CHUNK = 1024
"""float64 elements per read chunk: 8 KiB."""


def _repo(module: Any, backend: str, path: Path, sources: Path) -> Any:
    """A new repository that declares (and authorises) ``sources`` as a container."""
    prefix = sources.resolve().as_uri() + "/"
    config = module.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        module.VirtualChunkContainer(prefix, module.local_filesystem_store(str(sources)))
    )
    if backend == "memory":
        storage = module.in_memory_storage()
    elif backend == "local":
        storage = module.local_filesystem_storage(str(path / "repo"))
    else:
        raise ValueError(f"case 9 runs on memory and local, not {backend!r}")
    return module.Repository.create(
        storage,
        config,
        authorize_virtual_chunk_access=module.containers_credentials({prefix: None}),
    )


def _specs(module: Any, prefix: str, grid: tuple[int, int]) -> list[Any]:
    cols = grid[1]
    return [
        module.VirtualChunkSpec([i // cols, i % cols], f"{prefix}f{i % SOURCES:03d}.nc", i * 32, 32)
        for i in range(grid[0] * cols)
    ]


def _write_round(ctx: Context, engine: str, backend: str, rnd: int) -> Round:
    module = import_engine(engine)
    path = ctx.tempdir(f"c9-{engine}-{backend}-{rnd}")
    try:
        sources = path / "sources"
        sources.mkdir()
        repo = _repo(module, backend, path, sources)
        grid = QUICK_GRID if ctx.quick else GRID
        session = repo.writable_session("main")
        zarr.create_array(
            session.store, name="v", shape=(grid[0], grid[1] * 8), chunks=(1, 8), dtype="f4"
        )
        session.commit("array")
        session = repo.writable_session("main")
        specs = _specs(module, sources.resolve().as_uri() + "/", grid)
        with PeakMemory() as mem, stopwatch(profile="set_virtual_refs") as t_set:
            skipped = session.store.set_virtual_refs("v", specs)
        assert not skipped, f"{engine} skipped {len(skipped)} references"
        del specs
        with stopwatch(profile="commit_virtual") as t_commit:
            session.commit("virtual")
        values: Round = {"set_refs": t_set.seconds, "commit_refs": t_commit.seconds}
        if mem.megabytes is not None:
            values["mem_set_refs"] = mem.megabytes
        return values
    finally:
        remove(path)


class _ReadFixture:
    """A committed array whose 1,000 chunks are virtual references into one local file."""

    def __init__(self, ctx: Context, engine: str, backend: str) -> None:
        self.module = import_engine(engine)
        self.path = ctx.tempdir(f"c9-read-{engine}-{backend}")
        sources = self.path / "sources"
        sources.mkdir()
        self.expected = np.arange(READ_CHUNKS * READ_CHUNK, dtype="<f8")
        (sources / "data.bin").write_bytes(self.expected.tobytes())
        self.repo = _repo(self.module, backend, self.path, sources)
        session = self.repo.writable_session("main")
        zarr.create_array(
            session.store,
            name="r",
            shape=(READ_CHUNKS * READ_CHUNK,),
            chunks=(READ_CHUNK,),
            dtype="<f8",
            compressors=None,
            filters=None,
        )
        location = (sources / "data.bin").resolve().as_uri()
        size = READ_CHUNK * 8
        specs = [
            self.module.VirtualChunkSpec([i], location, i * size, size) for i in range(READ_CHUNKS)
        ]
        session.store.set_virtual_refs("r", specs)
        session.commit("virtual chunks")

    def read(self) -> np.ndarray[Any, Any]:
        session = self.repo.readonly_session(branch="main")
        return np.asarray(zarr.open_array(store=session.store, path="r", mode="r")[...])


def _unsupported(engine: str, exc: Exception) -> bool:
    """Whether ``exc`` says this ick build cannot read virtual chunks yet."""
    if engine != "ick":
        return False
    from icechunk_lib.errors import SessionError

    return isinstance(exc, SessionError) and "not supported" in str(exc)


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    fixture = _ReadFixture(ctx, engine, backend)
    try:
        can_read = True
        try:
            np.testing.assert_array_equal(fixture.read(), fixture.expected)  # warm-up + check
        except Exception as exc:
            if not _unsupported(engine, exc):
                raise
            can_read = False
            print(
                f"    {engine}: the read of virtual chunks is skipped: this build cannot read "
                f"them yet ({exc})",
                file=sys.stderr,
            )
        for rnd in range(ctx.rounds(3)):
            values = _write_round(ctx, engine, backend, rnd)
            if can_read:
                with stopwatch(profile="read_virtual") as t_read:
                    data = fixture.read()
                values["read_1k"] = t_read.seconds * 1e3
                if not np.array_equal(data, fixture.expected):
                    raise AssertionError(f"{engine} read wrong values from virtual chunks")
            yield values
    finally:
        remove(fixture.path)


CASE = Case(
    id="9",
    title="Virtual chunks",
    summary=(
        "Record 1,000,000 virtual references with one set_virtual_refs call and commit them; "
        "read an array of 1,000 virtual chunks (8 KiB each, in one local file) through zarr."
    ),
    metrics=(
        Metric("set_refs", "set_virtual_refs, 1M refs", "s"),
        Metric("commit_refs", "commit of 1M virtual refs", "s"),
        Metric("mem_set_refs", "set_virtual_refs, peak memory", "MB", plot=False),
        Metric("read_1k", "read 1,000 virtual chunks (8 MB)", "ms"),
    ),
    run=measure,
    backends=("memory", "local"),
    engines=("ick", "icechunk"),
    on_demand=True,
    notes=(
        "Run on demand: `--cases 9`. A plain zarr store has no virtual chunks.",
        "`--quick` records 31,600 references instead of 1,000,000.",
        "The specs are built before the timing; the memory figure is what the call adds.",
        "The read is skipped (no figure) for an ick build that cannot read virtual chunks.",
    ),
)
