"""Sessions: a base snapshot plus a change set, over a repository's storage.

``Session`` is a thin wrapper. Its ``Workspace`` part holds the base snapshot, the
``ChangeSet`` and the object and ref stores, and offers the data path (reads through the
change set, chunk writes) under the lock that makes it safe for threads and asyncio tasks.
This module adds the public API: commit, rebase, status, fork and merge, pickling, and the
sync twins of async methods. Commit, rebase, diff and tree listing are functions of their own
modules (``commit``, ``conflicts``, ``ops.diff``, ``ops.tree``) that take the change set and
base snapshot and return data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.commit import write_commit
from icechunk_lib.conflicts import ConflictSolver, rebase_changes
from icechunk_lib.errors import ConflictError, ReadOnlySessionError, RebaseFailedError, SessionError
from icechunk_lib.names import validate_node_path
from icechunk_lib.objects import ObjectStore
from icechunk_lib.ops.diff import Diff, diff_changes
from icechunk_lib.ops.tree import NodeInfo, list_nodes
from icechunk_lib.workspace import Workspace

if TYPE_CHECKING:
    from icechunk_lib.store import IcechunkStore

__all__ = ["Session"]


def _check_solver(solver: object) -> None:
    """Refuse what is not a solver instance (a class, with the parentheses forgotten) before
    anything is written, not deep inside the rebase."""
    if not isinstance(solver, ConflictSolver):
        what = f"the class {solver.__name__}" if isinstance(solver, type) else repr(solver)
        raise SessionError(
            f"a conflict solver must be a ConflictSolver instance such as "
            f"BasicConflictSolver(), not {what}"
        )


class Session(Workspace):
    """A read-only or writable view of a repository at one snapshot.

    Create sessions with ``Repository.readonly_session`` / ``writable_session``; hand
    ``session.store`` to zarr or xarray; ``commit`` publishes the changes atomically.
    """

    # --- pickling: the change set travels, caches are rebuilt ----------------------------------

    def __getstate__(self) -> dict[str, Any]:
        changes = self._changes
        return {
            "storage": self._objects.storage,
            "config": self._objects.config,
            "base_id": self._base_id,
            "branch": self._branch,
            "read_only": self._read_only,
            "changes": changes if changes is not None and changes.dirty else None,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            ObjectStore(state["storage"], state["config"]),
            state["base_id"],
            branch=state["branch"],
            read_only=state["read_only"],
        )
        self._changes = state["changes"]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        return other is self or (
            self._objects.storage == other._objects.storage
            and self._base_id == other._base_id
            and self._branch == other._branch
            and self._read_only == other._read_only
        )

    def __hash__(self) -> int:
        return hash((self._base_id, self._branch, self._read_only))

    def __dask_tokenize__(self) -> tuple[object, ...]:
        """A cheap, stable dask token (without it dask pickles the session, storage included).

        A read-only session is named by what it reads; a writable one can still change, so
        its token is also unique to the object.
        """
        where = (type(self._objects.storage).__name__, self._objects.storage.url)
        if self._read_only:
            return ("ick-session", *where, self._base_id)
        return ("ick-session", *where, self._base_id, self._branch, id(self))

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "writable"
        where = f"branch {self._branch!r}" if self._branch else "detached"
        return f"<Session {mode} {where} at {self._base_id}>"

    # --- public properties ---------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (always after a commit)."""
        return self._read_only

    @property
    def snapshot_id(self) -> str:
        """The snapshot this session reads from (after a commit: the new snapshot)."""
        return self._base_id

    @property
    def branch(self) -> str | None:
        """The branch a commit moves; None for a session opened at a tag or snapshot."""
        return self._branch

    @property
    def has_uncommitted_changes(self) -> bool:
        """Whether anything was written, deleted or moved since the base snapshot."""
        changes = self._changes
        return changes is not None and changes.dirty

    @property
    def store(self) -> IcechunkStore:
        """A zarr ``Store`` over this session."""
        from icechunk_lib.store import IcechunkStore  # the store is built on the session

        return IcechunkStore(self, read_only=self._read_only)

    @property
    def config(self) -> Any:
        """The repository's configuration (``RepositoryConfig``)."""
        return self._objects.config

    def move(self, from_path: str, to_path: str) -> None:
        """Rename a group or array with everything below it; no chunk is copied.

        Raises:
            NodeNotFoundError: nothing is at ``from_path``.
            InvalidNameError: the root, or a destination that exists, is inside the source
                or inside an array.
        """
        _sync.run(self.move_async(from_path, to_path))

    async def move_async(self, from_path: str, to_path: str) -> None:
        """Async ``move``."""
        self._check_writable("move")
        src, dst = validate_node_path(from_path), validate_node_path(to_path)
        changes = await self._changeset()
        with self._mutation("move"):
            changes.move(src, dst)
            self.key_cache.clear()

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
        cs = await self._changeset()
        return await list_nodes(
            self._objects, cs.nodes, cs.chunks, path, recursive=recursive, stats=stats
        )

    # --- distributed writes: fork and merge ---------------------------------------------------

    def fork(self) -> Session:
        """A writable copy to pickle to a worker; ``merge`` brings its changes back.

        Raises:
            SessionError: the session has uncommitted changes (every fork must start from
                the same state, so merging cannot lose anything).
        """
        self._check_writable("fork")
        if self.has_uncommitted_changes:
            raise SessionError(
                "cannot fork a session with uncommitted changes; commit them, open a new "
                "writable session and fork that"
            )
        return Session(
            self._objects, self._base_id, branch=self._branch, read_only=False, refs=self._refs
        )

    def merge(self, *others: Session) -> None:
        """Fold the changes of forked sessions (returned from workers) into this session.

        Raises:
            SessionError: a session of another repository, branch or snapshot, or whose
                chunks this repository's storage does not hold; nothing is merged then.
        """
        _sync.run(self.merge_async(*others))

    async def merge_async(self, *others: Session) -> None:
        """Async ``merge``."""
        self._check_writable("merge")
        for other in others:  # all checked first: a refused one leaves nothing half merged
            self._check_mergeable(other)
        theirs = [o._copy_changes() for o in others if o.has_uncommitted_changes]
        keys = set().union(*(cs.chunk_keys() for cs in theirs))
        missing = await self._objects.missing(keys)
        if missing:
            raise SessionError(
                f"cannot merge: {len(missing)} chunk(s) the sessions wrote are not in "
                f"{self._objects.storage.url} (first: {missing[0]}); they were written to "
                "storage this process does not see. Nothing was merged"
            )
        base = await self.base_snapshot()
        changes = await self._changeset()
        for forked in theirs:
            with self._mutation("merge"):
                changes.merge(forked, base.nodes)
                self.key_cache.clear()

    def _check_mergeable(self, other: object) -> None:
        """Refuse a session whose changes do not belong here: its chunks live in its own
        repository, and its changes were made for its own branch and snapshot."""
        if not isinstance(other, Session):
            raise SessionError(f"can only merge sessions, not a {type(other).__name__}")
        mine, theirs = self._objects.storage, other._objects.storage
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
        if other._base_id != self._base_id:
            raise SessionError(
                f"cannot merge a session based on {other._base_id} into one based on "
                f"{self._base_id}"
            )

    # --- status, discard, commit, rebase -------------------------------------------------------

    def status(self) -> Diff:
        """What this session changed relative to its base snapshot."""
        return _sync.run(self.status_async())

    async def status_async(self) -> Diff:
        """Async ``status``."""
        base = await self.base_snapshot()
        await self._changeset()
        return diff_changes(self._copy_changes(), base)

    def discard_changes(self) -> None:
        """Forget every uncommitted change (written chunks become garbage for gc).

        Raises:
            ReadOnlySessionError: the session is read-only.
        """
        with self._mutation("discard changes"):
            self._reset_state()

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
            _check_solver(rebase_with)
        with self._mutation("commit"):
            if self._branch is None:
                raise ReadOnlySessionError("commit from a detached session")
            self._busy = "commit"
        try:
            new_id = await self._commit_with_retries(
                message, metadata or {}, rebase_with, rebase_tries, allow_empty
            )
            with self._lock:
                self._base_id = new_id
                self._read_only = True
                self._pending_commit = None
                self._reset_state()
            return new_id
        finally:
            self._busy = ""

    async def _commit_with_retries(
        self,
        message: str,
        metadata: dict[str, Any],
        solver: ConflictSolver | None,
        tries_left: int,
        allow_empty: bool,
    ) -> str:
        assert self._branch is not None
        while True:
            base = await self.base_snapshot()
            await self._changeset()
            new_id = await write_commit(
                self._objects,
                base,
                self._copy_changes(),
                message,
                metadata,
                allow_empty=allow_empty,
            )
            self._pending_commit = new_id
            try:
                await self._refs.update_branch(
                    self._branch, new_id, base.id, action="commit", message=message
                )
                return new_id
            except ConflictError as exc:
                if exc.actual_parent is not None and exc.actual_parent == self._pending_commit:
                    return exc.actual_parent  # an earlier swap landed but its reply was lost
                if solver is None or isinstance(exc, RebaseFailedError) or tries_left <= 0:
                    raise
                tries_left -= 1
                await self._rebase(solver)

    def rebase(self, solver: ConflictSolver) -> None:
        """Replay this session's changes on the branch tip, resolving conflicts with ``solver``.

        Raises:
            RebaseFailedError: conflicts ``solver`` left unresolved; the session is unchanged.
            ReadOnlySessionError: a read-only or detached session.
        """
        _sync.run(self.rebase_async(solver))

    async def rebase_async(self, solver: ConflictSolver) -> None:
        """Async ``rebase``."""
        _check_solver(solver)
        with self._mutation("rebase"):
            if self._branch is None:
                raise ReadOnlySessionError("rebase a detached session")
            self._busy = "rebase"
        try:
            await self._rebase(solver)
        finally:
            self._busy = ""

    async def _rebase(self, solver: ConflictSolver) -> None:
        assert self._branch is not None
        tip_id = await self._refs.lookup_branch(self._branch)
        base = await self.base_snapshot()
        if tip_id == base.id:
            return
        await self._changeset()
        tip, changes = await rebase_changes(
            self._objects, self._branch, base, tip_id, self._copy_changes(), solver
        )
        with self._lock:
            self._base_id, self._base, self._changes = tip.id, tip, changes
            self.key_cache.clear()
