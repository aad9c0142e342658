"""``Repository``: opening repositories, refs, history and sessions (Icechunk 1.1 names)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.errors import (
    BranchAlreadyExistsError,
    RepositoryAlreadyExistsError,
    RepositoryNotFoundError,
)
from icechunk_lib.format import RepositoryConfig, new_snapshot_id
from icechunk_lib.format.config import encode_config
from icechunk_lib.format.snapshot import Snapshot
from icechunk_lib.history import (
    AncestryWalk,
    ReflogEntry,
    SnapshotInfo,
    lookup_info,
    resolve_revision,
    snapshot_as_of,
)
from icechunk_lib.objects import SNAPSHOTS, ObjectStore
from icechunk_lib.preloading import preload_manifests
from icechunk_lib.refs import DEFAULT_BRANCH, RefStore, now_us
from icechunk_lib.repository_maintenance import Maintenance
from icechunk_lib.repository_refs import BranchesAndTags, repository_exists
from icechunk_lib.saved_config import read_config, set_value, swap_config, write_new_config
from icechunk_lib.storage import Storage
from icechunk_lib.storage_settings import tuning_from_settings
from icechunk_lib.virtual import AnyContainerCredential, VirtualAccess, VirtualResolver
from icechunk_lib.virtual.fetch import VirtualFetcher
from icechunk_lib.write_access import WriteAccess

if TYPE_CHECKING:
    from icechunk_lib.conflicts import ConflictSolver
    from icechunk_lib.ops.diff import Diff
    from icechunk_lib.session import Session
    from icechunk_lib.store import IcechunkStore

__all__ = ["Repository", "SnapshotInfo"]

INITIAL_COMMIT_MESSAGE = "Repository initialized"

Authorization = dict[str, AnyContainerCredential | None]
"""``authorize_virtual_chunk_access``: container prefix -> credentials (None: default or
anonymous access). Kept in memory by the repository object, never saved."""


class Repository(BranchesAndTags, Maintenance):
    """A versioned Zarr repository in one storage location.

    Opening, config, history, diffs and sessions live here; the branch and tag methods come
    from ``BranchesAndTags`` (``repository_refs.py``), verify, gc, expiration, stats and
    manifest rewrites from ``Maintenance`` (``repository_maintenance.py``).
    """

    def __init__(
        self,
        storage: Storage,
        config: RepositoryConfig,
        *,
        config_version: str | None = None,
        virtual_access: VirtualAccess | None = None,
    ) -> None:
        """``config_version`` is the version token of the saved config this object read
        (None: none was saved); ``save_config`` swaps against it, so no change is lost.
        ``virtual_access`` holds the containers the user authorised (none if None)."""
        self._storage = storage
        self._config = config.validate()
        self._config_version = config_version
        self._virtual_access = virtual_access or VirtualAccess()
        self._virtual = VirtualFetcher(self._virtual_access)
        self._objects = ObjectStore(storage, self._config)
        self._refs = RefStore(storage)
        if self._config.storage is not None:  # else the storage keeps its own tuning
            storage.apply_tuning(tuning_from_settings(self._config.storage))
        # Probed at create/open; a repository built otherwise (unpickled) probes at its
        # first write.
        self._write_access = WriteAccess(storage)

    def __repr__(self) -> str:
        return f"<Repository at {self._storage.url}>"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "storage": self._storage,
            "config": self._config,
            "config_version": self._config_version,
            "virtual_access": self._virtual_access,  # pickles without its secrets
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["storage"],
            state["config"],
            config_version=state.get("config_version"),
            virtual_access=state.get("virtual_access"),
        )

    @property
    def storage(self) -> Storage:
        """The storage location the repository lives in."""
        return self._storage

    @property
    def config(self) -> RepositoryConfig:
        """The config in effect here; change it and ``save_config`` to keep the change."""
        return self._config

    @property
    def authorized_virtual_container_prefixes(self) -> set[str]:
        """The container prefixes authorised when this repository object was opened."""
        return self._virtual_access.prefixes

    def _virtual_resolver(self) -> VirtualResolver:
        """Resolves virtual chunk locations against the containers of the config in effect
        and the authorisation given at open (for the read path)."""
        return VirtualResolver(self._config.virtual_chunk_containers, self._virtual_access)

    # --- creating and opening ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: Authorization | None = None,
    ) -> Repository:
        """Create a repository in an empty location, with one commit on ``main``.

        ``authorize_virtual_chunk_access`` maps the prefixes of the virtual chunk containers
        this repository object may read from to their credentials (None: default or
        anonymous access); it is kept in memory only, never written to the repository.

        Raises:
            RepositoryAlreadyExistsError: a repository, or other data, is already there.
            ReadOnlyStorageError: the storage cannot write safely (no atomic operations).
            ConfigError: ``config`` (or the authorisation) is invalid; nothing is written.
        """
        return _sync.run(cls.create_async(storage, config, authorize_virtual_chunk_access))

    @classmethod
    async def create_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: Authorization | None = None,
    ) -> Repository:
        """Async twin of ``create``."""
        config = (config or RepositoryConfig.default()).validate()
        access = VirtualAccess(authorize_virtual_chunk_access)
        if config.storage is not None:  # may turn conditional writes off
            storage.apply_tuning(tuning_from_settings(config.storage))
        write_access = WriteAccess(storage)
        await write_access.require()
        if await repository_exists(storage):
            raise RepositoryAlreadyExistsError(storage.url)
        if not await _empty_or_unfinished(storage):
            raise RepositoryAlreadyExistsError(
                storage.url, "the location is not empty; choose an empty directory or prefix"
            )
        await storage.create_root()
        repo = cls(storage, config, virtual_access=access)
        repo._write_access = write_access
        initial = Snapshot(
            id=new_snapshot_id(),
            parent_id=None,
            written_at=now_us(),
            message=INITIAL_COMMIT_MESSAGE,
            metadata={},
        )
        await repo._objects.write_snapshot(initial)
        # Creating main is the claim on the location: only one of two racing creators wins,
        # and only the winner writes the config.
        try:
            await repo._refs.create_branch(DEFAULT_BRANCH, initial.id)
        except BranchAlreadyExistsError:
            raise RepositoryAlreadyExistsError(storage.url) from None
        repo._config_version = await write_new_config(storage, encode_config(config))
        return repo

    @classmethod
    def open(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: Authorization | None = None,
    ) -> Repository:
        """Open an existing repository; ``config`` (if given) replaces the saved one here.

        ``authorize_virtual_chunk_access``: as for ``create``; virtual chunks are read only
        from declared containers authorised here.

        Raises:
            RepositoryNotFoundError: there is no repository at ``storage``.
            IntegrityError, UnsupportedError: the saved config is damaged or newer than ick.
            ConfigError: the authorisation is invalid.
        """
        return _sync.run(cls.open_async(storage, config, authorize_virtual_chunk_access))

    @classmethod
    async def open_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: Authorization | None = None,
    ) -> Repository:
        """Async twin of ``open``."""
        access = VirtualAccess(authorize_virtual_chunk_access)
        if not await repository_exists(storage):
            raise RepositoryNotFoundError(storage.url)
        # The version is read even when ``config`` is given: saving swaps against it.
        saved, version = await read_config(storage)
        repo = cls(
            storage,
            config or saved or RepositoryConfig.default(),
            config_version=version,
            virtual_access=access,
        )
        await repo._write_access.probe()
        return repo

    @classmethod
    def open_or_create(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: Authorization | None = None,
    ) -> Repository:
        """Open the repository at ``storage``, creating it first if there is none.

        Of two processes racing to create it, the loser opens the winner's. Raises what
        ``open`` and ``create`` raise (a location holding other data: already exists).
        """
        return _sync.run(cls.open_or_create_async(storage, config, authorize_virtual_chunk_access))

    @classmethod
    async def open_or_create_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: Authorization | None = None,
    ) -> Repository:
        """Async twin of ``open_or_create``."""
        auth = authorize_virtual_chunk_access
        if await repository_exists(storage):
            return await cls.open_async(storage, config, auth)
        try:
            return await cls.create_async(storage, config, auth)
        except RepositoryAlreadyExistsError:
            if await repository_exists(storage):  # lost a creation race: use the winner's
                return await cls.open_async(storage, config, auth)
            raise

    @staticmethod
    def exists(storage: Storage) -> bool:
        """Whether ``storage`` holds a repository (its main branch exists)."""
        return _sync.run(Repository.exists_async(storage))

    @staticmethod
    async def exists_async(storage: Storage) -> bool:
        """Async twin of ``exists``."""
        return await repository_exists(storage)

    @staticmethod
    def fetch_config(storage: Storage) -> RepositoryConfig | None:
        """The configuration saved in the repository, or None if none was saved.

        Raises:
            IntegrityError, UnsupportedError: the saved config is damaged or newer than ick.
        """
        return _sync.run(Repository.fetch_config_async(storage))

    @staticmethod
    async def fetch_config_async(storage: Storage) -> RepositoryConfig | None:
        """Async twin of ``fetch_config``."""
        return (await read_config(storage))[0]

    def save_config(self) -> None:
        """Persist this repository's current ``config`` in the repository.

        A compare-and-swap against the saved config this object read, so no one's change
        is lost.

        Raises:
            ConfigChangedError: someone saved another config since; nothing is written
                (reopen the repository, apply the change again and save).
            ConfigError: the config is invalid. ReadOnlyStorageError: the storage cannot
                write safely.
        """
        _sync.run(self.save_config_async())

    async def save_config_async(self) -> None:
        """Async twin of ``save_config``."""
        self._config.validate()
        await self._write_access.require()
        self._config_version = await swap_config(self._storage, self._config, self._config_version)

    def set_config_value(self, key: str, value: str) -> tuple[Any, Any]:
        """Set the dotted setting ``key`` (e.g. ``compression.level``) from text and save.

        Returns the value replaced and the new one. When someone else saved the config
        since this object read it, their change is merged if it touched other settings
        (re-read and retried).

        Raises:
            ConfigError: ``key`` is unknown or ``value`` is not valid for it.
            ConfigChangedError: someone else changed ``key`` too; nothing is saved.
        """
        return _sync.run(self.set_config_value_async(key, value))

    async def set_config_value_async(self, key: str, value: str) -> tuple[Any, Any]:
        """Async twin of ``set_config_value``."""
        await self._write_access.require()
        config, version, before, after = await set_value(
            self._storage, self._config, self._config_version, key, value
        )
        self._adopt_config(config, version)
        return before, after

    def _adopt_config(self, config: RepositoryConfig, version: str | None) -> None:
        self._config, self._config_version = config, version
        self._objects = ObjectStore(self._storage, config)
        if config.storage is not None:
            self._storage.apply_tuning(tuning_from_settings(config.storage))
        self._write_access.forget()  # the settings may turn conditional writes on or off

    # --- history ---------------------------------------------------------------------------------

    async def _resolve(
        self,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> str:
        given = [x for x in (branch, tag, snapshot_id) if x is not None]
        if len(given) != 1:
            raise ValueError("pass exactly one of branch=, tag= or snapshot_id=")
        if branch is not None:
            return await self._refs.lookup_branch(branch)
        if tag is not None:
            return await self._refs.lookup_tag(tag)
        assert snapshot_id is not None
        await self._check_snapshot(snapshot_id)
        return snapshot_id

    def ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> Iterator[SnapshotInfo]:
        """The snapshot and its ancestors, newest first (one read per ~100 entries).

        After ``expire_snapshots``, a kept snapshot whose parent was released has the root
        snapshot as its parent here (``parent_id``), as in Icechunk.

        Pass exactly one of ``branch``, ``tag`` and ``snapshot_id`` (else ``ValueError``).

        Raises:
            BranchNotFoundError, TagNotFoundError, SnapshotNotFoundError: no such start.
            MissingObjectError: a snapshot of the history is missing (the repository is
                damaged).
        """
        start = _sync.run(self._resolve(branch, tag, snapshot_id))
        walk = AncestryWalk(self._objects, start)
        while (page := _sync.run(walk.next_page())) is not None:
            yield from page

    async def async_ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> AsyncIterator[SnapshotInfo]:
        """Async twin of ``ancestry`` (also ``ancestry_async``)."""
        walk = AncestryWalk(self._objects, await self._resolve(branch, tag, snapshot_id))
        while (page := await walk.next_page()) is not None:
            for info in page:
                yield info

    ancestry_async = async_ancestry

    def resolve(self, rev: str) -> str:
        """The snapshot id of a revision: branch, tag, snapshot id or unique id prefix (at
        least 4 characters), optionally followed by ``~N`` for the N-th parent.

        Raises:
            RevisionNotFoundError: nothing matches ``rev``.
            AmbiguousRefError: it matches several things (``candidates`` lists them).
            SnapshotNotFoundError: ``~N`` goes past the first snapshot.
        """
        return _sync.run(self.resolve_async(rev))

    async def resolve_async(self, rev: str) -> str:
        """Async twin of ``resolve``."""
        return await resolve_revision(self._objects, self._refs, rev)

    def reflog(self, branch: str) -> list[ReflogEntry]:
        """Every recorded position of ``branch`` (creation, commits, resets), newest first.

        Raises ``BranchNotFoundError`` (``InvalidNameError`` for a name no branch can have).
        """
        return _sync.run(self.reflog_async(branch))

    async def reflog_async(self, branch: str) -> list[ReflogEntry]:
        """Async twin of ``reflog``."""
        return [ReflogEntry._from(item) for item in await self._refs.reflog(branch)]

    def lookup_snapshot(self, snapshot_id: str) -> SnapshotInfo:
        """The history entry of one snapshot; ``SnapshotNotFoundError`` if there is none."""
        return _sync.run(self.lookup_snapshot_async(snapshot_id))

    async def lookup_snapshot_async(self, snapshot_id: str) -> SnapshotInfo:
        """Async twin of ``lookup_snapshot``."""
        await self._check_snapshot(snapshot_id)
        return await lookup_info(self._objects, snapshot_id)

    # --- diff ----------------------------------------------------------------------------------

    def diff(
        self,
        *,
        from_branch: str | None = None,
        from_tag: str | None = None,
        from_snapshot_id: str | None = None,
        to_branch: str | None = None,
        to_tag: str | None = None,
        to_snapshot_id: str | None = None,
    ) -> Diff:
        """What changed from one version to another.

        Pass exactly one of ``from_branch``, ``from_tag`` and ``from_snapshot_id``, and one
        ``to_`` (else ``ValueError``); an unknown one raises its ``NotFoundError``.
        """
        return _sync.run(
            self.diff_async(
                from_branch=from_branch,
                from_tag=from_tag,
                from_snapshot_id=from_snapshot_id,
                to_branch=to_branch,
                to_tag=to_tag,
                to_snapshot_id=to_snapshot_id,
            )
        )

    async def diff_async(
        self,
        *,
        from_branch: str | None = None,
        from_tag: str | None = None,
        from_snapshot_id: str | None = None,
        to_branch: str | None = None,
        to_tag: str | None = None,
        to_snapshot_id: str | None = None,
    ) -> Diff:
        """Async twin of ``diff``."""
        from icechunk_lib.ops.diff import diff_snapshots

        a = await self._resolve(from_branch, from_tag, from_snapshot_id)
        b = await self._resolve(to_branch, to_tag, to_snapshot_id)
        old = await self._objects.snapshot(a)
        new = await self._objects.snapshot(b)
        return await diff_snapshots(self._objects, old, new)

    # --- sessions --------------------------------------------------------------------------------

    def readonly_session(
        self,
        branch: str | None = None,
        *,
        tag: str | None = None,
        snapshot_id: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> Session:
        """A read-only session at a branch tip, tag, snapshot, or a branch ``as_of`` a time.

        With none of ``branch``, ``tag`` and ``snapshot_id``, the tip of ``main``.

        Raises:
            ValueError: more than one of them, or ``as_of`` without a timezone.
            BranchNotFoundError, TagNotFoundError, SnapshotNotFoundError: no such version,
                or (snapshot) nothing was committed by ``as_of``.
            IntegrityError: the snapshot is missing or damaged (the repository is).
        """
        return _sync.run(
            self.readonly_session_async(branch, tag=tag, snapshot_id=snapshot_id, as_of=as_of)
        )

    async def readonly_session_async(
        self,
        branch: str | None = None,
        *,
        tag: str | None = None,
        snapshot_id: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> Session:
        """Async twin of ``readonly_session``."""
        if branch is None and tag is None and snapshot_id is None:
            branch = DEFAULT_BRANCH
        sid = await self._resolve(branch, tag, snapshot_id)
        if as_of is not None:
            name = branch or tag or snapshot_id or ""
            sid = await snapshot_as_of(self._objects, sid, as_of, name)
        # Load the snapshot now: a missing or damaged one fails here, not later inside zarr
        # (which reads a missing key as an empty group).
        snapshot = await self._objects.snapshot(sid)
        await self._preload(snapshot)
        from icechunk_lib.session import Session

        return Session(
            self._objects,
            sid,
            branch=None,
            read_only=True,
            refs=self._refs,
            virtual=self._virtual,
        )

    def writable_session(self, branch: str) -> Session:
        """A session whose changes ``commit`` adds to ``branch``.

        Raises ``BranchNotFoundError``, ``ReadOnlyStorageError`` (the storage cannot write
        safely) or ``IntegrityError`` (the branch's snapshot is missing or damaged).
        """
        return _sync.run(self.writable_session_async(branch))

    async def writable_session_async(self, branch: str) -> Session:
        """Async twin of ``writable_session``."""
        await self._write_access.require()
        sid = await self._refs.lookup_branch(branch)
        snapshot = await self._objects.snapshot(sid)  # as for read-only: fail here if damaged
        await self._preload(snapshot)
        from icechunk_lib.session import Session

        return Session(
            self._objects,
            sid,
            branch=branch,
            read_only=False,
            refs=self._refs,
            write_access=self._write_access,
            virtual=self._virtual,
        )

    async def _preload(self, snapshot: Snapshot) -> None:
        """Read the manifests the preload config picks (``config.manifest.preload``)."""
        if self._objects.config.manifest.preload is not None:
            await preload_manifests(self._objects, snapshot)

    @contextlib.contextmanager
    def transaction(
        self,
        branch: str,
        *,
        message: str,
        metadata: dict[str, Any] | None = None,
        rebase_with: ConflictSolver | None = None,
        rebase_tries: int = 1_000,
    ) -> Iterator[IcechunkStore]:
        """Yield a writable store on ``branch``; commit when the block ends, discard on error.

        Raises what ``writable_session`` and ``Session.commit`` raise: ``ConflictError`` if
        the branch moved and ``rebase_with`` could not rebase, ``NoChangesToCommitError``
        if the block wrote nothing.
        """
        session = self.writable_session(branch)
        yield session.store
        session.commit(message, metadata, rebase_with=rebase_with, rebase_tries=rebase_tries)


async def _empty_or_unfinished(storage: Storage) -> bool:
    """True if the storage is empty or holds only what an interrupted ``create`` leaves."""
    async for info in storage.list(""):
        if not info.key.startswith(SNAPSHOTS):
            return False
    return True
