"""The maintenance methods of ``Repository``: verify, garbage collection, snapshot
expiration, storage statistics and manifest rewrites.

A base class of ``Repository`` (which supplies the storage, ref store and object store). Each
method is a thin wrapper over an operation in ``icechunk_lib.ops``, imported when called so
that opening a repository for ``ick log`` loads no numpy.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.errors import RepositoryNotFoundError
from icechunk_lib.objects import ObjectStore
from icechunk_lib.refs import DEFAULT_BRANCH, RefStore
from icechunk_lib.repository_refs import repository_exists
from icechunk_lib.storage import Storage
from icechunk_lib.write_access import WriteAccess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from icechunk_lib.history import SnapshotInfo
    from icechunk_lib.ops.expire import ExpiredSnapshots
    from icechunk_lib.ops.expire import ProgressCallback as ExpireProgress
    from icechunk_lib.ops.gc import GCSummary
    from icechunk_lib.ops.stats import ChunkStorageStats, StorageReport, StorageView
    from icechunk_lib.ops.verify import ProgressCallback, VerifyReport

__all__ = ["Maintenance"]


class Maintenance:
    """Verify, gc, expire, stats and manifest rewrites (Icechunk 1.1 names where it has them)."""

    _storage: Storage
    _objects: ObjectStore
    _refs: RefStore
    _write_access: WriteAccess

    async def _require_repository(self) -> None:
        if not await repository_exists(self._storage):
            raise RepositoryNotFoundError(self._storage.url)

    # --- verify ----------------------------------------------------------------------------------

    def verify(
        self, *, data: bool = False, progress: ProgressCallback | None = None
    ) -> VerifyReport:
        """Check every ref and everything reachable from one; report, never raise, damage.

        Refs must name existing snapshots; snapshots, manifests and the transaction logs of
        non-root snapshots must exist and decode under their ids; manifests must hold what
        their snapshots record; native chunks must exist with their length (``data=True``:
        and checksum). Virtual chunks are checked without reading their sources: each
        location must be well formed and held by a container of the config in effect, each
        range must end before byte 2**64. Nothing is written. Raises only
        ``RepositoryNotFoundError`` (no repository here) and ``StorageError`` (the storage
        itself failed). ``progress(phase, done, total)`` hears how many refs, snapshots,
        manifests and chunks were checked.
        """
        return _sync.run(self.verify_async(data=data, progress=progress))

    async def verify_async(
        self, *, data: bool = False, progress: ProgressCallback | None = None
    ) -> VerifyReport:
        """Async twin of ``verify``."""
        from icechunk_lib.ops.verify import verify_repository

        await self._require_repository()
        return await verify_repository(
            self._storage,
            data=data,
            progress=progress,
            containers=self._objects.config.virtual_chunk_containers,
        )

    # --- expire ----------------------------------------------------------------------------------

    def expire_snapshots(
        self,
        older_than: dt.datetime,
        *,
        delete_expired_branches: bool = False,
        delete_expired_tags: bool = False,
        dry_run: bool = False,
        progress: ExpireProgress | None = None,
    ) -> ExpiredSnapshots:
        """Release every snapshot older than ``older_than`` from history; return their ids.

        The root snapshot and the tip of ``main`` are always kept, and ``main`` is never
        deleted. Other branch and tag tips are kept, unless ``delete_expired_branches`` /
        ``delete_expired_tags`` is set: then a ref whose tip is older is deleted. Every kept
        snapshot whose parent is released gets the root as its parent (in ``ancestry``;
        ``diff`` and rebases across the gap stay exact). Nothing is deleted: the released
        snapshots stay readable by id until ``garbage_collect`` removes them.

        Safe beside writers: a ref that moves meanwhile so that it reaches a released
        snapshot makes the run look again (bounded); the result never holds a snapshot a ref
        points at. The result is a ``set`` with ``deleted_branches``, ``deleted_tags`` and
        ``reparented`` attributes; ``dry_run=True`` reports what a run would do and changes
        nothing. ``progress(phase, done, total)`` hears how many snapshots were read.

        Raises:
            ValueError: ``older_than`` has no timezone.
            IntegrityError: a snapshot of the history or an expiration record is damaged.
        """
        return _sync.run(
            self.expire_snapshots_async(
                older_than,
                delete_expired_branches=delete_expired_branches,
                delete_expired_tags=delete_expired_tags,
                dry_run=dry_run,
                progress=progress,
            )
        )

    async def expire_snapshots_async(
        self,
        older_than: dt.datetime,
        *,
        delete_expired_branches: bool = False,
        delete_expired_tags: bool = False,
        dry_run: bool = False,
        progress: ExpireProgress | None = None,
    ) -> ExpiredSnapshots:
        """Async twin of ``expire_snapshots``."""
        from icechunk_lib.ops.expire import expire_snapshots

        await self._require_repository()
        if not dry_run:
            await self._write_access.require()
        return await expire_snapshots(
            self._objects,
            self._refs,
            older_than,
            delete_expired_branches=delete_expired_branches,
            delete_expired_tags=delete_expired_tags,
            dry_run=dry_run,
            progress=progress,
        )

    # --- garbage collection ----------------------------------------------------------------------

    def garbage_collect(
        self,
        delete_object_older_than: datetime,
        *,
        dry_run: bool = False,
        max_snapshots_in_memory: int = 50,
        max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
        max_concurrent_manifest_fetches: int = 500,
        full: bool = False,
        progress: ProgressCallback | None = None,
    ) -> GCSummary:
        """Delete every object no branch or tag reaches that storage says is older than
        ``delete_object_older_than``; return what went (``dry_run``: what would go).

        Safe beside writers: a session's objects survive while younger than the cut-off,
        so the cut-off must be older than any session still writing (see
        docs/maintenance.md). Each run records what it saw under ``gc/``, so the next one
        reads and lists only what was written since, unless snapshots were released (a
        ref reset or deleted, an expiration); ``full=True`` ignores the record. Reads at
        most ``min(max_concurrent_manifest_fetches, 64)`` objects at once and holds only
        those manifests; the other two limits are accepted for Icechunk compatibility.
        Raises ``IntegrityError`` (deleting nothing) if a reachable object is damaged,
        ``RefsKeptMovingError`` if refs keep moving to snapshots it has not marked, and
        ``ReadOnlyStorageError`` (unless ``dry_run``) on a storage that cannot write safely.
        ``progress(phase, done, total)`` hears phases ``mark``, ``list`` and ``delete``.
        """
        return _sync.run(
            self.garbage_collect_async(
                delete_object_older_than,
                dry_run=dry_run,
                max_snapshots_in_memory=max_snapshots_in_memory,
                max_compressed_manifest_mem_bytes=max_compressed_manifest_mem_bytes,
                max_concurrent_manifest_fetches=max_concurrent_manifest_fetches,
                full=full,
                progress=progress,
            )
        )

    async def garbage_collect_async(
        self,
        delete_object_older_than: datetime,
        *,
        dry_run: bool = False,
        max_snapshots_in_memory: int = 50,
        max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
        max_concurrent_manifest_fetches: int = 500,
        full: bool = False,
        progress: ProgressCallback | None = None,
    ) -> GCSummary:
        """Async twin of ``garbage_collect``."""
        from icechunk_lib.ops.gc import garbage_collect

        for name, value in (
            ("max_snapshots_in_memory", max_snapshots_in_memory),
            ("max_compressed_manifest_mem_bytes", max_compressed_manifest_mem_bytes),
            ("max_concurrent_manifest_fetches", max_concurrent_manifest_fetches),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        await self._require_repository()
        if not dry_run:
            await self._write_access.require()
        return await garbage_collect(
            self._storage,
            delete_object_older_than,
            dry_run=dry_run,
            full=full,
            concurrency=min(max_concurrent_manifest_fetches, 64),
            progress=progress,
        )

    # --- statistics ------------------------------------------------------------------------------

    if TYPE_CHECKING:  # supplied by Repository (the stats resolve revisions, walk histories)

        def async_ancestry(
            self, *, snapshot_id: str | None = None
        ) -> AsyncIterator[SnapshotInfo]: ...

        async def resolve_async(self, rev: str) -> str: ...

    def chunk_storage_stats(
        self,
        *,
        max_snapshots_in_memory: int = 50,
        max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
        max_concurrent_manifest_fetches: int = 500,
    ) -> ChunkStorageStats:
        """Bytes of the chunks reachable from any branch or tag, each chunk once, by kind.

        Native chunks count once by id, virtual ones once by location and byte range, inline
        bytes once per manifest holding them. Chunks only unreachable snapshots hold (after
        ``reset_branch`` or expiration) are not counted: gc removes them. The three limits
        are Icechunk's; ick streams manifests a few at a time (the smaller of
        ``max_concurrent_manifest_fetches`` and 16 in flight), so they only lower that.
        """
        return _sync.run(
            self.chunk_storage_stats_async(
                max_snapshots_in_memory=max_snapshots_in_memory,
                max_compressed_manifest_mem_bytes=max_compressed_manifest_mem_bytes,
                max_concurrent_manifest_fetches=max_concurrent_manifest_fetches,
            )
        )

    async def chunk_storage_stats_async(
        self,
        *,
        max_snapshots_in_memory: int = 50,
        max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
        max_concurrent_manifest_fetches: int = 500,
    ) -> ChunkStorageStats:
        """Async twin of ``chunk_storage_stats``."""
        from icechunk_lib.ops.stats import chunk_storage_stats

        del max_snapshots_in_memory, max_compressed_manifest_mem_bytes  # see the sync twin
        if max_concurrent_manifest_fetches < 1:
            raise ValueError(
                f"max_concurrent_manifest_fetches must be at least 1, "
                f"not {max_concurrent_manifest_fetches}"
            )
        await self._require_repository()
        return await chunk_storage_stats(
            self._storage, max_concurrency=max_concurrent_manifest_fetches
        )

    def storage_stats(
        self,
        rev: str | None = None,
        *,
        by: StorageView = "snapshot",
        progress: ProgressCallback | None = None,
    ) -> StorageReport:
        """Where the repository's bytes are: totals plus one view, shared chunks counted once.

        ``by="snapshot"``: every reachable snapshot (or, with ``rev``, those of its history),
        newest first, with the bytes only it holds (what gc frees once it alone is expired).
        ``by="branch"``: each branch and tag with everything its history holds (no ``rev``).
        ``by="array"``: each array at ``rev`` (default: the tip of ``main``); ``rev`` must be
        reachable from a branch or tag (else ``SnapshotNotFoundError``). Always reads
        every reachable manifest, one at a time. Raises ``IntegrityError`` naming a missing
        or damaged object; ``progress(phase, done, total)`` hears how far it is.
        """
        return _sync.run(self.storage_stats_async(rev, by=by, progress=progress))

    async def storage_stats_async(
        self,
        rev: str | None = None,
        *,
        by: StorageView = "snapshot",
        progress: ProgressCallback | None = None,
    ) -> StorageReport:
        """Async twin of ``storage_stats``."""
        from icechunk_lib.ops.stats import storage_report

        await self._require_repository()
        if by == "array" and rev is None:
            rev = DEFAULT_BRANCH
        snapshot_id = None if rev is None else await self.resolve_async(rev)

        async def ancestry(start: str) -> AsyncIterator[str]:
            async for info in self.async_ancestry(snapshot_id=start):
                yield info.id

        return await storage_report(
            self._storage, ancestry, by=by, snapshot_id=snapshot_id, progress=progress
        )

    # --- manifest layout -------------------------------------------------------------------------

    def rewrite_manifests(
        self, message: str, *, branch: str, metadata: dict[str, Any] | None = None
    ) -> str:
        """Commit on ``branch`` every array's manifests laid out by the current config.

        The chunk references stay identical (a diff with the parent shows no chunk change);
        only how they are cut into manifests changes. The config's splitting rules, as
        JSON, are recorded under the commit metadata key ``"splitting_config"`` (as in
        Icechunk). Returns the new snapshot id. Raises ``BranchNotFoundError``,
        ``ReadOnlyStorageError``, and ``ConflictError`` if the branch kept moving.
        """
        return _sync.run(self.rewrite_manifests_async(message, branch=branch, metadata=metadata))

    async def rewrite_manifests_async(
        self, message: str, *, branch: str, metadata: dict[str, Any] | None = None
    ) -> str:
        """Async twin of ``rewrite_manifests``."""
        from icechunk_lib.ops.rewrite import rewrite_manifests

        await self._write_access.require()
        return await rewrite_manifests(self._objects, self._refs, branch, message, metadata)
