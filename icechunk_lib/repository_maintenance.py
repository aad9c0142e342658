"""The maintenance methods of ``Repository``: verify, garbage collection, snapshot
expiration, storage statistics and manifest rewrites.

A base class of ``Repository`` (which supplies the storage, ref store and object store). Each
method is a thin wrapper over an operation in ``icechunk_lib.ops``, imported when called so
that opening a repository for ``ick log`` loads no numpy.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from icechunk_lib import _sync
from icechunk_lib.errors import RepositoryNotFoundError
from icechunk_lib.objects import ObjectStore
from icechunk_lib.refs import RefStore
from icechunk_lib.repository_refs import repository_exists, require_writable
from icechunk_lib.storage import Storage

if TYPE_CHECKING:
    from icechunk_lib.ops.expire import ExpiredSnapshots
    from icechunk_lib.ops.expire import ProgressCallback as ExpireProgress
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
            require_writable(self._storage)
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

    # --- statistics ------------------------------------------------------------------------------

    # --- manifest layout -------------------------------------------------------------------------
