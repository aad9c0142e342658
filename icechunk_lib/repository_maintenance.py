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
from icechunk_lib.repository_refs import repository_exists
from icechunk_lib.storage import Storage

if TYPE_CHECKING:
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

    # --- statistics ------------------------------------------------------------------------------

    # --- manifest layout -------------------------------------------------------------------------
