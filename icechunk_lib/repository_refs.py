"""The branch and tag methods of ``Repository``, and the checks they share with it.

A base class of ``Repository`` (which supplies the storage, ref store and object store), so
that ``repository.py`` keeps opening, history and sessions, and refs live here.
"""

from __future__ import annotations

from icechunk_lib import _sync
from icechunk_lib.errors import (
    ConflictError,
    MissingObjectError,
    SnapshotNotFoundError,
)
from icechunk_lib.format.ids import is_object_id
from icechunk_lib.objects import ObjectStore
from icechunk_lib.refs import DEFAULT_BRANCH, RefStore, branch_key
from icechunk_lib.storage import Storage
from icechunk_lib.write_access import WriteAccess

__all__ = ["BranchesAndTags", "repository_exists"]


class BranchesAndTags:
    """Create, list, look up, move and delete branches and tags (Icechunk 1.1 names)."""

    _storage: Storage
    _objects: ObjectStore
    _refs: RefStore
    _write_access: WriteAccess

    async def _check_snapshot(self, snapshot_id: str) -> None:
        """``SnapshotNotFoundError`` unless ``snapshot_id`` names a snapshot that exists."""
        if not isinstance(snapshot_id, str) or not is_object_id(snapshot_id):
            raise SnapshotNotFoundError(str(snapshot_id), "not a valid snapshot id")
        try:
            await self._objects.snapshot_header(snapshot_id)
        except MissingObjectError:  # named by the caller: not found, not damage
            raise SnapshotNotFoundError(snapshot_id) from None

    # --- branches --------------------------------------------------------------------------------

    def create_branch(self, branch: str, snapshot_id: str) -> None:
        """Create ``branch`` pointing at ``snapshot_id``.

        Raises:
            BranchAlreadyExistsError: the name is taken.
            InvalidNameError: the name breaks the rules (docs/guide.md, "Branches").
            SnapshotNotFoundError: there is no such snapshot.
        """
        _sync.run(self.create_branch_async(branch, snapshot_id))

    async def create_branch_async(self, branch: str, snapshot_id: str) -> None:
        """Async twin of ``create_branch``."""
        await self._write_access.require()
        await self._check_snapshot(snapshot_id)
        await self._refs.create_branch(branch, snapshot_id)

    def list_branches(self) -> set[str]:
        """The names of every branch."""
        return _sync.run(self.list_branches_async())

    async def list_branches_async(self) -> set[str]:
        """Async twin of ``list_branches``."""
        return await self._refs.list_branches()

    def lookup_branch(self, branch: str) -> str:
        """The snapshot id at the tip of ``branch``; ``BranchNotFoundError`` if none."""
        return _sync.run(self.lookup_branch_async(branch))

    async def lookup_branch_async(self, branch: str) -> str:
        """Async twin of ``lookup_branch``."""
        return await self._refs.lookup_branch(branch)

    def reset_branch(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        """Point ``branch`` at ``snapshot_id``; with ``from_snapshot_id`` only if it is there.

        Raises:
            BranchNotFoundError, SnapshotNotFoundError: no such branch or snapshot.
            ConflictError: the branch is not at ``from_snapshot_id``; nothing changed.
        """
        _sync.run(self.reset_branch_async(branch, snapshot_id, from_snapshot_id=from_snapshot_id))

    async def reset_branch_async(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        """Async twin of ``reset_branch``."""
        await self._write_access.require()
        await self._check_snapshot(snapshot_id)
        try:
            await self._refs.update_branch(
                branch,
                snapshot_id,
                from_snapshot_id,
                check=from_snapshot_id is not None,
                action="reset",
            )
        except ConflictError as exc:
            raise ConflictError(
                branch,
                exc.expected_parent,
                exc.actual_parent,
                next_step="it was not reset; look at where it is now and reset again",
            ) from None

    def delete_branch(self, branch: str) -> None:
        """Delete ``branch``; its snapshots stay readable by id.

        Raises ``BranchNotFoundError``, or ``ProtectedBranchError`` for ``main``.
        """
        _sync.run(self.delete_branch_async(branch))

    async def delete_branch_async(self, branch: str) -> None:
        """Async twin of ``delete_branch``."""
        await self._write_access.require()
        await self._refs.delete_branch(branch)

    # --- tags ------------------------------------------------------------------------------------

    def create_tag(self, tag: str, snapshot_id: str) -> None:
        """Create the immutable tag ``tag`` at ``snapshot_id``.

        Raises:
            TagAlreadyExistsError: the tag exists, or existed (tag names are never reused).
            InvalidNameError: the name breaks the rules.
            SnapshotNotFoundError: there is no such snapshot.
        """
        _sync.run(self.create_tag_async(tag, snapshot_id))

    async def create_tag_async(self, tag: str, snapshot_id: str) -> None:
        """Async twin of ``create_tag``."""
        await self._write_access.require()
        await self._check_snapshot(snapshot_id)
        await self._refs.create_tag(tag, snapshot_id)

    def list_tags(self) -> set[str]:
        """The names of every tag (deleted ones are gone)."""
        return _sync.run(self.list_tags_async())

    async def list_tags_async(self) -> set[str]:
        """Async twin of ``list_tags``."""
        return await self._refs.list_tags()

    def lookup_tag(self, tag: str) -> str:
        """The snapshot id ``tag`` points at; ``TagNotFoundError`` if none (or deleted)."""
        return _sync.run(self.lookup_tag_async(tag))

    async def lookup_tag_async(self, tag: str) -> str:
        """Async twin of ``lookup_tag``."""
        return await self._refs.lookup_tag(tag)

    def delete_tag(self, tag: str) -> None:
        """Delete ``tag``; its name stays taken. ``TagNotFoundError`` if there is none."""
        _sync.run(self.delete_tag_async(tag))

    async def delete_tag_async(self, tag: str) -> None:
        """Async twin of ``delete_tag``."""
        await self._write_access.require()
        await self._refs.delete_tag(tag)


async def repository_exists(storage: Storage) -> bool:
    """Whether ``storage`` holds a repository (its default branch exists)."""
    return await storage.exists(branch_key(DEFAULT_BRANCH))
