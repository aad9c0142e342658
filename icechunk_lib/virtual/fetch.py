"""Reading virtual chunks: from a reference to its bytes, checked, with neighbours coalesced.

``VirtualFetcher.read`` resolves a reference's location (declared container, authorised,
not escaping: ``VirtualResolver``), then hands the byte range to its container's source:
``file://`` files (``_local``), ``s3://`` and ``http(s)://`` objects (``_remote``). GCS and
Azure containers are refused with ``VirtualStoreUnsupportedError``.

Coalescing: the ranges of one object requested together (zarr reads a selection's chunks
concurrently, and ``get_partial_values`` too) are collected for a few turns of the event
loop, then fetched as few requests as ``_ranges.plan`` allows (gaps up to
``MAX_GAP`` bytes, requests up to ``MAX_REQUEST``) and split back per chunk.

A fetcher belongs to a repository object and is shared by its sessions (so are its
sources, with their connections). It pickles as its ``VirtualAccess``, so without secrets:
unpickled elsewhere, containers authorised with None or with credentials from the
environment read as before, and keys given in code fall back to the environment's.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from icechunk_lib.errors import (
    VirtualSourceError,
    VirtualSourceTruncatedError,
    VirtualStoreUnsupportedError,
)
from icechunk_lib.format.containers import (
    HttpStore,
    LocalFileSystemStore,
    S3CompatibleStore,
    S3Store,
    TigrisStore,
    split_url,
)
from icechunk_lib.storage import TIGRIS_ENDPOINT
from icechunk_lib.storage_settings import tuning_from_settings
from icechunk_lib.virtual._local import LocalSource
from icechunk_lib.virtual._ranges import MAX_GAP, MAX_REQUEST, plan
from icechunk_lib.virtual.access import VirtualAccess
from icechunk_lib.virtual.resolver import VirtualResolver, VirtualTarget

if TYPE_CHECKING:
    from icechunk_lib.format.config import RepositoryConfig
    from icechunk_lib.format.manifest import ChunkRef

__all__ = ["MAX_GAP", "MAX_REQUEST", "VirtualFetcher"]

_GATHER_TURNS = 3
"""Loop turns a batch waits for more ranges while it keeps growing (each turn lets every
task that is ready run up to its own read)."""
_RESOLVED_CACHE = 4096


class Source(Protocol):
    """Where a container's objects are read from (``LocalSource``, ``RemoteSource``)."""

    async def fetch(
        self, path: str, start: int, end: int, etag: str, since: int, location: str
    ) -> tuple[bytes, int | None]: ...


class _Batch:
    """Ranges of one object (and one set of checks) waiting to be fetched together."""

    __slots__ = ("etag", "location", "path", "seen", "since", "source", "wants")

    def __init__(self, source: Source, path: str, ref: ChunkRef) -> None:
        self.source = source
        self.path = path
        self.location = ref.location
        self.etag = ref.etag
        self.since = ref.checksum
        """``last_updated_at`` in seconds since the epoch (0: none)."""
        self.wants: list[tuple[int, int, asyncio.Future[bytes]]] = []
        self.seen = 0


_Key = tuple[int, str, str, int]
"""A batch's key: (id of the source, path, ETag, last_updated_at)."""


