"""Import a plain Zarr v3 store into a session, changing only what differs from the source.

``zarr.json`` documents are copied byte for byte and chunks are compared by length and xxh3-64
checksum with the refs the session already holds, so importing a slightly changed source again
writes (and later commits) only the changed chunks. Nodes and chunks missing from the source are
deleted, so afterwards the destination tree mirrors the source exactly.

The source must be the root of a Zarr v3 store (a ``zarr.json`` at its top) and every
``zarr.json`` in it must be metadata zarr can open; otherwise the import refuses before it
changes anything, so a mistyped path cannot replace a branch's tree with whatever lies below it.
Opening and reading the source live in ``import_source``; this module changes the session.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.errors import (
    ImportSourceError,
    ImportWouldDeleteError,
    InvalidNameError,
    ReadOnlySessionError,
)
from icechunk_lib.format import content_checksum
from icechunk_lib.format.manifest import VIRTUAL
from icechunk_lib.format.snapshot import ARRAY, NodeSnapshot
from icechunk_lib.names import validate_node_path
from icechunk_lib.ops.import_source import V2_NODE_KEYS, SourceReader, ZarrSource, open_source
from icechunk_lib.ops.source_meta import check_source_meta
from icechunk_lib.session import workspace_of
from icechunk_lib.workspace import Workspace
from icechunk_lib.zarr_keys import META_KEY, ArrayInfo, Coords, parse_array_meta

if TYPE_CHECKING:
    from icechunk_lib.session import Session

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ImportStats",
    "ProgressCallback",
    "ZarrSource",
    "import_zarr",
    "import_zarr_async",
]

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; ``total`` is 0 while still unknown."""

DEFAULT_CONCURRENCY = 32

_META_SUFFIX = "/" + META_KEY
# Minimal Zarr v3 group metadata, for ancestors of ``dest`` that do not exist yet.
_GROUP_META = b'{"zarr_format":3,"node_type":"group","attributes":{}}'
_SCAN_REPORT_EVERY = 256


@dataclass
class ImportStats:
    """What an import did to the session; unchanged chunks were read and compared only."""

    groups_created: int = 0
    groups_updated: int = 0
    groups_deleted: int = 0
    arrays_created: int = 0
    arrays_updated: int = 0
    arrays_deleted: int = 0
    chunks_written: int = 0
    chunks_unchanged: int = 0
    chunks_deleted: int = 0
    bytes_written: int = 0
    """Bytes of the chunks written (inline ones included)."""
    other_keys_skipped: int = 0
    """Source keys that are neither ``zarr.json`` nor a chunk of an array."""
    deleted_paths: list[str] = dataclasses.field(default_factory=list)
    """Nodes below ``dest`` that the source lacks, deleted with everything below them."""
    skipped_v2: list[str] = dataclasses.field(default_factory=list)
    """Source paths with Zarr v2 metadata (``.zgroup``, ``.zarray``) and no ``zarr.json``:
    not imported (their keys count in ``other_keys_skipped``)."""

    @property
    def changed(self) -> bool:
        """Whether the import changed anything in the session."""
        return bool(
            self.groups_created
            or self.groups_updated
            or self.groups_deleted
            or self.arrays_created
            or self.arrays_updated
            or self.arrays_deleted
            or self.chunks_written
            or self.chunks_deleted
        )

    def as_dict(self) -> dict[str, int]:
        """The counters by name, e.g. for ``--json`` output (the path lists are not counters)."""
        return {
            f.name: value
            for f in dataclasses.fields(self)
            if isinstance(value := getattr(self, f.name), int)
        }


def import_zarr(
    session: Session,
    source: ZarrSource,
    dest: str = "/",
    *,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    allow_deletes: bool = True,
) -> ImportStats:
    """Make the tree at ``dest`` in ``session`` match the Zarr v3 store ``source``.

    Blocking twin of ``import_zarr_async``; ``progress`` runs on zarr's event loop thread.
    """
    return _sync.run(
        import_zarr_async(
            session,
            source,
            dest,
            progress=progress,
            concurrency=concurrency,
            allow_deletes=allow_deletes,
        )
    )


