"""A repository whose array mixes native, inline and virtual chunks, over real source files.

The virtual chunks are byte ranges of ``sources/blob.bin``: the encoded chunks zarr itself
wrote for the same array (same codecs) in a plain store, concatenated after a few bytes of
padding, so the ranges are what a reader decodes into ``Mixed.values``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import MemoryStore

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.format.manifest import ChunkRef
from icechunk_lib.session import workspace_of

SHAPE = (4, 256)
CHUNKS = (1, 256)
PAD = 100
"""Bytes before the first encoded chunk in the blob: offsets are never 0."""


@dataclass
class Mixed:
    """The repository, its sources, and what each row of ``/mixed`` holds."""

    repo: ic.Repository
    repo_path: Path
    sources: Path
    prefix: str
    """The container's prefix, ``file:///.../sources/``."""
    blob: str
    """The location of ``sources/blob.bin``."""
    ranges: list[tuple[int, int]]
    """(offset, length) in the blob of the encoded rows 2 and 3."""
    values: np.ndarray
    first: str
    """The snapshot of the first commit (row 0 native, row 1 inline, rows 2-3 virtual)."""

    def open(self, *, authorize: bool = True) -> ic.Repository:
        """The repository again, with its container authorised for reads."""
        storage = ic.local_filesystem_storage(str(self.repo_path))
        access = {self.prefix: None} if authorize else None
        return ic.Repository.open(storage, authorize_virtual_chunk_access=access)


def encoded_rows(values: np.ndarray) -> list[bytes]:
    """The bytes zarr stores for each chunk row of ``values`` (default codecs)."""
    store = MemoryStore()
    array = zarr.create_array(store, shape=values.shape, chunks=CHUNKS, dtype=values.dtype)
    array[:] = values
    proto = zarr.core.buffer.default_buffer_prototype()

    async def get(key: str) -> bytes:
        found = await store.get(key, proto)
        assert found is not None
        return found.to_bytes()

    return [_sync.run(get(f"c/{row}/0")) for row in range(values.shape[0])]


def build(base: Path, *, sources_inside_repo: bool = False) -> Mixed:
    """Create the repository under ``base`` and commit its first snapshot."""
    repo_path = base / "repo"
    sources = (repo_path if sources_inside_repo else base) / "sources"
    rng = np.random.default_rng(12)
    values = rng.random(SHAPE)
    values[1] = 7.0  # compresses to a few bytes: inline
    encoded = encoded_rows(values)
    blob = b"\xff" * PAD + encoded[2] + encoded[3]
    ranges = [(PAD, len(encoded[2])), (PAD + len(encoded[2]), len(encoded[3]))]
    prefix = f"file://{sources}/"
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(str(sources)))
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(repo_path)),
        config,
        authorize_virtual_chunk_access={prefix: None},
    )
    sources.mkdir(parents=True)  # after the repository: it is created in an empty place
    (sources / "blob.bin").write_bytes(blob)
    session = repo.writable_session("main")
    array = zarr.create_array(session.store, name="mixed", shape=SHAPE, chunks=CHUNKS, dtype="f8")
    array[0:2] = values[0:2]
    location = prefix + "blob.bin"
    for row, (offset, length) in zip((2, 3), ranges, strict=True):
        session.store.set_virtual_ref(f"mixed/c/{row}/0", location, offset=offset, length=length)
    first = session.commit("native, inline and virtual chunks")
    return Mixed(repo, repo_path, sources, prefix, location, ranges, values, first)


def chunk_ref(session: ic.Session, path: str, coords: tuple[int, ...]) -> ChunkRef | None:
    """The ref a session holds for one chunk (None: never written)."""
    ws = workspace_of(session)

    async def go() -> ChunkRef | None:
        node = (await ws.nodes())[path]
        return await ws.chunk_ref(node, coords)

    return _sync.run(go())


def files_state(directory: Path) -> dict[str, tuple[str, int]]:
    """Each file below ``directory``: its sha256 and modification time (ns)."""
    return {
        str(p.relative_to(directory)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def later(seconds: float = 1.0) -> dt.datetime:
    """A cut-off just after now: everything written so far is older."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
