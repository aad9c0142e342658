"""Sessions: a view of one snapshot plus uncommitted changes, committed atomically.

Reads go through the change set, then the snapshot's node tree, then its manifests. Chunk
bytes are written to storage as the session writes them; the commit only writes metadata and
swaps the branch ref. Safe for concurrent use from threads and asyncio tasks.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from icechunk_lib import _sync
from icechunk_lib.changes import NodeChanges, node_changes
from icechunk_lib.chunk_changes import ChunkChanges
from icechunk_lib.errors import (
    ConflictError,
    InvalidNameError,
    NodeNotFoundError,
    ReadOnlySessionError,
    RebaseFailedError,
    SessionError,
)
from icechunk_lib.format import content_checksum, new_chunk_id, new_node_id
from icechunk_lib.format.manifest import INLINE, NATIVE, ChunkRef, ChunkTable
from icechunk_lib.format.snapshot import ARRAY, GROUP, ExtraObject, NodeSnapshot, Snapshot
from icechunk_lib.names import validate_node_path
from icechunk_lib.objects import ObjectStore, chunk_key
from icechunk_lib.refs import RefStore
from icechunk_lib.zarr_keys import ArrayInfo, grid_shrinks, parse_array_meta

if TYPE_CHECKING:
    from icechunk_lib.conflicts import ConflictSolver
    from icechunk_lib.ops.diff import Diff
    from icechunk_lib.ops.tree import NodeInfo
    from icechunk_lib.store import IcechunkStore

__all__ = ["ChangeSetView", "Session"]

Coords = tuple[int, ...]
_SESSION_TABLES = 32
_MERGE_CHECKS_IN_FLIGHT = 64
UNLOADED = ChunkRef(kind=-1)
"""Returned by ``Session.cached_chunk_ref`` when the answer needs a manifest read (compare
with ``is``; it is a ``ChunkRef`` only so the hot path needs no casts)."""


@dataclass(frozen=True)
class ChangeSetView:
    """A session's uncommitted changes at one moment: what a commit or a status reads."""

    nodes: dict[str, NodeSnapshot]
    chunks: dict[str, ChunkChanges]
    extras: dict[str, ExtraObject]
    extra_changes: set[str]


def _array_above(nodes: Mapping[str, NodeSnapshot], path: str) -> str | None:
    """The array among the ancestors of ``path``, if any: only groups may have children (a
    node inside an array would take over part of its chunk keys and hide its data)."""
    i = path.find("/", 1)
    while i > 0:
        above = nodes.get(path[:i])
        if above is not None and above.kind == ARRAY:
            return above.path
        i = path.find("/", i + 1)
    return None


def _check_solver(solver: object) -> None:
    """Refuse what is not a solver instance (a class, with the parentheses forgotten) before
    anything is written, not deep inside the rebase."""
    from icechunk_lib.conflicts import ConflictSolver

    if not isinstance(solver, ConflictSolver):
        what = f"the class {solver.__name__}" if isinstance(solver, type) else repr(solver)
        raise SessionError(
            f"a conflict solver must be a ConflictSolver instance such as "
            f"BasicConflictSolver(), not {what}"
        )


