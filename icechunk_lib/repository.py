"""``Repository``: opening repositories, refs, history and sessions (Icechunk 1.1 names)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.errors import (
    BranchAlreadyExistsError,
    ConfigChangedError,
    ConflictError,
    MissingObjectError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    ReadOnlyStorageError,
    RepositoryAlreadyExistsError,
    RepositoryNotFoundError,
    SnapshotNotFoundError,
)
from icechunk_lib.format import RepositoryConfig, new_object_id
from icechunk_lib.format.config import decode_config, encode_config
from icechunk_lib.format.ids import is_object_id
from icechunk_lib.format.snapshot import Snapshot
from icechunk_lib.history import ReflogEntry, SnapshotInfo, resolve_revision
from icechunk_lib.objects import CONFIG, SNAPSHOTS, ObjectStore
from icechunk_lib.refs import DEFAULT_BRANCH, RefStore, branch_key, now_us
from icechunk_lib.storage import Storage

if TYPE_CHECKING:
    from icechunk_lib.conflicts import ConflictSolver
    from icechunk_lib.ops.diff import Diff
    from icechunk_lib.session import Session
    from icechunk_lib.store import IcechunkStore

__all__ = ["Repository", "SnapshotInfo"]

INITIAL_COMMIT_MESSAGE = "Repository initialized"


class Repository:
    """A versioned Zarr repository in one storage location."""

    def __init__(
        self, storage: Storage, config: RepositoryConfig, *, config_version: str | None = None
    ) -> None:
        """``config_version`` is the version token of the saved config this object read
        (None: none was saved); ``save_config`` swaps against it, so no change is lost."""
        self._storage = storage
        self._config = config.validate()
        self._config_version = config_version
        self._objects = ObjectStore(storage, self._config)
        self._refs = RefStore(storage)

    def __repr__(self) -> str:
        return f"<Repository at {self._storage.url}>"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "storage": self._storage,
            "config": self._config,
            "config_version": self._config_version,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["storage"], state["config"], config_version=state.get("config_version")
        )

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def config(self) -> RepositoryConfig:
        return self._config

    # --- creating and opening ------------------------------------------------------------------

    @classmethod
    def create(cls, storage: Storage, config: RepositoryConfig | None = None) -> Repository:
        """Create a repository in an empty location, with one commit on ``main``."""
        return _sync.run(cls.create_async(storage, config))

    @classmethod
    async def create_async(
        cls, storage: Storage, config: RepositoryConfig | None = None
    ) -> Repository:
        config = (config or RepositoryConfig.default()).validate()
        _require_writable(storage)
        if await _repository_exists(storage):
            raise RepositoryAlreadyExistsError(storage.url)
        if not await _empty_or_unfinished(storage):
            raise RepositoryAlreadyExistsError(
                storage.url, "the location is not empty; choose an empty directory or prefix"
            )
        await storage.create_root()
        repo = cls(storage, config)
        initial = Snapshot(
            id=new_object_id(),
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
        repo._config_version = await _write_new_config(storage, encode_config(config))
        return repo

    @classmethod
    def open(cls, storage: Storage, config: RepositoryConfig | None = None) -> Repository:
        """Open an existing repository; ``config`` (if given) replaces the saved one here."""
        return _sync.run(cls.open_async(storage, config))

    @classmethod
    async def open_async(
        cls, storage: Storage, config: RepositoryConfig | None = None
    ) -> Repository:
        if not await _repository_exists(storage):
            raise RepositoryNotFoundError(storage.url)
        # The version is read even when ``config`` is given: saving swaps against it.
        saved, version = await _read_config(storage)
        return cls(storage, config or saved or RepositoryConfig.default(), config_version=version)

    @classmethod
    def open_or_create(cls, storage: Storage, config: RepositoryConfig | None = None) -> Repository:
        return _sync.run(cls.open_or_create_async(storage, config))

    @classmethod
    async def open_or_create_async(
        cls, storage: Storage, config: RepositoryConfig | None = None
    ) -> Repository:
        if await _repository_exists(storage):
            return await cls.open_async(storage, config)
        try:
            return await cls.create_async(storage, config)
        except RepositoryAlreadyExistsError:
            if await _repository_exists(storage):  # lost a creation race: use the winner's
                return await cls.open_async(storage, config)
            raise

    @staticmethod
    def exists(storage: Storage) -> bool:
        return _sync.run(Repository.exists_async(storage))

    @staticmethod
    async def exists_async(storage: Storage) -> bool:
        return await _repository_exists(storage)

    @staticmethod
    def fetch_config(storage: Storage) -> RepositoryConfig | None:
        """The configuration saved in the repository, or None if none was saved."""
        return _sync.run(Repository.fetch_config_async(storage))

    @staticmethod
    async def fetch_config_async(storage: Storage) -> RepositoryConfig | None:
        return (await _read_config(storage))[0]

    def save_config(self) -> None:
        """Persist this repository's current ``config`` in the repository.

        A compare-and-swap against the saved config this object read: if anyone saved
        another since, nothing is written and ``ConfigChangedError`` is raised (reopen the
        repository, apply the change again and save).
        """
        _sync.run(self.save_config_async())

    async def save_config_async(self) -> None:
        self._config.validate()
        _require_writable(self._storage)
        self._config_version = await _swap_config(
            self._storage, encode_config(self._config), self._config_version
        )

    def set_config_value(self, key: str, value: str) -> tuple[Any, Any]:
        """Set the dotted setting ``key`` (e.g. ``compression.level``) from text and save.

        Returns the value replaced and the new one. When someone else saved the config
        since this object read it, their change is merged if it touched other settings
        (re-read and retried); if it changed ``key`` too, ``ConfigChangedError`` is raised.
        """
        return _sync.run(self.set_config_value_async(key, value))

    async def set_config_value_async(self, key: str, value: str) -> tuple[Any, Any]:
        _require_writable(self._storage)
        base, version = self._config, self._config_version
        for _ in range(_CONFIG_TRIES):
            updated = base.with_value(key, value)
            before = _config_value(base, key)
            try:
                new_version = await _swap_config(self._storage, encode_config(updated), version)
            except ConfigChangedError:
                saved, version = await _read_config(self._storage)
                saved = saved or RepositoryConfig.default()
                if _config_value(saved, key) != before:
                    raise ConfigChangedError(
                        f"config key {key!r} was changed by someone else meanwhile (to "
                        f"{_config_value(saved, key)!r}); nothing was saved, look and retry"
                    ) from None
                base = saved
                continue
            self._adopt_config(updated, new_version)
            return before, _config_value(updated, key)
        raise ConfigChangedError(
            f"the repository config kept changing while setting {key!r}; nothing was saved"
        )

    def _adopt_config(self, config: RepositoryConfig, version: str | None) -> None:
        self._config, self._config_version = config, version
        self._objects = ObjectStore(self._storage, config)

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

    async def _check_snapshot(self, snapshot_id: str) -> None:
        if not isinstance(snapshot_id, str) or not is_object_id(snapshot_id):
            raise SnapshotNotFoundError(str(snapshot_id), "not a valid snapshot id")
        try:
            await self._objects.snapshot_header(snapshot_id)
        except MissingObjectError:  # named by the caller: not found, not damage
            raise SnapshotNotFoundError(snapshot_id) from None

    def ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> Iterator[SnapshotInfo]:
        """The snapshot and its ancestors, newest first."""
        start = _sync.run(self._resolve(branch, tag, snapshot_id))
        cursor: str | None = start
        while cursor is not None:
            page = _sync.run(self._history_page(cursor))
            yield from page
            cursor = page[-1].parent_id

    async def _history_page(self, snapshot_id: str) -> list[SnapshotInfo]:
        """A snapshot followed by the ancestors it summarises: one read for many entries."""
        header = await self._objects.snapshot_header(snapshot_id)
        return [SnapshotInfo._from(header), *(SnapshotInfo._from(a) for a in header.ancestry)]

    async def async_ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> AsyncIterator[SnapshotInfo]:
        cursor: str | None = await self._resolve(branch, tag, snapshot_id)
        while cursor is not None:
            page = await self._history_page(cursor)
            for info in page:
                yield info
            cursor = page[-1].parent_id

    ancestry_async = async_ancestry

    def resolve(self, rev: str) -> str:
        """The snapshot id of a revision: branch, tag, snapshot id or unique id prefix (at
        least 4 characters), optionally followed by ``~N`` for the N-th parent."""
        return _sync.run(self.resolve_async(rev))

    async def resolve_async(self, rev: str) -> str:
        return await resolve_revision(self._objects, self._refs, rev)

    def reflog(self, branch: str) -> list[ReflogEntry]:
        """Every recorded position of ``branch`` (creation, commits, resets), newest first."""
        return _sync.run(self.reflog_async(branch))

    async def reflog_async(self, branch: str) -> list[ReflogEntry]:
        return [ReflogEntry._from(item) for item in await self._refs.reflog(branch)]

    def lookup_snapshot(self, snapshot_id: str) -> SnapshotInfo:
        return _sync.run(self.lookup_snapshot_async(snapshot_id))

    async def lookup_snapshot_async(self, snapshot_id: str) -> SnapshotInfo:
        await self._check_snapshot(snapshot_id)
        return SnapshotInfo._from(await self._objects.snapshot_header(snapshot_id))

    # --- branches --------------------------------------------------------------------------------

    def create_branch(self, branch: str, snapshot_id: str) -> None:
        _sync.run(self.create_branch_async(branch, snapshot_id))

    async def create_branch_async(self, branch: str, snapshot_id: str) -> None:
        _require_writable(self._storage)
        await self._check_snapshot(snapshot_id)
        await self._refs.create_branch(branch, snapshot_id)

    def list_branches(self) -> set[str]:
        return _sync.run(self.list_branches_async())

    async def list_branches_async(self) -> set[str]:
        return await self._refs.list_branches()

    def lookup_branch(self, branch: str) -> str:
        return _sync.run(self.lookup_branch_async(branch))

    async def lookup_branch_async(self, branch: str) -> str:
        return await self._refs.lookup_branch(branch)

    def reset_branch(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        """Point ``branch`` at ``snapshot_id``; with ``from_snapshot_id`` only if it is there."""
        _sync.run(self.reset_branch_async(branch, snapshot_id, from_snapshot_id=from_snapshot_id))

    async def reset_branch_async(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        _require_writable(self._storage)
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
        _sync.run(self.delete_branch_async(branch))

    async def delete_branch_async(self, branch: str) -> None:
        _require_writable(self._storage)
        await self._refs.delete_branch(branch)

    # --- tags ------------------------------------------------------------------------------------

    def create_tag(self, tag: str, snapshot_id: str) -> None:
        _sync.run(self.create_tag_async(tag, snapshot_id))

    async def create_tag_async(self, tag: str, snapshot_id: str) -> None:
        _require_writable(self._storage)
        await self._check_snapshot(snapshot_id)
        await self._refs.create_tag(tag, snapshot_id)

    def list_tags(self) -> set[str]:
        return _sync.run(self.list_tags_async())

    async def list_tags_async(self) -> set[str]:
        return await self._refs.list_tags()

    def lookup_tag(self, tag: str) -> str:
        return _sync.run(self.lookup_tag_async(tag))

    async def lookup_tag_async(self, tag: str) -> str:
        return await self._refs.lookup_tag(tag)

    def delete_tag(self, tag: str) -> None:
        _sync.run(self.delete_tag_async(tag))

    async def delete_tag_async(self, tag: str) -> None:
        _require_writable(self._storage)
        await self._refs.delete_tag(tag)

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
        """What changed from one version to another."""
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
        """A read-only session at a branch tip, tag, snapshot, or a branch ``as_of`` a time."""
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
        if branch is None and tag is None and snapshot_id is None:
            branch = DEFAULT_BRANCH
        sid = await self._resolve(branch, tag, snapshot_id)
        if as_of is not None:
            sid = await self._as_of(sid, as_of, branch or tag or snapshot_id or "")
        # Load the snapshot now: a missing or damaged one fails here, not later inside zarr
        # (which reads a missing key as an empty group).
        await self._objects.snapshot(sid)
        from icechunk_lib.session import Session

        return Session(self._objects, sid, branch=None, read_only=True, refs=self._refs)

    async def _as_of(self, start: str, when: dt.datetime, name: str) -> str:
        if not isinstance(when, dt.datetime) or when.utcoffset() is None:
            raise ValueError(
                "as_of must be a timezone-aware datetime (for example datetime.now(UTC)), "
                f"not {when!r}"
            )
        limit = int(when.timestamp() * 1_000_000)
        cursor: str | None = start
        while cursor is not None:
            header = await self._objects.snapshot_header(cursor)
            if header.written_at <= limit:
                return header.id
            for entry in header.ancestry:
                if entry.written_at <= limit:
                    return entry.id
            cursor = header.ancestry[-1].parent_id if header.ancestry else header.parent_id
        raise SnapshotNotFoundError(name, f"nothing was committed at or before {when.isoformat()}")

    def writable_session(self, branch: str) -> Session:
        """A session whose changes ``commit`` adds to ``branch``."""
        return _sync.run(self.writable_session_async(branch))

    async def writable_session_async(self, branch: str) -> Session:
        _require_writable(self._storage)
        sid = await self._refs.lookup_branch(branch)
        await self._objects.snapshot(sid)  # as for read-only sessions: fail here if damaged
        from icechunk_lib.session import Session

        return Session(self._objects, sid, branch=branch, read_only=False, refs=self._refs)

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
        """Yield a store; commit on success, discard on error."""
        session = self.writable_session(branch)
        yield session.store
        session.commit(message, metadata, rebase_with=rebase_with, rebase_tries=rebase_tries)


_CONFIG_TRIES = 100
"""Attempts of ``set_config_value``; each lost one means another writer's change landed."""


