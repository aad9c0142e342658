"""The maintenance methods of ``Repository``: verify, garbage collection, snapshot
expiration, storage statistics and manifest rewrites.

A base class of ``Repository`` (which supplies the storage, ref store and object store). Each
method is a thin wrapper over an operation in ``icechunk_lib.ops``, imported when called so
that opening a repository for ``ick log`` loads no numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icechunk_lib import _sync
from icechunk_lib.errors import RepositoryNotFoundError
from icechunk_lib.objects import ObjectStore
from icechunk_lib.refs import RefStore
from icechunk_lib.repository_refs import repository_exists, require_writable
from icechunk_lib.storage import Storage

if TYPE_CHECKING:
    from datetime import datetime

    from icechunk_lib.ops.gc import GCSummary
    from icechunk_lib.ops.verify import ProgressCallback, VerifyReport

__all__ = ["Maintenance"]


class Maintenance:
    """Verify, gc, expire, stats and manifest rewrites (Icechunk 1.1 names where it has them)."""

    _storage: Storage
    _objects: ObjectStore
    _refs: RefStore

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
        and checksum). Nothing is written. Raises only ``RepositoryNotFoundError`` (no
        repository here) and ``StorageError`` (the storage itself failed). ``progress(phase,
        done, total)`` hears how many refs, snapshots, manifests and chunks were checked.
        """
        return _sync.run(self.verify_async(data=data, progress=progress))

    async def verify_async(
        self, *, data: bool = False, progress: ProgressCallback | None = None
    ) -> VerifyReport:
        """Async twin of ``verify``."""
        from icechunk_lib.ops.verify import verify_repository

        await self._require_repository()
        return await verify_repository(self._storage, data=data, progress=progress)

    # --- expire ----------------------------------------------------------------------------------

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
            require_writable(self._storage)
        return await garbage_collect(
            self._storage,
            delete_object_older_than,
            dry_run=dry_run,
            full=full,
            concurrency=min(max_concurrent_manifest_fetches, 64),
            progress=progress,
        )

    # --- statistics ------------------------------------------------------------------------------

    # --- manifest layout -------------------------------------------------------------------------