async def import_zarr_async(
    session: Session,
    source: ZarrSource,
    dest: str = "/",
    *,
    progress: ProgressCallback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    allow_deletes: bool = True,
) -> ImportStats:
    """Make the tree at ``dest`` in ``session`` match the Zarr v3 store ``source``.

    Every source group and array appears at the same relative path below ``dest`` with the
    same ``zarr.json`` bytes; nodes below ``dest`` absent from the source are deleted. Chunks
    are written only when new or changed, and chunks absent from the source are deleted. At
    most ``concurrency`` source reads or session writes are in flight at a time. The session
    is not committed; if the import fails half way, discard the changes or import again.
    With ``allow_deletes=False`` an import that would delete nodes raises instead, before it
    changes anything; ``ImportStats.deleted_paths`` lists what an import deleted.

    Raises:
        ReadOnlySessionError: the session cannot write (checked before reading anything).
        InvalidImportSourceError: the source has no ``zarr.json`` at its root, or one of its
            ``zarr.json`` is not metadata zarr can open (the error names the file and field).
        StorageError: the source does not exist or cannot be read.
        InvalidStorageURLError: the source URL is malformed or its scheme is unavailable.
        InvalidNameError: a source key is not a valid node path, or ``dest`` is inside an array.
        ImportWouldDeleteError: ``allow_deletes`` is False and nodes below ``dest`` are not in
            the source.
    """
    if session.read_only:
        raise ReadOnlySessionError("import a Zarr store")
    # A trailing slash is how people write a directory-like destination; accept it.
    dest = validate_node_path(dest.rstrip("/") or "/")
    store, name, owned = open_source(source)
    try:
        importer = _Importer(
            store=store,
            name=name,
            workspace=workspace_of(session),
            dest=dest,
            progress=progress,
            concurrency=concurrency,
            allow_deletes=allow_deletes,
        )
        return await importer.run()
    finally:
        if owned:
            store.close()


# --- the import --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArrayJob:
    """One array whose chunks to copy: source key prefix, session node, key layout."""

    prefix: str
    node: NodeSnapshot
    info: ArrayInfo
    fresh: bool
    """The node is new in this session, so it has no chunks to compare or delete."""
    nested: tuple[str, ...]
    """Key prefixes of source nodes below this array (invalid Zarr, but keys are theirs)."""


