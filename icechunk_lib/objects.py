"""Reads and writes of the repository's immutable objects, with in-process caches.

Snapshots, manifests and transaction logs never change once written, so they are cached by
id without invalidation. Concurrent requests for the same uncached object share one fetch.
Partial reads of chunks are checked here too (see ``ObjectStore.chunk_range``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from icechunk_lib.errors import CorruptObjectError, MissingObjectError, ObjectNotFoundError
from icechunk_lib.format import RepositoryConfig, content_checksum, encode_id
from icechunk_lib.format.expiration import ExpirationRecord
from icechunk_lib.format.snapshot import (
    NodeSnapshot,
    Snapshot,
    SnapshotHeader,
    decode_snapshot,
    decode_snapshot_header,
    encode_snapshot,
)
from icechunk_lib.format.txlog import TransactionLog, decode_txlog, encode_txlog
from icechunk_lib.storage import Storage
from icechunk_lib.zarr_keys import Coords

if TYPE_CHECKING:
    from icechunk_lib.format.manifest import ChunkRef, ChunkTable, ManifestFile

__all__ = [
    "CHUNKS",
    "CONFIG",
    "EXPIRATIONS",
    "MANIFESTS",
    "RANGE_VERIFY_LIMIT",
    "REFS",
    "SNAPSHOTS",
    "TRANSACTIONS",
    "ObjectStore",
    "chunk_key",
    "chunk_mismatch",
    "fetch_referenced",
]

CONFIG = "config"
REFS = "refs/"
SNAPSHOTS = "snapshots/"
MANIFESTS = "manifests/"
TRANSACTIONS = "transactions/"
CHUNKS = "chunks/"
EXPIRATIONS = "expirations/"

RANGE_VERIFY_LIMIT = 4 << 20
"""A partial read of a native chunk of at most this many bytes reads the whole chunk, checks
it against the manifest and keeps it for the next ranges (a zarr shard is read as its index,
then one range per inner chunk). Bigger chunks are read by range and only their size checked."""
_VERIFIED_CACHE_BYTES = 64 << 20
_EXISTS_IN_FLIGHT = 64

K = TypeVar("K")
V = TypeVar("V")


def chunk_key(chunk_id: bytes) -> str:
    """Storage key of a native chunk."""
    return CHUNKS + encode_id(chunk_id)


def chunk_mismatch(ref: ChunkRef, where: str, found: str = "") -> CorruptObjectError:
    """The error for a chunk file that is not the chunk its manifest row describes."""
    return CorruptObjectError(
        where,
        f"chunk content does not match the manifest (expected {ref.length} bytes with "
        f"checksum {ref.checksum:016x}{found}): the file was damaged, truncated, or "
        "replaced by another file",
    )


async def fetch_referenced(
    storage: Storage, key: str, byte_range: tuple[int, int] | None = None
) -> bytes:
    """Read an object the repository refers to; missing, it is ``MissingObjectError``.

    Everything read through here was named by a ref, a snapshot or a manifest, so a missing
    object means damage, not an absent key (zarr would read a ``FileNotFoundError`` as one).
    """
    try:
        return await storage.get(key, byte_range)
    except ObjectNotFoundError:
        raise MissingObjectError(key, storage.url) from None


class _LRU(Generic[V]):
    """A thread-safe LRU bounded by total weight."""

    def __init__(self, capacity: int, weigh: Callable[[V], int]) -> None:
        self._data: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._capacity = capacity
        self._weigh = weigh
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: str, value: V) -> None:
        weight = self._weigh(value)
        if weight > self._capacity:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._total -= old[1]
            self._data[key] = (value, weight)
            self._total += weight
            while self._total > self._capacity and self._data:
                _, (_, w) = self._data.popitem(last=False)
                self._total -= w


class ObjectStore:
    """Typed access to a repository's objects in a storage, with caches shared by sessions."""

    def __init__(self, storage: Storage, config: RepositoryConfig) -> None:
        self.storage = storage
        self.config = config
        self._snapshots: _LRU[Snapshot] = _LRU(config.caching.num_snapshots, lambda _: 1)
        self._headers: _LRU[SnapshotHeader] = _LRU(4096, lambda _: 1)
        self._manifests: _LRU[ManifestFile] = _LRU(
            config.caching.num_bytes_manifests, lambda m: m.nbytes()
        )
        self._verified: _LRU[bytes] = _LRU(_VERIFIED_CACHE_BYTES, len)
        self._sizes: _LRU[int] = _LRU(65536, lambda _: 1)
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self.expiration_records: dict[str, ExpirationRecord] = {}
        """Expiration records read so far, by id (immutable, so never invalidated; see
        ``lineage.load_lineage``)."""

    async def _shared(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        """Run ``load`` once for concurrent callers on the same event loop."""
        loop = asyncio.get_running_loop()
        fut = self._inflight.get(key)
        if fut is not None and fut.get_loop() is loop:
            return await asyncio.shield(fut)
        fut = loop.create_future()
        self._inflight[key] = fut
        try:
            value = await load()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            fut.set_result(value)
            return value
        finally:
            if self._inflight.get(key) is fut:
                del self._inflight[key]

    # --- snapshots -----------------------------------------------------------------------------

    async def fetch(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """``fetch_referenced`` from this repository's storage. Ids a caller names are checked
        first (Repository) and reported as ``SnapshotNotFoundError``."""
        return await fetch_referenced(self.storage, key, byte_range)

    async def _get_snapshot_bytes(self, snapshot_id: str) -> bytes:
        return await self.fetch(SNAPSHOTS + snapshot_id)

    async def snapshot(self, snapshot_id: str) -> Snapshot:
        cached = self._snapshots.get(snapshot_id)
        if cached is not None:
            return cached

        async def load() -> Snapshot:
            data = await self._get_snapshot_bytes(snapshot_id)
            snap = decode_snapshot(data, snapshot_id, path=self._where(SNAPSHOTS + snapshot_id))
            self._snapshots.put(snapshot_id, snap)
            return snap

        return await self._shared(SNAPSHOTS + snapshot_id, load)

    async def snapshot_header(self, snapshot_id: str) -> SnapshotHeader:
        """History fields of a snapshot, without materialising its node tree."""
        cached = self._headers.get(snapshot_id)
        if cached is not None:
            return cached
        full = self._snapshots.get(snapshot_id)
        if full is not None:
            header = SnapshotHeader(
                full.id, full.parent_id, full.written_at, full.message, full.metadata, full.ancestry
            )
        else:
            data = await self._get_snapshot_bytes(snapshot_id)
            header = decode_snapshot_header(
                data, snapshot_id, path=self._where(SNAPSHOTS + snapshot_id)
            )
        self._headers.put(snapshot_id, header)
        return header

    async def write_snapshot(self, snapshot: Snapshot) -> None:
        data = encode_snapshot(snapshot, compression_level=self.config.compression.level)
        await self.storage.put_if_absent(SNAPSHOTS + snapshot.id, data)
        self._snapshots.put(snapshot.id, snapshot)

    # --- manifests -----------------------------------------------------------------------------

    async def manifest(self, manifest_id: str) -> ManifestFile:
        cached = self._manifests.get(manifest_id)
        if cached is not None:
            return cached

        from icechunk_lib.format.manifest_codec import decode_manifest

        async def load() -> ManifestFile:
            key = MANIFESTS + manifest_id
            data = await self.fetch(key)
            manifest = decode_manifest(data, manifest_id, path=self._where(key))
            self._manifests.put(manifest_id, manifest)
            return manifest

        return await self._shared(MANIFESTS + manifest_id, load)

    async def write_manifest(self, manifest: ManifestFile) -> int:
        """Write a manifest and return its size in bytes."""
        from icechunk_lib.format.manifest_codec import encode_manifest

        data = encode_manifest(manifest, compression_level=self.config.compression.level)
        # Only a snapshot written after this returns can name the manifest: no partial
        # manifest is ever reachable, so the cheaper unpublished write is safe.
        await self.storage.put_new(MANIFESTS + manifest.id, data)
        self._manifests.put(manifest.id, manifest)
        return len(data)

    # --- transaction logs ----------------------------------------------------------------------

    async def transaction_log(self, snapshot_id: str) -> TransactionLog:
        key = TRANSACTIONS + snapshot_id
        data = await self.fetch(key)
        return decode_txlog(data, snapshot_id, path=self._where(key))

    async def write_transaction_log(self, log: TransactionLog) -> None:
        data = encode_txlog(log, compression_level=self.config.compression.level)
        await self.storage.put_if_absent(TRANSACTIONS + log.snapshot_id, data)

    # --- chunks --------------------------------------------------------------------------------

    async def chunk(self, ref: ChunkRef) -> bytes:
        """All of native chunk ``ref``, its length and checksum checked against the manifest."""
        key = chunk_key(ref.chunk_id)
        # A whole-object read needs no range (no slicing copy).
        rng = None if ref.offset == 0 else (ref.offset, ref.offset + ref.length)
        data = await self.fetch(key, rng)
        if len(data) != ref.length or (ref.checksum and content_checksum(data) != ref.checksum):
            raise chunk_mismatch(ref, self._where(key))
        return data

    async def chunk_range(self, ref: ChunkRef, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of native chunk ``ref``, a strict part of it, checked as far
        as the chunk's size allows (see ``RANGE_VERIFY_LIMIT``)."""
        key = chunk_key(ref.chunk_id)
        if ref.length <= RANGE_VERIFY_LIMIT:
            tag = f"{key}:{ref.offset}:{ref.length}:{ref.checksum}"
            whole = self._verified.get(tag)
            if whole is None:

                async def load() -> bytes:
                    data = await self.chunk(ref)
                    self._verified.put(tag, data)
                    return data

                whole = await self._shared(tag, load)
            return whole[start:stop]
        data = await self.fetch(key, (ref.offset + start, ref.offset + stop))
        if len(data) != stop - start:
            raise chunk_mismatch(ref, self._where(key), ", the range is past the file's end")
        if self._sizes.get(key) is None:
            # Immutable, so one size check per chunk and process: a stat, or a HEAD request.
            size = await self.storage.size(key)
            own_file = ref.offset == 0  # ick writes one chunk per file; others may pack them
            if size != ref.length if own_file else size < ref.offset + ref.length:
                raise chunk_mismatch(ref, self._where(key), f", the file has {size}")
            self._sizes.put(key, size)
        return data

    async def node_tables(self, node: NodeSnapshot) -> list[ChunkTable]:
        """The chunk tables of array ``node``, one per manifest piece that holds it, read
        concurrently.

        Raises:
            MissingObjectError: a manifest of the node is gone from storage.
        """
        manifests = await asyncio.gather(*(self.manifest(m.manifest_id) for m in node.manifests))
        return [m.tables[node.id] for m in manifests if node.id in m.tables]

    async def chunk_refs(
        self, node: NodeSnapshot, changes: Mapping[Coords, ChunkRef | None] | None = None
    ) -> AsyncIterator[tuple[Coords, ChunkRef]]:
        """Every chunk of array ``node``: its committed refs overlaid with ``changes`` (a
        session's, ``None`` meaning deleted), in no particular order."""
        changes = changes or {}
        for mref in node.manifests:
            table = (await self.manifest(mref.manifest_id)).tables.get(node.id)
            if table is None:
                continue
            for row, c in enumerate(table.coords().tolist()):
                coords = tuple(c)
                if coords not in changes:
                    yield coords, table.ref(row)
        for coords, ref in list(changes.items()):
            if ref is not None:
                yield coords, ref

    async def missing(self, keys: Iterable[str]) -> list[str]:
        """Those of ``keys`` the storage does not hold, sorted (checked concurrently)."""
        limit = asyncio.Semaphore(_EXISTS_IN_FLIGHT)

        async def present(key: str) -> bool:
            async with limit:
                return await self.storage.exists(key)

        ordered = sorted(keys)
        found = await asyncio.gather(*(present(k) for k in ordered))
        return [k for k, ok in zip(ordered, found, strict=True) if not ok]

    def _where(self, key: str) -> str:
        return f"{key} in {self.storage.url}"