class Session:
    """A read-only or writable view of a repository at one snapshot.

    Create sessions with ``Repository.readonly_session`` / ``writable_session``; hand
    ``session.store`` to zarr or xarray; ``commit`` publishes the changes atomically.
    """

    def __init__(
        self,
        objects: ObjectStore,
        snapshot_id: str,
        *,
        branch: str | None,
        read_only: bool,
        refs: RefStore | None = None,
    ) -> None:
        self._objects = objects
        # The repository's, when it opened the session: it remembers the branch record a
        # commit swaps against, saving a read of the ref.
        self._refs = refs if refs is not None else RefStore(objects.storage)
        self._base_id = snapshot_id
        self._branch = branch
        self._read_only = read_only
        self._lock = threading.RLock()
        self._set_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._pending_commit: str | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._base: Snapshot | None = None
        self._nodes: dict[str, NodeSnapshot] | None = None
        self._extras: dict[str, ExtraObject] = {}
        self._chunks: dict[str, ChunkChanges] = {}
        self._extra_changes: set[str] = set()
        self._info: dict[str, tuple[bytes, ArrayInfo | None]] = {}
        self._firsts: dict[str, tuple[tuple[Any, ...], list[Coords]]] = {}
        self._dirty = False
        self._committing = False
        # Tables this session looked up last, so a hot read skips the shared LRU.
        self._tables: dict[tuple[str, str], ChunkTable] = {}
        self.key_cache: dict[str, tuple[int, Any, Any]] = {}
        """Zarr key -> resolved target, valid until the node tree changes (see store)."""

    # --- pickling: the change set travels, caches are rebuilt ----------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "storage": self._objects.storage,
            "config": self._objects.config,
            "base_id": self._base_id,
            "branch": self._branch,
            "read_only": self._read_only,
            "nodes": self._nodes if self._dirty else None,
            "extras": self._extras if self._dirty else None,
            "chunks": self._chunks,
            "extra_changes": self._extra_changes,
            "dirty": self._dirty,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            ObjectStore(state["storage"], state["config"]),
            state["base_id"],
            branch=state["branch"],
            read_only=state["read_only"],
        )
        if state["dirty"]:
            self._nodes = state["nodes"]
            self._extras = state["extras"]
        self._chunks = state["chunks"]
        self._extra_changes = state["extra_changes"]
        self._dirty = state["dirty"]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        return other is self or (
            self._objects.storage == other._objects.storage
            and self._base_id == other._base_id
            and self._branch == other._branch
            and self._read_only == other._read_only
        )

    def __hash__(self) -> int:
        return hash((self._base_id, self._branch, self._read_only))

    def __dask_tokenize__(self) -> tuple[object, ...]:
        """A cheap, stable dask token (without it dask pickles the session, storage included).

        A read-only session is named by what it reads; a writable one can still change, so
        its token is also unique to the object.
        """
        where = (type(self._objects.storage).__name__, self._objects.storage.url)
        if self._read_only:
            return ("ick-session", *where, self._base_id)
        return ("ick-session", *where, self._base_id, self._branch, id(self))

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "writable"
        where = f"branch {self._branch!r}" if self._branch else "detached"
        return f"<Session {mode} {where} at {self._base_id}>"

    # --- public properties ---------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def snapshot_id(self) -> str:
        """The snapshot this session reads from (after a commit: the new snapshot)."""
        return self._base_id

    @property
    def branch(self) -> str | None:
        return self._branch

    @property
    def has_uncommitted_changes(self) -> bool:
        return self._dirty

    @property
    def store(self) -> IcechunkStore:
        """A zarr ``Store`` over this session."""
        from icechunk_lib.store import IcechunkStore

        return IcechunkStore(self, read_only=self._read_only)

    @property
    def config(self) -> Any:
        return self._objects.config

    # --- loading -------------------------------------------------------------------------------

    async def _load(self) -> dict[str, NodeSnapshot]:
        base = await self._objects.snapshot(self._base_id)
        with self._lock:
            if self._nodes is None:
                self._base = base
                self._nodes = {n.path: n for n in base.nodes}
                self._extras = {e.key: e for e in base.extras}
            elif self._base is None:
                self._base = base
            return self._nodes

    async def nodes(self) -> dict[str, NodeSnapshot]:
        """The working node tree, path -> node (do not mutate)."""
        nodes = self._nodes
        return nodes if nodes is not None else await self._load()

    async def base_snapshot(self) -> Snapshot:
        if self._base is None:
            await self._load()
            if self._base is None:
                self._base = await self._objects.snapshot(self._base_id)
        return self._base

    def array_info(self, node: NodeSnapshot) -> ArrayInfo | None:
        """Parsed ``zarr.json`` of an array node (cached per metadata document)."""
        cached = self._info.get(node.id)
        if cached is not None and cached[0] is node.meta:
            return cached[1]
        info = parse_array_meta(node.meta) if node.kind == ARRAY else None
        self._info[node.id] = (node.meta, info)
        return info

    # --- writes: metadata ----------------------------------------------------------------------

    def _check_writable(self, what: str = "write") -> None:
        if self._read_only:
            raise ReadOnlySessionError(what)
        if self._committing:
            raise SessionError(
                f"cannot {what}: a commit of this session is in progress; "
                "changes made now would belong to no commit"
            )

    @contextlib.contextmanager
    def _mutation(self, what: str = "write") -> Iterator[None]:
        """Hold the lock and re-check writability, so no change slips in during a commit."""
        with self._lock:
            self._check_writable(what)
            yield

    def check_then_set_lock(self) -> asyncio.Lock:
        """The lock (one per event loop) that makes a store's check-then-set atomic."""
        loop = asyncio.get_running_loop()
        with self._lock:
            lock = self._set_locks.get(loop)
            if lock is None:
                lock = self._set_locks[loop] = asyncio.Lock()
            return lock

    def capture(self) -> ChangeSetView:
        """A consistent copy of the uncommitted changes, taken under the lock."""
        with self._lock:
            return ChangeSetView(
                nodes=dict(self._nodes or {}),
                chunks={nid: ch.copy() for nid, ch in self._chunks.items() if ch},
                extras=dict(self._extras),
                extra_changes=set(self._extra_changes),
            )

    async def set_node(self, path: str, meta: bytes) -> NodeSnapshot:
        """Create or update the group or array at ``path`` from its ``zarr.json`` bytes."""
        self._check_writable()
        path = validate_node_path(path)
        nodes = await self.nodes()
        info = parse_array_meta(meta)
        kind = ARRAY if info is not None else GROUP
        with self._mutation():
            above = _array_above(nodes, path)
            if above is not None:
                raise InvalidNameError(
                    "node", path, f"it is inside array {above}; only groups have children"
                )
            old = nodes.get(path)
            if kind == ARRAY and old is not None and old.kind == GROUP:
                below = path.rstrip("/") + "/"
                if any(p != path and p.startswith(below) for p in nodes):
                    raise InvalidNameError(
                        "node",
                        path,
                        "it has children and only groups have children; delete them first",
                    )
            old_info = self.array_info(old) if old is not None else None
            if (
                old is not None
                and old.kind == kind
                and (
                    kind == GROUP or (old_info is not None and old_info.ndim == info.ndim)  # type: ignore[union-attr]
                )
            ):
                node = NodeSnapshot(old.id, path, kind, bytes(meta), old.manifests)
            else:
                if old is not None:
                    self._chunks.pop(old.id, None)
                node = NodeSnapshot(new_node_id(), path, kind, bytes(meta))
            nodes[path] = node
            self._dirty = True
            self.key_cache.clear()
        if node.id == getattr(old, "id", None) and grid_shrinks(old_info, info):
            assert info is not None and info.grid is not None
            await self._drop_outside(node, info.grid)
        return node

    async def _drop_outside(self, node: NodeSnapshot, grid: tuple[int, ...]) -> None:
        """Delete the chunks of ``node`` beyond ``grid``, as zarr's own resize does, so a grid
        that shrank holds only chunks it can index, and growing it again shows fill values."""
        limit = np.array(grid, dtype=np.int64)
        outside: list[Coords] = []
        for mref in node.manifests:
            table = (await self._objects.manifest(mref.manifest_id)).tables.get(node.id)
            if table is not None and len(table):
                matrix = table.coords()
                outside.extend(map(tuple, matrix[(matrix >= limit).any(axis=1)].tolist()))
        with self._mutation():
            changes = self._changes_of(node.id, len(grid))
            outside.extend(
                c for c in list(changes) if any(x >= n for x, n in zip(c, grid, strict=True))
            )
            for coords in outside:
                changes[coords] = None

    async def delete_node(self, path: str) -> bool:
        """Delete the node at ``path`` (not its children); False if there is none."""
        self._check_writable("delete")
        nodes = await self.nodes()
        with self._mutation("delete"):
            node = nodes.pop(validate_node_path(path), None)
            if node is None:
                return False
            self._chunks.pop(node.id, None)
            self._dirty = True
            self.key_cache.clear()
            return True

    async def delete_tree(self, path: str) -> int:
        """Delete the node at ``path`` and every node below it; metadata only."""
        self._check_writable("delete")
        path = validate_node_path(path)
        nodes = await self.nodes()
        prefix = "/" if path == "/" else path + "/"
        with self._mutation("delete"):
            doomed = [p for p in nodes if p == path or p.startswith(prefix)]
            for p in doomed:
                node = nodes.pop(p)
                self._chunks.pop(node.id, None)
            if doomed:
                self._dirty = True
                self.key_cache.clear()
            return len(doomed)

    def move(self, from_path: str, to_path: str) -> None:
        """Rename a group or array with everything below it; no chunk is copied."""
        _sync.run(self.move_async(from_path, to_path))

    async def move_async(self, from_path: str, to_path: str) -> None:
        self._check_writable("move")
        src = validate_node_path(from_path)
        dst = validate_node_path(to_path)
        nodes = await self.nodes()
        if src == "/":
            raise InvalidNameError("node", src, "the root group cannot be moved")
        if src not in nodes:
            raise NodeNotFoundError(src)
        if dst in nodes or dst.startswith(src + "/"):
            raise InvalidNameError("node", dst, "the destination exists or is inside the source")
        above = _array_above(nodes, dst)
        if above is not None:
            raise InvalidNameError(
                "node", dst, f"it is inside array {above}; only groups have children"
            )
        with self._mutation("move"):
            moving = [p for p in nodes if p == src or p.startswith(src + "/")]
            for p in moving:
                node = nodes.pop(p)
                new_path = dst + p[len(src) :]
                nodes[new_path] = NodeSnapshot(
                    node.id, new_path, node.kind, node.meta, node.manifests
                )
            self._dirty = True
            self.key_cache.clear()

    # --- chunks --------------------------------------------------------------------------------

    def cached_chunk_ref(self, node: NodeSnapshot, coords: Coords) -> ChunkRef | None:
        """``chunk_ref`` without I/O: the answer, or ``UNLOADED`` if a manifest must be read.

        The store's hot path calls this first, so a warm read costs no extra coroutine.
        """
        changes = self._chunks.get(node.id)
        if changes is not None and coords in changes:
            return changes[coords]
        mref = self._manifest_for(node, coords)
        if mref is None:
            return None
        table = self._tables.get((mref.manifest_id, node.id))
        if table is None:
            return UNLOADED
        row = table.find(coords)
        return table.ref(row) if row >= 0 else None

    def _manifest_for(self, node: NodeSnapshot, coords: Coords) -> Any:
        """The manifest reference of ``node`` whose range may hold ``coords``, or None."""
        mrefs = node.manifests
        if not mrefs:
            return None
        if len(mrefs) == 1:
            return mrefs[0]
        cached = self._firsts.get(node.id)
        if cached is None or cached[0] is not mrefs:
            cached = (mrefs, [m.first for m in mrefs])
            self._firsts[node.id] = cached
        i = bisect.bisect_right(cached[1], coords) - 1
        return mrefs[i] if i >= 0 else None

    async def chunk_ref(self, node: NodeSnapshot, coords: Coords) -> ChunkRef | None:
        """The reference of the chunk at ``coords`` of array ``node``, or None."""
        ref = self.cached_chunk_ref(node, coords)
        if ref is not UNLOADED:
            return ref
        mref = self._manifest_for(node, coords)
        manifest = await self._objects.manifest(mref.manifest_id)
        table = manifest.tables.get(node.id)
        if table is None:
            return None
        if len(self._tables) >= _SESSION_TABLES:
            self._tables.clear()
        self._tables[(mref.manifest_id, node.id)] = table
        row = table.find(coords)
        return table.ref(row) if row >= 0 else None

    async def read_ref(self, ref: ChunkRef, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a chunk (offsets relative to the chunk)."""
        if ref.kind == INLINE:
            return ref.data[start:end]
        stop = ref.length if end is None else min(end, ref.length)
        if ref.kind == NATIVE:
            if start >= stop:
                return b""
            if start != 0 or stop != ref.length:  # a part: checked as far as it can be
                return await self._objects.chunk_range(ref, start, stop)
            return await self._objects.chunk(ref)
        raise SessionError(
            f"chunk at {ref.location!r} is a virtual reference; reading virtual chunks "
            "is not supported by this version of ick"
        )

    async def set_chunk(
        self, node: NodeSnapshot, coords: Coords, data: bytes, *, checksum: int | None = None
    ) -> None:
        """Store one chunk: inline if small, else written to ``chunks/`` right away.

        ``checksum`` (its ``content_checksum``) saves hashing again when the caller has it.
        """
        self._check_writable()
        digest, cid = await self._write_bytes(data, checksum)
        with self._lock:
            self._check_writable()  # a commit may have started while the bytes were written
            changes = self._changes_of(node.id, len(coords))
            if cid is None:
                changes[coords] = ChunkRef(INLINE, b"", 0, len(data), digest, data)
            else:  # the hot path: columns only, no ChunkRef object
                changes.put_native(coords, cid, len(data), digest)
            self._dirty = True

    async def _write_bytes(self, data: bytes, checksum: int | None) -> tuple[int, bytes | None]:
        """Checksum ``data`` and, unless it is small enough to inline, write it under a fresh
        chunk id. Returns the checksum and the id (None: keep the bytes inline)."""
        # Hashed on the loop even when large: hashing in a worker thread (xxhash releases the
        # GIL) measured no faster for whole-array writes or reads.
        digest = content_checksum(data) if checksum is None else checksum
        if len(data) <= self._objects.config.inline_chunk_threshold_bytes:
            return digest, None
        cid = new_chunk_id()
        await self._objects.storage.put_new(chunk_key(cid), data)
        return digest, cid

    def _changes_of(self, node_id: str, ndim: int) -> ChunkChanges:
        """The change record of an array, created on first use (caller holds the lock)."""
        changes = self._chunks.get(node_id)
        if changes is None:
            changes = self._chunks[node_id] = ChunkChanges(ndim)
        return changes

    async def _make_ref(self, data: bytes) -> ChunkRef:
        digest, cid = await self._write_bytes(data, None)
        if cid is None:
            return ChunkRef(INLINE, b"", 0, len(data), digest, data)
        return ChunkRef(NATIVE, cid, 0, len(data), digest)

    async def delete_chunk(self, node: NodeSnapshot, coords: Coords) -> None:
        self._check_writable("delete")
        with self._mutation("delete"):
            self._changes_of(node.id, len(coords))[coords] = None
            self._dirty = True

    async def iter_chunks(self, node: NodeSnapshot) -> AsyncIterator[tuple[Coords, ChunkRef]]:
        """Every chunk of an array (committed and uncommitted), in no particular order."""
        changes: Mapping[Coords, ChunkRef | None] = self._chunks.get(node.id) or {}
        for mref in node.manifests:
            manifest = await self._objects.manifest(mref.manifest_id)
            table = manifest.tables.get(node.id)
            if table is None:
                continue
            for row, c in enumerate(table.coords().tolist()):
                coords = tuple(c)
                if coords not in changes:
                    yield coords, table.ref(row)
        for coords, ref in list(changes.items()):
            if ref is not None:
                yield coords, ref

    async def chunk_coordinates(self, node: NodeSnapshot) -> list[Coords]:
        return [c async for c, _ in self.iter_chunks(node)]

    def list_nodes(
        self, path: str = "/", *, recursive: bool = False, stats: bool = False
    ) -> list[NodeInfo]:
        """Groups and arrays below ``path``; with ``stats``, chunk counts and stored bytes."""
        return _sync.run(self.list_nodes_async(path, recursive=recursive, stats=stats))

    async def list_nodes_async(
        self, path: str = "/", *, recursive: bool = False, stats: bool = False
    ) -> list[NodeInfo]:
        from icechunk_lib.ops.tree import list_nodes

        return await list_nodes(self, path, recursive=recursive, stats=stats)

    # --- extra (non-Zarr) keys -------------------------------------------------------------------

    async def get_extra(self, key: str) -> ExtraObject | None:
        await self.nodes()
        return self._extras.get(key)

    async def read_extra(self, extra: ExtraObject, start: int = 0, end: int | None = None) -> bytes:
        if extra.chunk_id:
            ref = ChunkRef(NATIVE, extra.chunk_id, 0, extra.length, extra.checksum)
        else:
            ref = ChunkRef(INLINE, b"", 0, extra.length, extra.checksum, extra.data)
        return await self.read_ref(ref, start, end)

    async def set_extra(self, key: str, data: bytes) -> None:
        self._check_writable()
        await self.nodes()
        ref = await self._make_ref(data)
        extra = ExtraObject(key, ref.length, ref.checksum, ref.data, ref.chunk_id)
        with self._mutation():
            self._extras[key] = extra
            self._extra_changes.add(key)
            self._dirty = True

    async def delete_extras(self, keys: Iterable[str]) -> None:
        self._check_writable("delete")
        await self.nodes()
        with self._mutation("delete"):
            for key in keys:
                if self._extras.pop(key, None) is not None:
                    self._extra_changes.add(key)
                    self._dirty = True

    def extra_keys(self) -> list[str]:
        return list(self._extras)

    # --- distributed writes: fork and merge ---------------------------------------------------

    def fork(self) -> Session:
        """A writable copy to pickle to a worker; ``merge`` brings its changes back.

        Forking needs a session without uncommitted changes, so every fork starts from the
        same state and merging cannot lose anything.
        """
        self._check_writable("fork")
        if self._dirty:
            from icechunk_lib.errors import SessionError

            raise SessionError(
                "cannot fork a session with uncommitted changes; commit them, open a new "
                "writable session and fork that"
            )
        return Session(
            self._objects, self._base_id, branch=self._branch, read_only=False, refs=self._refs
        )

    def merge(self, *others: Session) -> None:
        """Fold the changes of forked sessions (returned from workers) into this session."""
        _sync.run(self.merge_async(*others))

    async def merge_async(self, *others: Session) -> None:
        self._check_writable("merge")
        for other in others:  # all checked first: a refused one leaves nothing half merged
            self._check_mergeable(other)
        views = []
        for other in others:
            if other._dirty:
                await other.nodes()
                views.append(other.capture())
        await self._check_chunks_present(views)
        base = await self.base_snapshot()
        nodes = await self.nodes()
        for view in views:
            theirs = node_changes(base.nodes, view.nodes)
            with self._mutation("merge"):
                for n in theirs.deleted:
                    current = next((p for p, m in nodes.items() if m.id == n.id), None)
                    if current is not None:
                        del nodes[current]
                for old, n in [*theirs.updated, *theirs.moved]:
                    nodes.pop(old.path, None)
                    nodes[n.path] = n
                for n in theirs.new:
                    nodes[n.path] = n
                for nid, changes in view.chunks.items():
                    mine = self._chunks.get(nid)
                    if mine is None:
                        self._chunks[nid] = changes  # the view's copy is ours to keep
                    else:
                        mine.update(changes)
                for key in view.extra_changes:
                    extra = view.extras.get(key)
                    if extra is None:
                        self._extras.pop(key, None)
                    else:
                        self._extras[key] = extra
                    self._extra_changes.add(key)
                self._dirty = True
                self.key_cache.clear()

    async def _check_chunks_present(self, views: Iterable[ChangeSetView]) -> None:
        """Refuse forks whose chunks this repository's storage does not hold (written where
        this process cannot see: another host's disk, an in-memory storage copied into a
        worker process); committing them would publish references to missing objects."""
        keys: set[str] = set()
        for view in views:
            changed = (view.extras.get(k) for k in view.extra_changes)
            keys.update(chunk_key(e.chunk_id) for e in changed if e is not None and e.chunk_id)
            for changes in view.chunks.values():
                cols = changes.columns(copy=False)
                ids = cols.ids[cols.kinds == NATIVE]
                keys.update(chunk_key(bytes(row)) for row in ids)
        storage = self._objects.storage
        limit = asyncio.Semaphore(_MERGE_CHECKS_IN_FLIGHT)

        async def present(key: str) -> bool:
            async with limit:
                return await storage.exists(key)

        ordered = sorted(keys)
        found = await asyncio.gather(*(present(k) for k in ordered))
        missing = [k for k, ok in zip(ordered, found, strict=True) if not ok]
        if missing:
            raise SessionError(
                f"cannot merge: {len(missing)} chunk(s) the sessions wrote are not in "
                f"{storage.url} (first: {missing[0]}); they were written to storage this "
                "process does not see. Nothing was merged"
            )

    def _check_mergeable(self, other: object) -> None:
        """Refuse a session whose changes do not belong here: its chunks live in its own
        repository, and its changes were made for its own branch and snapshot."""
        if not isinstance(other, Session):
            raise SessionError(f"can only merge sessions, not a {type(other).__name__}")
        mine, theirs = self._objects.storage, other._objects.storage
        if not (mine == theirs or (type(mine) is type(theirs) and mine.url == theirs.url)):
            raise SessionError(
                f"cannot merge a session of another repository ({theirs.url}) into one of "
                f"{mine.url}: its chunks are not in this repository"
            )
        if other._branch != self._branch:
            raise SessionError(
                f"cannot merge a session of branch {other._branch!r} into one of branch "
                f"{self._branch!r}"
            )
        if other._base_id != self._base_id:
            raise SessionError(
                f"cannot merge a session based on {other._base_id} into one based on "
                f"{self._base_id}"
            )

    # --- status, discard, commit ---------------------------------------------------------------

    def status(self) -> Diff:
        """What this session changed relative to its base snapshot."""
        return _sync.run(self.status_async())

    async def status_async(self) -> Diff:
        from icechunk_lib.ops.diff import diff_session

        base = await self.base_snapshot()
        return diff_session(self, base)

    def discard_changes(self) -> None:
        """Forget every uncommitted change (written chunks become garbage for gc)."""
        self._check_writable("discard changes")
        with self._mutation("discard changes"):
            self._reset_state()

    def changed_chunks(self) -> dict[str, ChunkChanges]:
        return self._chunks

    def changed_extras(self) -> set[str]:
        return self._extra_changes

    def commit(
        self,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        rebase_with: ConflictSolver | None = None,
        rebase_tries: int = 1_000,
        allow_empty: bool = False,
    ) -> str:
        """Commit the changes as a new snapshot on the branch; return its id.

        Raises ``ConflictError`` if the branch moved since the session started (unless
        ``rebase_with`` resolves it), ``NoChangesToCommitError`` if there is nothing to commit.
        Afterwards the session is read-only at the new snapshot.
        """
        return _sync.run(
            self.commit_async(
                message,
                metadata,
                rebase_with=rebase_with,
                rebase_tries=rebase_tries,
                allow_empty=allow_empty,
            )
        )

    async def commit_async(
        self,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        rebase_with: ConflictSolver | None = None,
        rebase_tries: int = 1_000,
        allow_empty: bool = False,
    ) -> str:
        from icechunk_lib.commit import commit_session

        if rebase_with is not None:
            _check_solver(rebase_with)
        with self._mutation("commit"):
            if self._branch is None:
                raise ReadOnlySessionError("commit from a detached session")
            self._committing = True
        try:
            tries = 0
            while True:
                try:
                    new_id = await commit_session(self, message, metadata or {}, allow_empty)
                    break
                except ConflictError as exc:
                    if exc.actual_parent is not None and exc.actual_parent == self._pending_commit:
                        # An earlier attempt's ref swap landed but its reply was lost.
                        new_id = exc.actual_parent
                        break
                    if rebase_with is None or isinstance(exc, RebaseFailedError):
                        raise
                    tries += 1
                    if tries > rebase_tries:
                        raise
                    from icechunk_lib.conflicts import rebase_session

                    await rebase_session(self, rebase_with)
            with self._lock:
                self._base_id = new_id
                self._read_only = True
                self._pending_commit = None
                self._reset_state()
            return new_id
        finally:
            self._committing = False

    def rebase(self, solver: ConflictSolver) -> None:
        """Replay this session's changes on the branch tip, resolving conflicts with ``solver``."""
        _sync.run(self.rebase_async(solver))

    async def rebase_async(self, solver: ConflictSolver) -> None:
        from icechunk_lib.conflicts import rebase_session

        _check_solver(solver)
        self._check_writable("rebase")
        if self._branch is None:
            raise ReadOnlySessionError("rebase a detached session")
        await rebase_session(self, solver)

    # --- used by commit and rebase -------------------------------------------------------------

    def _adopt_base(
        self, snapshot: Snapshot, nodes: dict[str, NodeSnapshot], extras: dict[str, ExtraObject]
    ) -> None:
        with self._lock:
            self._base_id = snapshot.id
            self._base = snapshot
            self._nodes = nodes
            self._extras = extras
            self.key_cache.clear()

    def _node_changes_from(self, base_nodes: Iterable[NodeSnapshot]) -> NodeChanges:
        assert self._nodes is not None
        return node_changes(base_nodes, self._nodes)

    def _drop_chunk_changes(self, path: str, coords: Iterable[Iterable[int]]) -> None:
        """Forget our writes of these chunks of the array at ``path`` (theirs win)."""
        node = (self._nodes or {}).get(path)
        if node is None:
            return
        with self._lock:
            changes = self._chunks.get(node.id)
            if changes is None:
                return
            for c in coords:
                changes.pop(tuple(c), None)