class _Pool:
    """Run coroutines with at most ``limit`` in flight; the first failure cancels the rest."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, coro: Coroutine[Any, Any, None]) -> None:
        """Start ``coro`` once a slot is free (raising the error of any task that failed)."""
        try:
            while len(self._tasks) >= self._limit:
                await self._reap(asyncio.FIRST_COMPLETED)
        except BaseException:
            coro.close()  # never started: close it so it is not reported as never awaited
            raise
        self._tasks.add(asyncio.create_task(coro))

    async def _reap(self, when: str) -> None:
        done, self._tasks = await asyncio.wait(self._tasks, return_when=when)
        errors = [t.exception() for t in done if not t.cancelled()]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    async def __aenter__(self) -> _Pool:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                while self._tasks:
                    await self._reap(asyncio.ALL_COMPLETED)
        finally:
            # Reached with tasks left only on failure or cancellation: stop them all.
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()


def _node_path(dest: str, key_prefix: str) -> str:
    """Session path of the source node at ``key_prefix`` (``""`` or ``a/b/``) below ``dest``."""
    rel = key_prefix.rstrip("/")
    if not rel:
        return dest
    return validate_node_path(rel if dest == "/" else f"{dest}/{rel}")


def _outermost(prefixes: set[str]) -> list[str]:
    """The sorted prefixes (``a/b``) that lie below none of the others."""
    out: list[str] = []
    for p in sorted(prefixes):  # a parent sorts before its children
        if not any(p.startswith(o + "/") for o in out) and p != "":
            out.append(p)
    return out


def _ancestors(path: str) -> list[str]:
    """Proper ancestors of a node path, root first: ``/a/b`` -> ``["/", "/a"]``."""
    if path == "/":
        return []
    parts = path[1:].split("/")
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


@dataclass
class _Importer(SourceReader):
    """State of one import: the source it reads, the destination, counters and progress."""

    workspace: Workspace
    """The session's data path (``workspace_of``): nodes and chunks, not Zarr keys."""
    dest: str
    progress: ProgressCallback | None
    concurrency: int
    allow_deletes: bool
    stats: ImportStats = dataclasses.field(default_factory=ImportStats)
    chunk_keys: int = 0
    """Chunk keys found below the source arrays."""
    done: int = 0
    """Non-metadata source keys handled so far (the "chunks" progress)."""
    total: int = 0
    """Non-metadata source keys found by the scan."""

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    async def _scan(self) -> list[str]:
        """Keys of every ``zarr.json``; counts the other keys for progress and stats."""
        metas: list[str] = []
        v2_nodes: set[str] = set()
        listed = others = 0
        async with contextlib.aclosing(self._keys("")) as keys:
            async for key in keys:
                listed += 1
                if key == META_KEY or key.endswith(_META_SUFFIX):
                    metas.append(key)
                else:
                    others += 1
                    base, _, leaf = key.rpartition("/")
                    if leaf in V2_NODE_KEYS:
                        v2_nodes.add(base)
                if listed % _SCAN_REPORT_EVERY == 0:
                    self._report("scan", listed, 0)
        self._report("scan", listed, listed)
        if META_KEY not in metas:
            raise ImportSourceError(self.name, f"{META_KEY} vanished while importing")
        self.total = others
        v3_nodes = {m[: -len(META_KEY)].rstrip("/") for m in metas}
        self.stats.skipped_v2 = _outermost(v2_nodes - v3_nodes)
        return metas

    def _check_meta(self, key: str, data: bytes | None) -> bytes:
        """``data`` if zarr can open it as Zarr v3 metadata, else ``InvalidImportSourceError``."""
        if data is None:
            raise ImportSourceError(self.name, f"{key} vanished while importing")
        return check_source_meta(self.name, key, data)

    async def _read_metadata(self, keys: list[str]) -> dict[str, bytes]:
        """Source key prefix (``""``, ``a/b/``) -> checked ``zarr.json`` bytes."""
        metas: dict[str, bytes] = {}
        total = len(keys)

        async def one(key: str) -> None:
            metas[key[: -len(META_KEY)]] = self._check_meta(key, await self._read(key))
            self._report("metadata", len(metas), total)

        async with _Pool(self.concurrency) as pool:
            for key in keys:
                await pool.submit(one(key))
        return metas

    # --- nodes ------------------------------------------------------------------------------

    def _count(self, kind: int, what: str) -> None:
        name = f"{'arrays' if kind == ARRAY else 'groups'}_{what}"
        setattr(self.stats, name, getattr(self.stats, name) + 1)

    async def _apply_nodes(self, metas: dict[str, bytes]) -> list[_ArrayJob]:
        """Create, update and delete nodes below ``dest``; return the arrays to copy."""
        ws, dest = self.workspace, self.dest
        plan = {_node_path(dest, prefix): prefix for prefix in metas}
        nodes = await ws.nodes()
        for ancestor in _ancestors(dest):
            node = nodes.get(ancestor)
            if node is not None and node.kind == ARRAY:
                raise InvalidNameError("node", dest, f"{ancestor} is an array; it has no children")

        below = "/" if dest == "/" else dest + "/"
        before = {p: n for p, n in nodes.items() if p == dest or p.startswith(below)}
        missing = sorted(p for p in before if p not in plan)
        if missing and not self.allow_deletes:
            raise ImportWouldDeleteError(self.name, dest, missing)

        # Nothing is changed before this point, so a bad source leaves the session untouched.
        for ancestor in _ancestors(dest):
            if ancestor not in nodes:
                await ws.set_node(ancestor, _GROUP_META)
                self.stats.groups_created += 1
        await self._delete_missing_nodes(before, set(plan))
        self.stats.deleted_paths = missing

        jobs: list[_ArrayJob] = []
        prefixes = sorted(metas)
        for path in sorted(plan):
            prefix = plan[path]
            meta = metas[prefix]
            old = nodes.get(path)
            if old is not None and old.meta == meta:
                node, fresh = old, False
            else:
                node = await ws.set_node(path, meta)
                fresh = old is None or node.id != old.id
                if old is not None and fresh:
                    self._count(old.kind, "deleted")
                self._count(node.kind, "created" if fresh else "updated")
            info = parse_array_meta(node.meta)
            if info is not None:
                # Sorted, so the prefixes below this one follow it directly.
                start = end = bisect.bisect_right(prefixes, prefix)
                while end < len(prefixes) and prefixes[end].startswith(prefix):
                    end += 1
                jobs.append(_ArrayJob(prefix, node, info, fresh, tuple(prefixes[start:end])))
        return jobs

    async def _delete_missing_nodes(self, before: dict[str, NodeSnapshot], keep: set[str]) -> None:
        """Delete the nodes of ``before`` (all below ``dest``) not in ``keep`` (no chunk I/O)."""
        kept = sorted(keep)
        trees: set[str] = set()
        for path in sorted(before):  # parents sort before their children
            if path in keep:
                continue
            self._count(before[path].kind, "deleted")
            if any(a in trees for a in _ancestors(path)):
                continue  # already gone with a deleted tree
            sub = "/" if path == "/" else path + "/"
            i = bisect.bisect_left(kept, sub)
            if i < len(kept) and kept[i].startswith(sub):
                await self.workspace.delete_node(path)  # source nodes live below this one
            else:
                await self.workspace.delete_tree(path)
                trees.add(path)

    # --- chunks -----------------------------------------------------------------------------

    def _advance(self) -> None:
        self.done += 1
        self._report("chunks", self.done, max(self.total, self.done))

    async def _copy_chunk(self, job: _ArrayJob, key: str, coords: Coords) -> None:
        """Write one source chunk unless the session already holds the same bytes."""
        data = await self._read(key)
        if data is not None:
            ref = None if job.fresh else await self.workspace.chunk_ref(job.node, coords)
            found = (len(data), content_checksum(data))
            # A virtual chunk's checksum is its source's last_updated_at, not a content
            # checksum: only a native or inline chunk can hold the same bytes already.
            if ref is not None and ref.kind != VIRTUAL and (ref.length, ref.checksum) == found:
                self.stats.chunks_unchanged += 1
            else:
                await self.workspace.set_chunk(job.node, coords, data, checksum=found[1])
                self.stats.chunks_written += 1
                self.stats.bytes_written += len(data)
        self._advance()

    async def _copy_array(self, pool: _Pool, job: _ArrayJob) -> None:
        """Queue every chunk of one array, then delete the chunks the source lacks."""
        seen: set[Coords] = set()
        info = job.info
        grid = [-(-s // c) for s, c in zip(info.shape, info.chunk_shape, strict=True)]
        async with contextlib.aclosing(self._keys(job.prefix)) as keys:
            async for key in keys:
                suffix = key[len(job.prefix) :]
                if suffix == META_KEY or key.startswith(job.nested):
                    continue
                coords = job.info.parse_chunk_key(suffix)
                # A key beyond the grid (left by a resize, say) is no chunk zarr would read.
                if coords is None or not all(c < n for c, n in zip(coords, grid, strict=True)):
                    self._advance()
                    continue
                self.chunk_keys += 1
                seen.add(coords)
                await pool.submit(self._copy_chunk(job, key, coords))
        if job.fresh:
            return
        gone = [c async for c, _ in self.workspace.iter_chunks(job.node) if c not in seen]
        for coords in gone:
            await self.workspace.delete_chunk(job.node, coords)
        self.stats.chunks_deleted += len(gone)

    async def run(self) -> ImportStats:
        await self._check_root()
        metas = await self._read_metadata(await self._scan())
        jobs = await self._apply_nodes(metas)
        self._report("chunks", 0, self.total)
        async with _Pool(self.concurrency) as pool:
            for job in jobs:
                await self._copy_array(pool, job)
        self.stats.other_keys_skipped = max(self.total - self.chunk_keys, 0)
        end = max(self.total, self.done)
        self._report("chunks", end, end)
        return self.stats
