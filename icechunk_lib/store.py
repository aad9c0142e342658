"""``IcechunkStore``: the zarr ``Store`` over a session.

Zarr keys map onto the session's model: ``<path>/zarr.json`` is a node's metadata, keys below
an array that match its chunk key encoding are chunks, and any other key is kept as an extra
object (so the store honours the full ``zarr.abc.store.Store`` contract). The store keeps its
session (equality, pickling, dask tokens, read-only) and the session's ``Workspace``, the data
path every read and write calls directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from icechunk_lib import _sync
from icechunk_lib.errors import InvalidKeyError, ReadOnlySessionError
from icechunk_lib.format.snapshot import ARRAY, NodeSnapshot
from icechunk_lib.session import Session, workspace_of
from icechunk_lib.virtual.spec import VirtualChunkSpec, checked_ref
from icechunk_lib.virtual.writes import record_virtual_ref, record_virtual_refs
from icechunk_lib.workspace import UNLOADED
from icechunk_lib.zarr_keys import META_KEY, parse_array_meta, path_to_prefix

__all__ = ["IcechunkStore"]

_META, _CHUNK, _EXTRA, _OUTSIDE = 0, 1, 2, 3
"""Key kinds; ``_OUTSIDE``: in an array's chunk key space but no chunk of its grid."""
_META_SUFFIX = "/" + META_KEY
_KEY_CACHE_SIZE = 100_000


def _bounds(byte_range: ByteRequest | None, size: int) -> tuple[int, int]:
    """``[start, end)`` of a zarr byte request on an object of ``size`` bytes, with
    ``0 <= start <= end <= size``.

    Read as a Python slice of the whole value, as zarr's ``MemoryStore`` reads it (negative
    offsets count from the end), so every kind of key answers alike whatever its size or
    where its bytes live; a suffix longer than the value is all of it.
    """
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, RangeByteRequest):
        start, end = byte_range.start, byte_range.end
    elif isinstance(byte_range, OffsetByteRequest):
        start, end = byte_range.offset, size
    elif isinstance(byte_range, SuffixByteRequest):
        start, end = max(size - byte_range.suffix, 0), size
    else:
        raise TypeError(f"Unexpected byte_range, got {byte_range}.")
    start, end, _ = slice(start, end).indices(size)
    return start, max(start, end)


