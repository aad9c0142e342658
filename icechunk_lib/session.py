"""Sessions: a base snapshot plus a change set, over a repository's storage.

``Session`` is the public API (Icechunk's names) over a ``Workspace`` it composes, which holds
the base snapshot, the ``ChangeSet`` and the object store, and offers the data path (reads
through the change set, chunk writes) under the lock that makes it safe for threads and asyncio
tasks. This module adds commit, rebase, status, fork and merge, pickling, and the sync twins of
async methods. Commit, rebase, diff and tree listing are functions of their own modules
(``commit``, ``conflicts``, ``ops.diff``, ``ops.tree``) that take the change set and base
snapshot and return data. Engine code (the store, the importer) reaches the workspace through
``workspace_of``, the one accessor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.commit import write_commit
from icechunk_lib.conflicts import ConflictSolver, check_solver, rebase_changes
from icechunk_lib.errors import (
    ConflictError,
    NodeNotFoundError,
    ReadOnlySessionError,
    RebaseFailedError,
    SessionError,
)
from icechunk_lib.format.snapshot import ARRAY
from icechunk_lib.names import validate_node_path
from icechunk_lib.objects import ObjectStore
from icechunk_lib.ops.diff import Diff, diff_changes
from icechunk_lib.ops.tree import NodeInfo, list_nodes
from icechunk_lib.refs import RefStore
from icechunk_lib.virtual.fetch import VirtualFetcher
from icechunk_lib.virtual.locations import virtual_chunk_locations
from icechunk_lib.workspace import Workspace
from icechunk_lib.write_access import WriteAccess
from icechunk_lib.zarr_keys import Coords

if TYPE_CHECKING:
    from icechunk_lib.store import IcechunkStore

__all__ = ["Session", "workspace_of"]


def workspace_of(session: Session) -> Workspace:
    """The engine's way into a session: its ``Workspace`` (the data path the store calls).

    The same object for the session's whole life, so a store may keep it. Not user API:
    its methods bypass nothing, but they speak in nodes and chunk references, not Zarr keys.
    """
    return session._workspace


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
        write_access: WriteAccess | None = None,
        virtual: VirtualFetcher | None = None,
    ) -> None:
        self._workspace = Workspace(objects, snapshot_id, read_only=read_only, virtual=virtual)
        self._branch = branch
        # The repository's, when it opened the session: it remembers the branch record a
        # commit swaps against, saving a read of the ref.
        self._refs = refs if refs is not None else RefStore(objects.storage)
        # The repository's too (probed, warned once); an unpickled session probes anew.
        self._write_access = write_access or WriteAccess(objects.storage)
        # Snapshots this session's commit wrote and tried to put on the branch, whose swap
        # may have landed with its reply lost: a retry that finds one there returns it.
        self._pending_commits: list[str] = []
        # One of those that a manual rebase found on the branch: ``commit`` returns it.
        self._landed: str | None = None

    # --- pickling: the workspace carries the change set, caches are rebuilt --------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"workspace": self._workspace, "branch": self._branch}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._workspace = state["workspace"]
        self._branch = state["branch"]
        self._refs = RefStore(self._workspace.objects.storage)
        self._write_access = WriteAccess(self._workspace.objects.storage)
        self._pending_commits = []
        self._landed = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        mine, theirs = self._workspace, other._workspace
        return other is self or (
            mine.objects.storage == theirs.objects.storage
            and mine.snapshot_id == theirs.snapshot_id
            and self._branch == other._branch
            and mine.read_only == theirs.read_only
        )

    def __hash__(self) -> int:
        return hash((self._workspace.snapshot_id, self._branch, self._workspace.read_only))

    def __dask_tokenize__(self) -> tuple[object, ...]:
        """A cheap, stable dask token (without it dask pickles the session, storage included).

        A read-only session is named by what it reads; a writable one can still change, so
        its token is also unique to the object.
        """
        ws = self._workspace
        where = (type(ws.objects.storage).__name__, ws.objects.storage.url)
        if ws.read_only:
            return ("ick-session", *where, ws.snapshot_id)
        return ("ick-session", *where, ws.snapshot_id, self._branch, id(self))

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "writable"
        where = f"branch {self._branch!r}" if self._branch else "detached"
        return f"<Session {mode} {where} at {self.snapshot_id}>"

    # --- public properties ---------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (always after a commit)."""
        return self._workspace.read_only

    @property
    def snapshot_id(self) -> str:
        """The snapshot this session reads from (after a commit: the new snapshot)."""
        return self._workspace.snapshot_id

    @property
    def branch(self) -> str | None:
        """The branch a commit moves; None for a session opened at a tag or snapshot."""
        return self._branch

    @property
    def has_uncommitted_changes(self) -> bool:
        """Whether anything was written, deleted or moved since the base snapshot."""
        return self._workspace.dirty

    @property
    def store(self) -> IcechunkStore:
        """A zarr ``Store`` over this session."""
        from icechunk_lib.store import IcechunkStore  # the store is built on the session

        return IcechunkStore(self, read_only=self._workspace.read_only)

    @property
    def config(self) -> Any:
        """The repository's configuration (``RepositoryConfig``)."""
        return self._workspace.objects.config

    def move(self, from_path: str, to_path: str) -> None:
        """Rename a group or array with everything below it; no chunk is copied.

        Raises:
            NodeNotFoundError: nothing is at ``from_path``.
            InvalidNameError: the root, or a destination that exists, is inside the source
                or inside an array.
            ReadOnlySessionError: the session is read-only.
        """
        _sync.run(self.move_async(from_path, to_path))

    async def move_async(self, from_path: str, to_path: str) -> None:
        """Async ``move``."""
        await self._workspace.move(from_path, to_path)

    def list_nodes(
        self, path: str = "/", *, recursive: bool = False, stats: bool = False
    ) -> list[NodeInfo]:
        """Groups and arrays below ``path``; with ``stats``, chunk counts and stored bytes.

        Raises:
            NodeNotFoundError: nothing is at or below ``path``.
        """
        return _sync.run(self.list_nodes_async(path, recursive=recursive, stats=stats))

    async def list_nodes_async(
        self, path: str = "/", *, recursive: bool = False, stats: bool = False
    ) -> list[NodeInfo]:
        """Async ``list_nodes``."""
        ws = self._workspace
        cs = await ws.changeset()
        return await list_nodes(
            ws.objects, cs.nodes, cs.chunks, path, recursive=recursive, stats=stats
        )

    def all_virtual_chunk_locations(self) -> list[str]:
        """Every distinct location (URL) of the virtual chunks this session sees, committed
        or written in it, sorted (Icechunk 1.1 repeats a location once per chunk).

        Raises:
            MissingObjectError: a manifest of the session's tree is gone from storage.
        """
        return _sync.run(self.all_virtual_chunk_locations_async())

    async def all_virtual_chunk_locations_async(self) -> list[str]:
        """Async ``all_virtual_chunk_locations``."""
        ws = self._workspace
        return await virtual_chunk_locations(ws.objects, await ws.copy_changes())

    async def chunk_coordinates(
        self, array_path: str, batch_size: int = 1000
    ) -> AsyncIterator[Coords]:
        """The coordinates of every chunk the array at ``array_path`` holds, written in this
        session or committed, in no particular order (none for a group).

        ``batch_size`` is accepted for Icechunk's signature; chunks stream per manifest.

        Raises:
            NodeNotFoundError: nothing is at ``array_path``.
            InvalidNameError: ``array_path`` is not a node path.
        """
        ws = self._workspace
        node = (await ws.nodes()).get(validate_node_path(array_path))
        if node is None:
            raise NodeNotFoundError(array_path)
        if node.kind == ARRAY:
            async for coords, _ in ws.iter_chunks(node):
                yield coords

    # --- distributed writes: fork and merge ---------------------------------------------------

    def fork(self) -> Session:
        """A writable copy to pickle to a worker; ``merge`` brings its changes back.

        Raises:
            ReadOnlySessionError: the session is read-only.
            SessionError: the session has uncommitted changes (every fork must start from
                the same state, so merging cannot lose anything).
        """
        ws = self._workspace
        ws.check_writable("fork")
        if ws.dirty:
            raise SessionError(
                "cannot fork a session with uncommitted changes; commit them, open a new "
                "writable session and fork that"
            )
        return Session(
            ws.objects,
            ws.snapshot_id,
            branch=self._branch,
            read_only=False,
            refs=self._refs,
            write_access=self._write_access,
            virtual=ws.virtual,
        )

    def merge(self, *others: Session) -> None:
        """Fold the changes of forked sessions (returned from workers) into this session.

        Raises:
            SessionError: a session of another repository, branch or snapshot, or whose
                chunks this repository's storage does not hold; nothing is merged then.
            ReadOnlySessionError: the session is read-only.
        """
        _sync.run(self.merge_async(*others))

    async def merge_async(self, *others: Session) -> None:
        """Async ``merge``."""
        ws = self._workspace
        ws.check_writable("merge")
        for other in others:  # all checked first: a refused one leaves nothing half merged
            self._check_mergeable(other)
        theirs = [await o._workspace.copy_changes() for o in others if o._workspace.dirty]
        keys = set().union(*(cs.chunk_keys() for cs in theirs))
        missing = await ws.objects.missing(keys)
        if missing:
            raise SessionError(
                f"cannot merge: {len(missing)} chunk(s) the sessions wrote are not in "
                f"{ws.objects.storage.url} (first: {missing[0]}); they were written to "
                "storage this process does not see. Nothing was merged"
            )
        await ws.merge(theirs)

    def _check_mergeable(self, other: object) -> None:
        """Refuse a session whose changes do not belong here: its chunks live in its own
        repository, and its changes were made for its own branch and snapshot."""
        if not isinstance(other, Session):
            raise SessionError(f"can only merge sessions, not a {type(other).__name__}")
        mine, theirs = self._workspace.objects.storage, other._workspace.objects.storage
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
        if other.snapshot_id != self.snapshot_id:
            raise SessionError(
                f"cannot merge a session based on {other.snapshot_id} into one based on "
                f"{self.snapshot_id}"
            )

    # --- status, discard, commit, rebase -------------------------------------------------------

    def status(self) -> Diff:
        """What this session changed relative to its base snapshot."""
        return _sync.run(self.status_async())

    async def status_async(self) -> Diff:
        """Async ``status``."""
        ws = self._workspace
        base = await ws.base_snapshot()
        return diff_changes(await ws.copy_changes(), base)

    def discard_changes(self) -> None:
        """Forget every uncommitted change (written chunks become garbage for gc).

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        self._workspace.discard()

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

        Afterwards the session is read-only at the new snapshot.

        Raises:
            ConflictError: the branch moved since the session started (unless
                ``rebase_with`` resolves it; ``RebaseFailedError`` if it cannot).
            NoChangesToCommitError: nothing to commit and not ``allow_empty``.
            ReadOnlySessionError: a read-only or detached session.
            ReadOnlyStorageError: the storage cannot write safely (``Repository.create``).
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
        """Async ``commit``."""
        if rebase_with is not None:
            check_solver(rebase_with)
        if self._landed is not None:
            return self._landed  # a rebase found this session's failed commit landed
        ws = self._workspace
        self._check_on_branch("commit", "commit from a detached session")
        await self._write_access.require()
        with ws.busy("commit"):
            new_id = await self._commit_with_retries(
                message, metadata or {}, rebase_with, rebase_tries, allow_empty
            )
            ws.adopt(new_id, read_only=True)
            self._pending_commits = []
            return new_id

    def _check_on_branch(self, what: str, detached: str) -> None:
        """Refuse ``what`` (a commit or rebase) in a read-only or detached session."""
        self._workspace.check_writable(what)
        if self._branch is None:
            raise ReadOnlySessionError(detached)

    async def _commit_with_retries(
        self,
        message: str,
        metadata: dict[str, Any],
        solver: ConflictSolver | None,
        tries_left: int,
        allow_empty: bool,
    ) -> str:
        assert self._branch is not None
        ws = self._workspace
        while True:
            base = await ws.base_snapshot()
            new_id = await write_commit(
                ws.objects,
                base,
                await ws.copy_changes(),
                message,
                metadata,
                allow_empty=allow_empty,
            )
            self._pending_commits.append(new_id)
            try:
                await self._refs.update_branch(
                    self._branch, new_id, base.id, action="commit", message=message
                )
                return new_id
            except ConflictError as exc:
                # An earlier try of this commit landed but its reply was lost (it failed):
                # the branch's reflog, just read, shows it. Never rebase it onto itself.
                landed = self._refs.landed(self._branch, self._pending_commits)
                if landed is not None:
                    return landed
                if solver is None or isinstance(exc, RebaseFailedError) or tries_left <= 0:
                    raise
                tries_left -= 1
                await self._rebase(solver)

    def rebase(self, solver: ConflictSolver) -> None:
        """Replay this session's changes on the branch tip, resolving conflicts with ``solver``.

        If a commit of this session failed but landed all the same (the reply to its branch
        update was lost), the branch's reflog shows it: nothing is replayed, the session
        moves to that commit, read-only as after a commit, and ``commit`` returns its id.

        Raises:
            RebaseFailedError: conflicts ``solver`` left unresolved; the session is unchanged.
            ReadOnlySessionError: a read-only or detached session.
        """
        _sync.run(self.rebase_async(solver))

    async def rebase_async(self, solver: ConflictSolver) -> None:
        """Async ``rebase``."""
        check_solver(solver)
        self._check_on_branch("rebase", "rebase a detached session")
        with self._workspace.busy("rebase"):
            if await self._found_landed():
                return
            await self._rebase(solver)

    async def _found_landed(self) -> bool:
        """Whether an earlier, failed commit of this session is on the branch (as ``commit``
        finds one when its swap loses); if so the session adopts it, as a commit does."""
        if not self._pending_commits:
            return False
        assert self._branch is not None
        await self._refs.lookup_branch(self._branch)  # reads the record and its reflog
        landed = self._refs.landed(self._branch, self._pending_commits)
        if landed is None:
            return False
        self._workspace.adopt(landed, read_only=True)
        self._pending_commits = []
        self._landed = landed
        return True

    async def _rebase(self, solver: ConflictSolver) -> None:
        assert self._branch is not None
        ws = self._workspace
        tip_id = await self._refs.lookup_branch(self._branch)
        base = await ws.base_snapshot()
        if tip_id == base.id:
            return
        tip, changes = await rebase_changes(
            ws.objects, self._branch, base, tip_id, await ws.copy_changes(), solver
        )
        ws.adopt(tip, changes)
