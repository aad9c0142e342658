"""``Workspace``: a base snapshot and a change set over a repository's storage.

The data path of a session: reads go through the change set (a ``ChangeSet``), then the base
snapshot's manifests; chunk bytes are written to storage as they arrive and recorded in the
change set. The lock and the writability checks make it safe for threads and asyncio tasks.
``Session`` holds one (for its whole life) and builds the public API on it: commit, rebase,
fork and merge. The store and the importer reach it through ``session.workspace_of(s)``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from icechunk_lib.changeset import ChangeSet
from icechunk_lib.chunk_changes import VirtualRows
from icechunk_lib.commit import committed_outside
from icechunk_lib.errors import ReadOnlySessionError, SessionError
from icechunk_lib.format import content_checksum, new_chunk_id
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL, ChunkRef, ChunkTable
from icechunk_lib.format.pieces import PieceIndex, uses_regions
from icechunk_lib.format.snapshot import ExtraObject, ManifestRef, NodeSnapshot, Snapshot
from icechunk_lib.names import validate_node_path
from icechunk_lib.objects import ObjectStore, chunk_key
from icechunk_lib.virtual.fetch import VirtualFetcher
from icechunk_lib.zarr_keys import Coords, grid_shrinks, parse_array_meta

__all__ = ["UNLOADED", "Workspace"]

_SESSION_TABLES = 32
UNLOADED = ChunkRef(kind=-1)
"""Returned by ``cached_chunk_ref`` when the answer needs a manifest read (compare with
``is``; it is a ``ChunkRef`` only so the hot path needs no casts)."""


class Workspace:
    """The state and data path of a session: base snapshot + change set + storage.

    Engine-facing: users hold a ``Session``, which composes one; its store calls this.
    """

    def __init__(
        self,
        objects: ObjectStore,
        snapshot_id: str,
        *,
        read_only: bool,
        changes: ChangeSet | None = None,
        virtual: VirtualFetcher | None = None,
    ) -> None:
        self.objects = objects
        """The repository's objects (snapshots, manifests, chunks) and its config."""
        self.virtual = virtual if virtual is not None else VirtualFetcher()
        """Reads virtual chunks from the containers the user authorised (none if not given)."""
        self._base_id = snapshot_id
        self._read_only = read_only
        self._lock = threading.RLock()
        self._set_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._busy = ""
        """``"commit"`` or ``"rebase"`` while one runs: writes then are refused."""
        self._reset_state(changes)

    # --- pickling: the change set travels, caches are rebuilt ----------------------------------

    def __getstate__(self) -> dict[str, Any]:
        changes = self._changes
        return {
            "storage": self.objects.storage,
            "config": self.objects.config,
            "base_id": self._base_id,
            "read_only": self._read_only,
            "changes": changes if changes is not None and changes.dirty else None,
            "virtual": self.virtual,  # pickles as its authorisation, without secrets
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            ObjectStore(state["storage"], state["config"]),
            state["base_id"],
            read_only=state["read_only"],
            changes=state["changes"],
            virtual=state.get("virtual"),
        )

    # --- what the session shows ----------------------------------------------------------------

    @property
    def snapshot_id(self) -> str:
        """The id of the base snapshot."""
        return self._base_id

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self._read_only

    @property
    def dirty(self) -> bool:
        """Whether anything was written, deleted or moved since the base snapshot."""
        changes = self._changes
        return changes is not None and changes.dirty

    def check_then_set_lock(self) -> asyncio.Lock:
        """The lock (one per event loop) that makes a store's check-then-set atomic across
        every store of the session."""
        loop = asyncio.get_running_loop()
        with self._lock:
            lock = self._set_locks.get(loop)
            if lock is None:
                lock = self._set_locks[loop] = asyncio.Lock()
            return lock

    def _reset_state(self, changes: ChangeSet | None = None) -> None:
        self._base: Snapshot | None = None
        self._changes: ChangeSet | None = changes
        """None until the base is loaded (then the change set over it), unless unpickled."""
        self._firsts: dict[str, tuple[tuple[Any, ...], PieceIndex | list[Coords]]] = {}
        # Tables this session looked up last, so a hot read skips the shared LRU.
        self._tables: dict[tuple[str, str], ChunkTable] = {}
        self.key_cache: dict[str, tuple[int, Any, Any]] = {}
        """Zarr key -> resolved target, valid until the node tree changes (see store)."""

    # --- loading and locking -------------------------------------------------------------------

    async def _load(self) -> ChangeSet:
        base = await self.objects.snapshot(self._base_id)
        with self._lock:
            if self._changes is None:
                self._changes = ChangeSet.from_snapshot(base)
            if self._base is None:
                self._base = base
            return self._changes

    async def changeset(self) -> ChangeSet:
        """The change set, loaded on first use (read it; change it only through this class).

        Raises:
            MissingObjectError: the base snapshot is gone from storage.
        """
        changes = self._changes
        return changes if changes is not None else await self._load()

    async def nodes(self) -> dict[str, NodeSnapshot]:
        """The working node tree, path -> node (do not mutate).

        Raises:
            MissingObjectError: the base snapshot is gone from storage.
        """
        changes = self._changes
        return (changes if changes is not None else await self._load()).nodes

    async def base_snapshot(self) -> Snapshot:
        """The snapshot the uncommitted changes are relative to."""
        if self._base is None:
            await self._load()
            assert self._base is not None
        return self._base

    def check_writable(self, what: str = "write") -> None:
        """Raise unless ``what`` may change the workspace now.

        Raises:
            ReadOnlySessionError: the session is read-only.
            SessionError: a commit or rebase of the session is in progress.
        """
        if self._read_only:
            raise ReadOnlySessionError(what)
        if self._busy == "commit":
            raise SessionError(
                f"cannot {what}: a commit of this session is in progress; "
                "changes made now would belong to no commit"
            )
        if self._busy:
            raise SessionError(
                f"cannot {what}: a {self._busy} of this session is in progress; "
                "changes made now would be lost"
            )

    @contextlib.contextmanager
    def _mutation(self, what: str = "write") -> Iterator[None]:
        """Hold the lock and re-check writability, so no change slips in during a commit."""
        with self._lock:
            self.check_writable(what)
            yield

    @contextlib.contextmanager
    def busy(self, what: str) -> Iterator[None]:
        """Refuse every write while ``what`` (``"commit"`` or ``"rebase"``) runs on a copy of
        the change set, so nothing written meanwhile is lost when its result is adopted.

        Raises:
            ReadOnlySessionError, SessionError: as ``check_writable``, on entry.
        """
        with self._mutation(what):
            self._busy = what
        try:
            yield
        finally:
            self._busy = ""

    async def copy_changes(self) -> ChangeSet:
        """A consistent private copy of the change set (loaded first), for a commit or a diff."""
        changes = await self.changeset()
        with self._lock:
            return changes.copy()

    def adopt(
        self, base: Snapshot | str, changes: ChangeSet | None = None, *, read_only: bool = False
    ) -> None:
        """Start over on ``base`` (a snapshot, or its id to load on first use) with ``changes``
        (None: no changes), after a commit (``read_only``) or a rebase."""
        with self._lock:
            if isinstance(base, str):
                self._base_id, self._base = base, None
            else:
                self._base_id, self._base = base.id, base
            self._changes = changes
            self._read_only = self._read_only or read_only
            # Cached manifest tables stay valid (manifests are immutable); resolved keys not.
            self.key_cache.clear()

    def discard(self) -> None:
        """Forget every uncommitted change.

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        with self._mutation("discard changes"):
            self._reset_state()

    # --- writes: nodes -------------------------------------------------------------------------

    async def set_node(self, path: str, meta: bytes) -> NodeSnapshot:
        """Create or update the group or array at ``path`` from its ``zarr.json`` bytes.

        Raises:
            ReadOnlySessionError: the session is read-only.
            InvalidNameError: ``path`` is not a node path, or the tree cannot hold the node
                there (inside an array; an array over a group with children).
        """
        self.check_writable()
        path = validate_node_path(path)
        changes = await self.changeset()
        with self._mutation():
            node, old = changes.put_node(path, meta)
            self.key_cache.clear()
        if old is not None and node.id == old.id:
            old_info, info = parse_array_meta(old.meta), parse_array_meta(node.meta)
            if grid_shrinks(old_info, info):
                # Chunks beyond the new grid go, as zarr's own resize deletes them.
                assert info is not None and info.grid is not None
                outside = await committed_outside(self.objects, node, info.grid)
                with self._mutation():
                    changes.delete_outside(node.id, info.grid, outside)
        return node

    async def delete_node(self, path: str) -> bool:
        """Delete the node at ``path`` (not its children); False if there is none.

        Raises:
            ReadOnlySessionError: the session is read-only.
            InvalidNameError: ``path`` is not a node path.
        """
        self.check_writable("delete")
        changes = await self.changeset()
        with self._mutation("delete"):
            if changes.delete_node(validate_node_path(path)) is None:
                return False
            self.key_cache.clear()
            return True

    async def delete_tree(self, path: str) -> int:
        """Delete the node at ``path`` and every node below it (metadata only); how many.

        Raises:
            ReadOnlySessionError: the session is read-only.
            InvalidNameError: ``path`` is not a node path.
        """
        self.check_writable("delete")
        path = validate_node_path(path)
        changes = await self.changeset()
        with self._mutation("delete"):
            count = changes.delete_tree(path)
            if count:
                self.key_cache.clear()
            return count

    async def move(self, from_path: str, to_path: str) -> None:
        """Rename the node at ``from_path`` with everything below it (see ``Session.move``)."""
        self.check_writable("move")
        src, dst = validate_node_path(from_path), validate_node_path(to_path)
        changes = await self.changeset()
        with self._mutation("move"):
            changes.move(src, dst)
            self.key_cache.clear()

    async def merge(self, theirs: Iterable[ChangeSet]) -> None:
        """Fold change sets of forks of this workspace (same base) into its own.

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        base = await self.base_snapshot()
        changes = await self.changeset()
        for forked in theirs:
            with self._mutation("merge"):
                changes.merge(forked, base.nodes)
                self.key_cache.clear()

    # --- chunks --------------------------------------------------------------------------------

    def cached_chunk_ref(self, node: NodeSnapshot, coords: Coords) -> ChunkRef | None:
        """``chunk_ref`` without I/O: the answer, or ``UNLOADED`` if a manifest must be read.

        The store's hot path calls this first, so a warm read costs no extra coroutine.
        """
        cs = self._changes
        changes = cs.chunks.get(node.id) if cs is not None else None
        if changes is not None and coords in changes:
            return changes[coords]
        unloaded = False
        for mref in self._pieces_for(node, coords):
            table = self._tables.get((mref.manifest_id, node.id))
            if table is None:
                unloaded = True
                continue
            row = table.find(coords)
            if row >= 0:
                return table.ref(row)
        return UNLOADED if unloaded else None

    def _pieces_for(self, node: NodeSnapshot, coords: Coords) -> tuple[ManifestRef, ...]:
        """The manifest pieces of ``node`` that may hold ``coords`` (usually one, or none):
        by bisecting row-major ranges, or by box for pieces cut by region."""
        mrefs = node.manifests
        if len(mrefs) <= 1:
            return mrefs
        cached = self._firsts.get(node.id)
        if cached is None or cached[0] is not mrefs:
            index: PieceIndex | list[Coords] = (
                PieceIndex(mrefs, len(mrefs[0].first))
                if uses_regions(mrefs)
                else [m.first for m in mrefs]
            )
            cached = (mrefs, index)
            self._firsts[node.id] = cached
        found = cached[1]
        if isinstance(found, PieceIndex):
            return found.candidates(coords)
        i = bisect.bisect_right(found, coords) - 1
        return (mrefs[i],) if i >= 0 else ()

    async def chunk_ref(self, node: NodeSnapshot, coords: Coords) -> ChunkRef | None:
        """The reference of the chunk at ``coords`` of array ``node``, or None.

        Reads only the manifests of the pieces that may hold it, one at a time until found.

        Raises:
            MissingObjectError: the manifest that holds it is gone from storage.
        """
        ref = self.cached_chunk_ref(node, coords)
        if ref is not UNLOADED:
            return ref
        for mref in self._pieces_for(node, coords):
            key = (mref.manifest_id, node.id)
            table = self._tables.get(key)
            if table is None:
                table = (await self.objects.manifest(mref.manifest_id)).tables.get(node.id)
                if table is None:
                    continue
                if len(self._tables) >= _SESSION_TABLES:
                    self._tables.clear()
                self._tables[key] = table
            row = table.find(coords)
            if row >= 0:
                return table.ref(row)
        return None

    async def read_ref(self, ref: ChunkRef, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a chunk (offsets relative to the chunk).

        Raises:
            CorruptObjectError: the stored chunk does not match its reference.
            VirtualChunkError: a virtual chunk cannot be read: its container is undeclared,
                unauthorised or unsupported, or its source is missing, changed or truncated
                (see ``VirtualFetcher.read``).
        """
        if ref.kind == INLINE:
            return ref.data[start:end]
        stop = ref.length if end is None else min(end, ref.length)
        if start >= stop:
            return b""
        if ref.kind == NATIVE:
            if start != 0 or stop != ref.length:  # a part: checked as far as it can be
                return await self.objects.chunk_range(ref, start, stop)
            return await self.objects.chunk(ref)
        if ref.kind == VIRTUAL:
            return await self.virtual.read(self.objects.config, ref, start, stop)
        raise SessionError(f"cannot read a chunk reference of unknown kind {ref.kind}")

    async def set_chunk(
        self, node: NodeSnapshot, coords: Coords, data: bytes, *, checksum: int | None = None
    ) -> None:
        """Store one chunk: inline if small, else written to ``chunks/`` right away.

        ``checksum`` (its ``content_checksum``) saves hashing again when the caller has it.

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        self.check_writable()
        digest, cid = await self._write_bytes(data, checksum)
        changes = self._changes if self._changes is not None else await self._load()
        with self._lock:
            self.check_writable()  # a commit may have started while the bytes were written
            if cid is None:
                changes.set_chunk_ref(
                    node.id, coords, ChunkRef(INLINE, b"", 0, len(data), digest, data)
                )
            else:  # the hot path: columns only, no ChunkRef object
                changes.put_native(node.id, coords, cid, len(data), digest)

    async def set_chunk_refs(
        self, node: NodeSnapshot, items: Iterable[tuple[Coords, ChunkRef]]
    ) -> None:
        """Record references made elsewhere (virtual chunks) at their coordinates.

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        self.check_writable()
        changes = await self.changeset()
        with self._mutation():
            for coords, ref in items:
                changes.set_chunk_ref(node.id, coords, ref)

    async def put_virtual(self, node: NodeSnapshot, rows: VirtualRows) -> None:
        """Record many virtual chunks of array ``node`` at once, column-wise.

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        self.check_writable()
        changes = await self.changeset()
        with self._mutation():
            changes.put_virtual(node.id, rows)

    async def _write_bytes(self, data: bytes, checksum: int | None) -> tuple[int, bytes | None]:
        """Checksum ``data`` and, unless it is small enough to inline, write it under a fresh
        chunk id. Returns the checksum and the id (None: keep the bytes inline)."""
        # Hashed on the loop even when large: hashing in a worker thread (xxhash releases the
        # GIL) measured no faster for whole-array writes or reads.
        digest = content_checksum(data) if checksum is None else checksum
        if len(data) <= self.objects.config.inline_chunk_threshold_bytes:
            return digest, None
        cid = new_chunk_id()
        await self.objects.storage.put_new(chunk_key(cid), data)
        return digest, cid

    async def delete_chunk(self, node: NodeSnapshot, coords: Coords) -> None:
        """Delete the chunk at ``coords`` of array ``node`` (it reads as the fill value).

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        self.check_writable("delete")
        changes = await self.changeset()
        with self._mutation("delete"):
            changes.set_chunk_ref(node.id, coords, None)

    async def iter_chunks(self, node: NodeSnapshot) -> AsyncIterator[tuple[Coords, ChunkRef]]:
        """Every chunk of an array (committed and uncommitted), in no particular order."""
        cs = self._changes
        async for item in self.objects.chunk_refs(node, cs.chunks.get(node.id) if cs else None):
            yield item

    # --- extra (non-Zarr) keys -------------------------------------------------------------------

    async def get_extra(self, key: str) -> ExtraObject | None:
        """The extra object stored under ``key``, or None."""
        return (await self.changeset()).extras.get(key)

    async def read_extra(self, extra: ExtraObject, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of an extra object."""
        if extra.chunk_id:
            ref = ChunkRef(NATIVE, extra.chunk_id, 0, extra.length, extra.checksum)
        else:
            ref = ChunkRef(INLINE, b"", 0, extra.length, extra.checksum, extra.data)
        return await self.read_ref(ref, start, end)

    async def set_extra(self, key: str, data: bytes) -> None:
        """Store ``data`` under the non-Zarr key ``key`` (inline if small, like chunks).

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        self.check_writable()
        changes = await self.changeset()
        digest, cid = await self._write_bytes(data, None)
        extra = ExtraObject(key, len(data), digest, b"" if cid else data, cid or b"")
        with self._mutation():
            changes.set_extra(extra)

    async def delete_extras(self, keys: Iterable[str]) -> None:
        """Delete the extra objects under ``keys`` (absent ones are skipped).

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        self.check_writable("delete")
        changes = await self.changeset()
        with self._mutation("delete"):
            for key in keys:
                changes.delete_extra(key)

    def extra_keys(self) -> list[str]:
        """The keys of every extra object (call after the tree is loaded)."""
        return list(self._changes.extras) if self._changes is not None else []