class IcechunkStore(Store):
    """A zarr v3 ``Store`` whose reads and writes go through an ick ``Session``."""

    supports_writes: bool = True
    supports_deletes: bool = True
    supports_listing: bool = True
    supports_partial_writes = False

    def __init__(self, session: Session, read_only: bool | None = None) -> None:
        if read_only is None:
            read_only = session.read_only
        if not read_only and session.read_only:
            raise ReadOnlySessionError("open a writable store")
        super().__init__(read_only=read_only)
        self._session = session
        # The data path, kept so a get or set reaches it without going through the session.
        self._workspace = workspace_of(session)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_workspace"]  # the session's own, restored from it
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._workspace = workspace_of(self._session)

    @property
    def session(self) -> Session:
        """The session this store reads and writes through."""
        return self._session

    @property
    def supports_consolidated_metadata(self) -> bool:
        """False: zarr must not write consolidated metadata here (overrides ``Store``)."""
        # Consolidated metadata would be a second, stale copy; the snapshot already is one.
        return False

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IcechunkStore)
            and self._session == other._session
            and self.read_only == other.read_only
        )

    def __hash__(self) -> int:
        return hash((self._session, self.read_only))

    def __repr__(self) -> str:
        return f"IcechunkStore({self._session!r})"

    def __dask_tokenize__(self) -> tuple[object, ...]:
        """Dask token from the session's (see ``Session.__dask_tokenize__``)."""
        return ("ick-store", self.read_only, *self._session.__dask_tokenize__())

    def with_read_only(self, read_only: bool = False) -> IcechunkStore:
        """A store over the same session with another read-only flag (overrides ``Store``)."""
        return IcechunkStore(self._session, read_only=read_only)

    # --- key resolution ------------------------------------------------------------------------

    async def _resolve(self, key: str, *, remember: bool = True) -> tuple[int, Any, Any]:
        """Classify ``key``: (META, path, node) | (CHUNK, node, coords) | (EXTRA, key, None).

        Hot paths look in the workspace's ``key_cache`` themselves and call this only on a miss.
        ``remember=False`` (chunk writes: most keys are written once) keeps the cache, and
        the objects a commit must free, small.
        """
        cache = self._workspace.key_cache
        hit = cache.get(key)
        if hit is not None:
            return hit
        result = await self._classify(key)
        if not remember and result[0] == _CHUNK:
            return result
        if len(cache) >= _KEY_CACHE_SIZE:
            cache.clear()
        cache[key] = result
        return result

    async def _classify(self, key: str) -> tuple[int, Any, Any]:
        """(META, path, node) | (CHUNK, node, coords) | (OUTSIDE, node, info) | (EXTRA, key,
        None). A key in an array's chunk key space naming no chunk of its grid (wrong rank,
        not canonical decimal, past the grid) is OUTSIDE: absent for reads, refused for
        writes, so nothing a commit cannot index gets in."""
        nodes = await self._workspace.nodes()
        if key == META_KEY:
            return _META, "/", nodes.get("/")
        if key.endswith(_META_SUFFIX):
            path = "/" + key[: -len(_META_SUFFIX)]
            return _META, path, nodes.get(path)
        i = len(key)
        while True:
            i = key.rfind("/", 0, i)
            node = nodes.get("/" + key[:i] if i > 0 else "/")
            if node is not None and node.kind == ARRAY:
                info = parse_array_meta(node.meta)
                if info is not None:
                    suffix = key[i + 1 :]
                    coords = info.parse_chunk_key(suffix)
                    if coords is not None:
                        return _CHUNK, node, coords
                    if info.claims(suffix):
                        return _OUTSIDE, node, info
                break
            if i <= 0:
                break
        return _EXTRA, key, None

    # --- reads ---------------------------------------------------------------------------------

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Read a key, or a byte range of it; None if absent (overrides ``Store.get``).

        Raises:
            CorruptObjectError: stored bytes do not match what the snapshot records (a
                ``MissingObjectError`` if they are gone).
        """
        ws = self._workspace
        hit = ws.key_cache.get(key)
        if hit is None:
            hit = await self._resolve(key)
        if hit[0] == _CHUNK and byte_range is None:  # the hot path: a whole chunk
            ref = ws.cached_chunk_ref(hit[1], hit[2])
            if ref is UNLOADED:
                ref = await ws.chunk_ref(hit[1], hit[2])
            if ref is None:
                return None
            return prototype.buffer.from_bytes(await ws.read_ref(ref))
        data = await self._get_bytes_or_none(key, byte_range)
        return None if data is None else prototype.buffer.from_bytes(data)

    async def _get_bytes_or_none(self, key: str, byte_range: ByteRequest | None) -> bytes | None:
        ws = self._workspace
        kind, a, b = await self._resolve(key)
        if kind == _CHUNK:
            ref = await ws.chunk_ref(a, b)
            if ref is None:
                return None
            start, end = _bounds(byte_range, ref.length)
            return await ws.read_ref(ref, start, end)
        if kind == _META:
            if b is None:
                return None
            meta: bytes = b.meta
            start, end = _bounds(byte_range, len(meta))
            return meta[start:end]
        if kind == _OUTSIDE:
            return None
        extra = await ws.get_extra(key)
        if extra is None:
            return None
        start, end = _bounds(byte_range, extra.length)
        return await ws.read_extra(extra, start, end)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Read many (key, range) pairs concurrently (overrides ``Store``)."""
        limit = asyncio.Semaphore(self._session.config.get_partial_values_concurrency)

        async def one(key: str, rng: ByteRequest | None) -> Buffer | None:
            async with limit:
                return await self.get(key, prototype, rng)

        return list(await asyncio.gather(*(one(k, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        """Whether ``key`` holds a value (overrides ``Store``); no bytes are read."""
        ws = self._workspace
        hit = ws.key_cache.get(key)
        kind, a, b = hit if hit is not None else await self._resolve(key)
        if kind == _CHUNK:
            ref = ws.cached_chunk_ref(a, b)
            if ref is UNLOADED:
                ref = await ws.chunk_ref(a, b)
            return ref is not None
        if kind == _META:
            return b is not None
        if kind == _OUTSIDE:
            return False
        return await self._workspace.get_extra(key) is not None

    async def getsize(self, key: str) -> int:
        """Size in bytes from metadata alone, without reading the object (overrides ``Store``).

        Raises:
            FileNotFoundError: nothing is stored at ``key``.
        """
        kind, a, b = await self._resolve(key)
        size: int | None = None
        if kind == _CHUNK:
            ref = await self._workspace.chunk_ref(a, b)
            size = None if ref is None else ref.length
        elif kind == _META:
            size = None if b is None else len(b.meta)
        elif kind == _OUTSIDE:
            size = None
        else:
            extra = await self._workspace.get_extra(key)
            size = None if extra is None else extra.length
        if size is None:
            raise FileNotFoundError(key)
        return size

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Blocking ``get`` for sync callers (zarr's ``SupportsGetSync``)."""
        return _sync.run(self.get(key, prototype or default_buffer_prototype(), byte_range))

    def set_sync(self, key: str, value: Buffer) -> None:
        """Blocking ``set`` (zarr's ``SupportsSetSync``)."""
        _sync.run(self.set(key, value))

    def delete_sync(self, key: str) -> None:
        """Blocking ``delete`` (zarr's ``SupportsDeleteSync``)."""
        _sync.run(self.delete(key))

    # --- writes --------------------------------------------------------------------------------

    async def set(self, key: str, value: Buffer) -> None:
        """Write a key (overrides ``Store.set``): metadata, chunk, or extra object.

        Raises:
            ValueError: the store is read-only (``ReadOnlySessionError`` if its session is).
            InvalidKeyError: a key in an array's chunk key space naming no chunk of its grid.
            InvalidNameError: metadata the node tree cannot hold (a node inside an array).
            TypeError: ``value`` is not a zarr ``Buffer``.
        """
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(f"IcechunkStore.set(): `value` must be a Buffer, got {type(value)}")
        hit = self._workspace.key_cache.get(key)
        kind, a, b = hit if hit is not None else await self._resolve(key, remember=False)
        if kind == _CHUNK:
            # bytes, not a view of zarr's buffer: a view measured no faster on either backend.
            await self._workspace.set_chunk(a, b, value.to_bytes())
        elif kind == _META:
            await self._workspace.set_node(a, value.to_bytes())
        elif kind == _OUTSIDE:
            raise InvalidKeyError(key, f"it names no chunk of array {a.path}: {b.describe_grid()}")
        else:
            await self._workspace.set_extra(key, value.to_bytes())

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        """Write only if ``key`` is absent; atomic within the session (overrides ``Store``).

        Raises:
            ValueError: the store is read-only (see ``set`` for the rest).
        """
        self._check_writable()
        async with self._workspace.check_then_set_lock():
            if not await self.exists(key):
                await self.set(key, value)

    # --- virtual references (Icechunk's API) --------------------------------------------------

    def set_virtual_ref(
        self,
        key: str,
        location: str,
        *,
        offset: int,
        length: int,
        checksum: str | datetime | None = None,
        validate_container: bool = True,
    ) -> None:
        """Point the chunk at ``key`` (e.g. ``"temp/c/0/1"``) at ``length`` bytes from
        ``offset`` of the object at ``location`` (e.g. ``"s3://bucket/file.nc"``).

        ``checksum`` is the object's ETag (text) or a time it had not changed since (a
        datetime): reads then refuse the object once it no longer matches.

        Raises:
            InvalidKeyError: ``key`` names no chunk of an array.
            VirtualContainerNotFoundError: ``validate_container`` and no declared container
                holds ``location``.
            InvalidVirtualLocationError: the location is malformed or could leave its container.
            InvalidInputError: a bad offset, length or checksum.
        """
        _sync.run(
            self.set_virtual_ref_async(
                key,
                location,
                offset=offset,
                length=length,
                checksum=checksum,
                validate_container=validate_container,
            )
        )

    async def set_virtual_ref_async(
        self,
        key: str,
        location: str,
        *,
        offset: int,
        length: int,
        checksum: str | datetime | None = None,
        validate_container: bool = True,
    ) -> None:
        """``set_virtual_ref`` for async callers."""
        self._check_writable()
        if isinstance(checksum, datetime):
            ref = checked_ref(location, offset, length, last_updated_at=checksum)
        else:
            ref = checked_ref(location, offset, length, etag=checksum)
        kind, a, b = await self._resolve(key, remember=False)
        if kind != _CHUNK:
            raise InvalidKeyError(key, "it names no chunk of an array")
        await record_virtual_ref(self._workspace, a, b, ref, validate=validate_container)

    def set_virtual_refs(
        self,
        array_path: str,
        chunks: list[VirtualChunkSpec],
        *,
        validate_containers: bool = True,
    ) -> list[tuple[int, ...]] | None:
        """Record many virtual chunks of the array at ``array_path`` at once.

        With ``validate_containers``, chunks whose location no declared container holds are
        skipped; their indices are returned (None: every chunk was recorded).

        Raises:
            NodeNotFoundError: no array at ``array_path``.
            InvalidInputError: a malformed spec or an index outside the chunk grid (nothing
                is recorded then).
        """
        return _sync.run(
            self.set_virtual_refs_async(array_path, chunks, validate_containers=validate_containers)
        )

    async def set_virtual_refs_async(
        self,
        array_path: str,
        chunks: list[VirtualChunkSpec],
        *,
        validate_containers: bool = True,
    ) -> list[tuple[int, ...]] | None:
        """``set_virtual_refs`` for async callers."""
        self._check_writable()
        return await record_virtual_refs(
            self._workspace, array_path, chunks, validate=validate_containers
        )

    async def delete(self, key: str) -> None:
        """Delete a key (overrides ``Store``). Deleting ``zarr.json`` deletes that node.

        Raises:
            ValueError: the store is read-only.
        """
        self._check_writable()
        kind, a, b = await self._resolve(key)
        if kind == _CHUNK:
            if await self._workspace.chunk_ref(a, b) is not None:
                await self._workspace.delete_chunk(a, b)
        elif kind == _META:
            if b is not None:
                await self._workspace.delete_node(a)
        elif kind == _EXTRA:
            await self._workspace.delete_extras([key])
        # _OUTSIDE: no such chunk exists (a grid that shrank dropped its chunks), nothing to do

    async def delete_dir(self, prefix: str) -> None:
        """Delete everything below ``prefix``; whole nodes cost metadata only (overrides).

        Raises:
            ValueError: the store is read-only.
        """
        self._check_writable()
        prefix = prefix.strip("/")
        base = prefix + "/" if prefix else ""
        ws = self._workspace
        await ws.delete_tree("/" + prefix)  # "" gives "/": everything
        await ws.delete_extras([k for k in ws.extra_keys() if k.startswith(base)])
        # A prefix inside an array (e.g. "arr/c/1") deletes the chunks below it.
        nodes = await ws.nodes()
        for path, node in list(nodes.items()):
            kp = path_to_prefix(path)
            if node.kind == ARRAY and base.startswith(kp) and base != kp:
                info = parse_array_meta(node.meta)
                if info is None:
                    continue
                async for coords, _ in ws.iter_chunks(node):
                    if (kp + info.chunk_key(coords)).startswith(base):
                        await ws.delete_chunk(node, coords)

    async def clear(self) -> None:
        """Delete every key in the session (overrides ``Store.clear``)."""
        await self.delete_dir("")

    # --- listing -------------------------------------------------------------------------------

    async def _chunk_keys(self, node: NodeSnapshot, kp: str) -> AsyncIterator[str]:
        info = parse_array_meta(node.meta)
        if info is None:
            return
        async for coords, _ in self._workspace.iter_chunks(node):
            # Only chunks of the grid are listed: what get and exists can see.
            if info.contains(coords):
                yield kp + info.chunk_key(coords)

    def list(self) -> AsyncIterator[str]:
        """Every key of the session (overrides ``Store``)."""
        return self.list_prefix("")

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Every key starting with ``prefix`` (overrides ``Store``)."""
        nodes = await self._workspace.nodes()
        for path, node in list(nodes.items()):
            kp = path_to_prefix(path)
            meta_key = kp + META_KEY
            if meta_key.startswith(prefix):
                yield meta_key
            if node.kind == ARRAY and (kp.startswith(prefix) or prefix.startswith(kp)):
                async for key in self._chunk_keys(node, kp):
                    if key.startswith(prefix):
                        yield key
        for key in self._workspace.extra_keys():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """Names directly below ``prefix`` (overrides ``Store``); arrays below are not scanned."""
        prefix = prefix.strip("/")
        base = prefix + "/" if prefix else ""
        nodes = await self._workspace.nodes()
        seen: set[str] = set()

        def child(key: str) -> str | None:
            if not key.startswith(base) or key == base:
                return None
            return key[len(base) :].split("/", 1)[0]

        for path, node in list(nodes.items()):
            kp = path_to_prefix(path)
            if kp == base:
                seen.add(META_KEY)
            elif kp.startswith(base):
                name = child(kp)
                if name:
                    seen.add(name)
                continue
            if node.kind == ARRAY and base.startswith(kp):
                info = parse_array_meta(node.meta)
                if kp == base and info is not None and info.prefix:
                    # Every chunk key of the default encoding starts with the same name.
                    async for _ in self._workspace.iter_chunks(node):
                        seen.add(info.prefix)
                        break
                    continue
                async for key in self._chunk_keys(node, kp):
                    name = child(key)
                    if name:
                        seen.add(name)
        for key in self._workspace.extra_keys():
            name = child(key)
            if name:
                seen.add(name)
        for name in sorted(seen):
            yield name
