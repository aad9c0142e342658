"""The maintenance methods of ``Repository``: verify, garbage collection, snapshot
expiration, storage statistics and manifest rewrites.

A base class of ``Repository`` (which supplies the storage, ref store and object store). Each
method is a thin wrapper over an operation in ``icechunk_lib.ops``, imported when called so
that opening a repository for ``ick log`` loads no numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.errors import RepositoryNotFoundError
from icechunk_lib.objects import ObjectStore
from icechunk_lib.refs import RefStore
from icechunk_lib.repository_refs import repository_exists, require_writable
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

        require_writable(self._storage)
        return await rewrite_manifests(self._objects, self._refs, branch, message, metadata)