class VirtualFetcher:
    """Reads virtual chunks for the sessions of one repository object (see the module)."""

    def __init__(self, access: VirtualAccess | None = None) -> None:
        self._access = access if access is not None else VirtualAccess()
        self._lock = threading.Lock()
        self._sources: dict[tuple[str, str], Source] = {}
        self._resolver: (
            tuple[tuple[object, ...], VirtualResolver, dict[str, tuple[Source, str]]] | None
        ) = None
        self._batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, _Batch]] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"VirtualFetcher({self._access!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The authorisation alone, which pickles without secrets; sources are rebuilt.
        return (VirtualFetcher, (self._access,))

    @property
    def access(self) -> VirtualAccess:
        """The containers the user authorised."""
        return self._access

    async def read(self, config: RepositoryConfig, ref: ChunkRef, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of virtual chunk ``ref`` (relative to the chunk;
        ``start < stop <= ref.length``), from its source as it was when referenced.

        Raises:
            VirtualContainerNotFoundError, VirtualContainerNotAuthorizedError,
            InvalidVirtualLocationError: the location cannot be read from (see the resolver).
            VirtualStoreUnsupportedError: its container's store cannot be read yet.
            VirtualSourceNotFoundError: the object is gone.
            VirtualSourceChangedError: it changed since the reference was made.
            VirtualSourceTruncatedError: it ends before the chunk does.
            VirtualSourceError: another failure (error reply, access denied, unreachable).
        """
        source, path = self._resolve(config, ref.location)
        loop = asyncio.get_running_loop()
        batches = self._batches.get(loop)
        if batches is None:
            with self._lock:
                batches = self._batches.setdefault(loop, {})
        key = (id(source), path, ref.etag, ref.checksum)
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = _Batch(source, path, ref)
            loop.call_soon(self._flush, loop, batches, key, batch, 0)
        future: asyncio.Future[bytes] = loop.create_future()
        batch.wants.append((ref.offset + start, ref.offset + stop, future))
        return await future

    # --- resolving locations to sources --------------------------------------------------

    def _resolve(self, config: RepositoryConfig, location: str) -> tuple[Source, str]:
        """The source and path below its container of ``location``, cached per config."""
        containers = config.virtual_chunk_containers
        # The declared containers as they are now: the dict may be replaced or edited in
        # place, and a longer prefix declared since takes its locations over.
        declared = tuple(containers.items()) if containers else ()
        cached = self._resolver
        if cached is None or cached[0] != declared:
            cached = (declared, VirtualResolver(containers, self._access), {})
            self._resolver = cached
        found = cached[2].get(location)
        if found is None:
            target = cached[1].resolve(location)
            found = (self._source(config, target, location), target.path)
            if len(cached[2]) >= _RESOLVED_CACHE:
                cached[2].clear()
            cached[2][location] = found
        return found

    def _source(self, config: RepositoryConfig, target: VirtualTarget, location: str) -> Source:
        cont = target.container
        key = (cont.url_prefix, repr(cont.store))
        with self._lock:
            source = self._sources.get(key)
            if source is None:
                lost = self._access.lost_static(cont.url_prefix)
                source = self._sources[key] = _new_source(config, target, location, lost)
            return source

    # --- batching ------------------------------------------------------------------------

    def _flush(
        self,
        loop: asyncio.AbstractEventLoop,
        batches: dict[_Key, _Batch],
        key: _Key,
        batch: _Batch,
        turns: int,
    ) -> None:
        """Fetch ``batch`` once it stopped growing (or waited its turns)."""
        if len(batch.wants) != batch.seen and turns < _GATHER_TURNS:
            batch.seen = len(batch.wants)
            loop.call_soon(self._flush, loop, batches, key, batch, turns + 1)
            return
        del batches[key]
        task = loop.create_task(self._fetch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, batch: _Batch) -> None:
        ranges = [(start, end) for start, end, _ in batch.wants]
        await asyncio.gather(*(self._request(batch, ranges, *request) for request in plan(ranges)))

    async def _request(
        self, batch: _Batch, ranges: list[tuple[int, int]], start: int, end: int, members: list[int]
    ) -> None:
        """One request for ``[start, end)``, its bytes split among the ranges ``members``."""
        wants = batch.wants
        try:
            data, size = await batch.source.fetch(
                batch.path, start, end, batch.etag, batch.since, batch.location
            )
        except BaseException as exc:
            for i in members:
                _fail(wants[i][2], exc)
            if not isinstance(exc, Exception):
                raise
            return
        for i in members:
            lo, hi = ranges[i]
            piece = data[lo - start : hi - start]
            future = wants[i][2]
            if future.done():
                continue
            if len(piece) != hi - lo:
                future.set_exception(VirtualSourceTruncatedError(batch.location, hi, size))
            else:
                future.set_result(piece)


def _fail(future: asyncio.Future[bytes], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)


def _new_source(
    config: RepositoryConfig, target: VirtualTarget, location: str, lost_static: bool
) -> Source:
    """The source serving ``target``'s container, as its store config says (``lost_static``:
    its keys given in code stayed behind in a pickle)."""
    cont, store = target.container, target.container.store
    parts = split_url(cont.url_prefix)
    assert parts is not None and parts[1] is not None  # a checked prefix
    root = unquote(parts[2])
    if isinstance(store, LocalFileSystemStore):
        return LocalSource(root)
    if not isinstance(store, S3Store | S3CompatibleStore | TigrisStore | HttpStore):
        raise VirtualStoreUnsupportedError(location, cont.url_prefix, store.label)
    try:  # imported on first use: the network machinery (aiohttp) loads only when needed
        from icechunk_lib.virtual._remote import HttpSource, S3Source
    except ImportError as exc:
        raise VirtualSourceError(
            location,
            f"reading {cont.url_prefix.split(':')[0]}:// virtual chunks needs aiohttp and "
            f's3fs: pip install "ick[s3]" ({exc})',
        ) from None

    tuning = tuning_from_settings(config.storage)
    if isinstance(store, HttpStore):
        return HttpSource(cont.url_prefix, root.lstrip("/"), tuning)
    tigris = isinstance(store, TigrisStore)
    options = store.opts if isinstance(store, TigrisStore) else store.options
    return S3Source(
        cont.url_prefix,
        parts[1],
        root.lstrip("/"),
        options,
        target.credentials,
        tuning,
        lost_static=lost_static,
        default_endpoint=TIGRIS_ENDPOINT if tigris else None,
        default_region="auto" if tigris else None,
    )