async def _read_config(storage: Storage) -> tuple[RepositoryConfig | None, str | None]:
    """The saved config and its version token; (None, None) if none was saved."""
    try:
        data, version = await storage.get_versioned(CONFIG)
    except ObjectNotFoundError:
        return None, None
    return decode_config(data, path=f"{CONFIG} in {storage.url}"), version


async def _write_new_config(storage: Storage, data: bytes) -> str:
    """Create the config file; return its version token, as if this writer had read it."""
    await storage.put_if_absent(CONFIG, data)
    current, version = await storage.get_versioned(CONFIG)
    # Someone saved another config in between: a later save by this writer must conflict.
    return version if current == data else _NO_VERSION


_NO_VERSION = ""
"""A version token no saved config has: a save against it always conflicts."""


async def _swap_config(storage: Storage, data: bytes, version: str | None) -> str | None:
    """Write the config if its version is still ``version`` (None: still absent); return the
    new version token, or raise ``ConfigChangedError``."""
    try:
        if version is None:
            return await _write_new_config(storage, data)
        return await storage.put_if_match(CONFIG, data, version)
    except (PreconditionFailedError, ObjectExistsError):
        raise ConfigChangedError(
            f"someone else changed the repository config in {storage.url} since it was "
            "read; nothing was saved. Reopen the repository and try again"
        ) from None


def _config_value(config: RepositoryConfig, key: str) -> Any:
    value: Any = config.to_dict()
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def _empty_or_unfinished(storage: Storage) -> bool:
    """True if the storage is empty or holds only what an interrupted ``create`` leaves."""
    async for info in storage.list(""):
        if not info.key.startswith(SNAPSHOTS):
            return False
    return True


async def _repository_exists(storage: Storage) -> bool:
    return await storage.exists(branch_key(DEFAULT_BRANCH))


def _require_writable(storage: Storage) -> None:
    if not storage.capabilities.safe_writes:
        raise ReadOnlyStorageError(
            f"{storage.url} lacks atomic create-if-absent and compare-and-swap, "
            "so concurrent writers could lose updates; it can only be read"
        )
