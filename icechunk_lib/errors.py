"""The one exception tree of ick; every error a user can see is an ``IcechunkError``.

Leaf errors also inherit the matching built-in so idiomatic ``except KeyError`` code works,
and at most one *category*: a base class saying what a caller does about the error (the
``ick`` command maps categories, not classes, to its exit codes)::

    NotFoundError          the thing named does not exist: check the name or location
    AlreadyExistsError     the name or location is taken: choose another
    ConcurrentUpdateError  someone else changed it meanwhile: look again and retry (or rebase)
    InvalidInputError      an argument breaks the rules: fix it
    IntegrityError         the repository is damaged: restore the object from a backup
    UnsupportedError       another version of ick wrote it: use that version

Errors without a category (``ProtectedBranchError``, ``ReadOnlyStorageError``, ...) are
refusals or failures the message explains. The tree, each error's category in brackets::

    IcechunkError
    ├── StorageError (OSError)
    │   ├── ObjectNotFoundError (FileNotFoundError)       [not found]
    │   ├── ObjectExistsError (FileExistsError)           [already exists]
    │   ├── LocationNotFoundError (FileNotFoundError)     [not found]
    │   ├── PreconditionFailedError                       [concurrent update]
    │   ├── InvalidKeyError (ValueError)                  [invalid input]
    │   ├── ReadOnlyStorageError (PermissionError)
    │   ├── InvalidStorageURLError (ValueError)           [invalid input]
    │   └── ImportSourceError
    │       ├── ImportSourceNotFoundError (FileNotFoundError)  [not found]
    │       └── InvalidImportSourceError (ValueError)     [invalid input]
    ├── RepositoryNotFoundError (FileNotFoundError)       [not found]
    ├── RepositoryAlreadyExistsError (FileExistsError)    [already exists]
    ├── RefError
    │   ├── RefNotFoundError (KeyError)                   [not found]
    │   │   ├── BranchNotFoundError
    │   │   ├── TagNotFoundError
    │   │   └── RevisionNotFoundError
    │   ├── AmbiguousRefError (ValueError)                [invalid input]
    │   ├── SnapshotNotFoundError (KeyError)              [not found]
    │   ├── BranchAlreadyExistsError (FileExistsError)    [already exists]
    │   ├── TagAlreadyExistsError (FileExistsError)       [already exists]
    │   └── ProtectedBranchError (PermissionError)
    ├── InvalidNameError (ValueError)                     [invalid input]
    ├── CorruptObjectError (ValueError)                   [integrity]
    │   ├── ObjectIdMismatchError
    │   └── MissingObjectError
    ├── UnsupportedFormatError (ValueError)               [unsupported]
    │   └── RetiredFormatError
    ├── SessionError
    │   ├── ReadOnlySessionError (ValueError)
    │   ├── NoChangesToCommitError
    │   ├── NodeNotFoundError (KeyError)                  [not found]
    │   └── ImportWouldDeleteError
    ├── ConflictError                                     [concurrent update]
    │   └── RebaseFailedError
    ├── ConfigError (ValueError)                          [invalid input]
    │   └── InvalidVirtualContainerError
    ├── VirtualChunkError
    │   ├── VirtualContainerNotFoundError                 [not found]
    │   ├── VirtualContainerNotAuthorizedError (PermissionError)
    │   ├── InvalidVirtualLocationError (ValueError)      [invalid input]
    │   ├── VirtualStoreUnsupportedError                  [unsupported]
    │   └── VirtualSourceError
    │       ├── VirtualSourceNotFoundError                [not found]
    │       ├── VirtualSourceChangedError                 [integrity]
    │       └── VirtualSourceTruncatedError               [integrity]
    ├── ConfigChangedError                                [concurrent update]
    └── RefsKeptMovingError                               [concurrent update]

One warning sits beside the tree: ``UnsafeWritesWarning`` (a ``UserWarning``), given once
per repository written on storage without atomic operations by explicit opt-in.

An unknown format version is not damage (``UnsupportedFormatError`` is no longer a
``CorruptObjectError``), and a config saved meanwhile is not an invalid value
(``ConfigChangedError`` is no longer a ``ConfigError``): each error has one category, so
``except IntegrityError`` or ``except InvalidInputError`` catches exactly what it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AlreadyExistsError",
    "AmbiguousRefError",
    "BranchAlreadyExistsError",
    "BranchNotFoundError",
    "ConcurrentUpdateError",
    "ConfigChangedError",
    "ConfigError",
    "ConflictError",
    "CorruptObjectError",
    "IcechunkError",
    "ImportSourceError",
    "ImportSourceNotFoundError",
    "ImportWouldDeleteError",
    "IntegrityError",
    "InvalidImportSourceError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidNameError",
    "InvalidStorageURLError",
    "InvalidVirtualContainerError",
    "InvalidVirtualLocationError",
    "LocationNotFoundError",
    "MissingObjectError",
    "NoChangesToCommitError",
    "NodeNotFoundError",
    "NotFoundError",
    "ObjectExistsError",
    "ObjectIdMismatchError",
    "ObjectNotFoundError",
    "PreconditionFailedError",
    "ProtectedBranchError",
    "ReadOnlySessionError",
    "ReadOnlyStorageError",
    "RebaseFailedError",
    "RefError",
    "RefNotFoundError",
    "RefsKeptMovingError",
    "RepositoryAlreadyExistsError",
    "RepositoryNotFoundError",
    "RetiredFormatError",
    "RevisionNotFoundError",
    "SessionError",
    "SnapshotNotFoundError",
    "StorageError",
    "TagAlreadyExistsError",
    "TagNotFoundError",
    "UnsafeWritesWarning",
    "UnsupportedError",
    "UnsupportedFormatError",
    "VirtualChunkError",
    "VirtualContainerNotAuthorizedError",
    "VirtualContainerNotFoundError",
    "VirtualSourceChangedError",
    "VirtualSourceError",
    "VirtualSourceNotFoundError",
    "VirtualSourceTruncatedError",
    "VirtualStoreUnsupportedError",
]


class IcechunkError(Exception):
    """Root of every error raised by ick."""

    def __str__(self) -> str:
        # KeyError subclasses would otherwise repr() their message with quotes.
        return str(self.args[0]) if self.args else self.__class__.__name__

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as message and attributes, not through ``__init__`` (whose arguments are not
        # ``args``), so an error raised in a worker process reaches the caller as itself.
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(
    cls: type[IcechunkError], args: tuple[Any, ...], state: dict[str, Any]
) -> IcechunkError:
    """An unpickled error: ``args`` and attributes restored without calling ``__init__``."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


# --- categories: what a caller does about an error ------------------------------------------


class NotFoundError(IcechunkError):
    """The repository, ref, snapshot, node, object or source named does not exist."""


class AlreadyExistsError(IcechunkError):
    """The name or location to create is already taken; nothing was changed."""


class ConcurrentUpdateError(IcechunkError):
    """Someone else changed what this operation read before it wrote; nothing was written.

    Look at the new state and retry (a session: rebase and commit again).
    """


class InvalidInputError(IcechunkError):
    """An argument (name, key, URL, revision, config value, import source) breaks the rules."""


class IntegrityError(IcechunkError):
    """The repository is damaged: an object it refers to is corrupt, misnamed or missing."""


class UnsupportedError(IcechunkError):
    """The repository holds something this version of ick cannot read (e.g. a newer format)."""


# --- storage ---------------------------------------------------------------------------------


class StorageError(IcechunkError, OSError):
    """A storage backend failed or refused an operation.

    ``outcome_unknown`` is True when the operation was a write that may have been applied
    although this error says otherwise: a try lost its reply, and what the object holds
    now is not the bytes being written (or could not be read). See ``Storage``.
    """

    outcome_unknown: bool = False


class ObjectNotFoundError(StorageError, NotFoundError, FileNotFoundError):
    """The object ``key`` does not exist in the storage."""

    def __init__(self, key: str, where: str = "") -> None:
        self.key = key
        suffix = f" in {where}" if where else ""
        super().__init__(f"object {key!r} not found{suffix}")


class ObjectExistsError(StorageError, AlreadyExistsError, FileExistsError):
    """A create-if-absent write found ``key`` already present.

    ``outcome_unknown`` is True when an earlier try of the same write lost its reply (a
    timeout after the server may have applied it) and the object now holds other bytes:
    ours never landed, or landed and was replaced since.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"object {key!r} already exists")


class LocationNotFoundError(StorageError, NotFoundError, FileNotFoundError):
    """A write found the storage location itself gone (a deleted repository directory)."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(
            f"the repository location {location} no longer exists (deleted or moved); "
            "nothing was written"
        )


class PreconditionFailedError(StorageError, ConcurrentUpdateError):
    """A compare-and-swap write found a different version of ``key`` than expected.

    ``outcome_unknown`` is True when an earlier try of the same write lost its reply and
    the object now holds other bytes: the first try may have landed and been replaced since
    (check the ancestry before treating it as a conflict).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"object {key!r} changed since it was read (compare-and-swap failed)")


class InvalidKeyError(StorageError, InvalidInputError, ValueError):
    """A storage key is malformed or would escape the storage prefix."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"invalid storage key {key!r}: {reason}")


class ReadOnlyStorageError(StorageError, PermissionError):
    """A write was attempted on storage that cannot write safely."""


class UnsafeWritesWarning(UserWarning):
    """Writes go to storage without atomic create-if-absent or compare-and-swap, because the
    user allowed it (``allow_unsafe_writes=True``): racing writers can lose updates."""


class InvalidStorageURLError(StorageError, InvalidInputError, ValueError):
    """A storage URL could not be understood."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"cannot use storage URL {url!r}: {reason}")


class ImportSourceError(StorageError):
    """An import source is unreadable or not a Zarr v3 store."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        super().__init__(f"cannot import {source}: {reason}")


class ImportSourceNotFoundError(ImportSourceError, NotFoundError, FileNotFoundError):
    """An import source does not exist."""


class InvalidImportSourceError(ImportSourceError, InvalidInputError, ValueError):
    """An import source is not a valid Zarr v3 store: no root ``zarr.json``, or bad metadata.

    ``key`` is the source key at fault (``"grp/zarr.json"``) and ``field`` the metadata field
    (``"chunk_grid.configuration.chunk_shape"``), when known. Raised before anything changes.
    """

    def __init__(self, source: str, reason: str, *, key: str = "", field: str = "") -> None:
        self.key = key
        self.field = field
        super().__init__(source, reason)


# --- repository ------------------------------------------------------------------------------


class RepositoryNotFoundError(NotFoundError, FileNotFoundError):
    """No repository exists at the location."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(
            f"no ick repository at {location}; create one with Repository.create() or `ick init`"
        )


class RepositoryAlreadyExistsError(AlreadyExistsError, FileExistsError):
    """Refused to create a repository where one (or other data) already exists."""

    def __init__(self, location: str, reason: str = "a repository already exists there") -> None:
        self.location = location
        super().__init__(f"cannot create a repository at {location}: {reason}")


class RefError(IcechunkError):
    """A branch, tag or snapshot reference problem."""


class RefNotFoundError(RefError, NotFoundError, KeyError):
    """A branch or tag does not exist."""

    kind = "ref"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"{self.kind} {name!r} not found")


class BranchNotFoundError(RefNotFoundError):
    """The branch does not exist."""

    kind = "branch"


class TagNotFoundError(RefNotFoundError):
    """The tag does not exist."""

    kind = "tag"


class RevisionNotFoundError(RefNotFoundError):
    """Nothing (branch, tag, snapshot id or id prefix) matches a revision."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        tail = f": {detail}" if detail else ""
        RefError.__init__(self, f"no branch, tag or snapshot matches {name!r}{tail}")


class AmbiguousRefError(RefError, InvalidInputError, ValueError):
    """A revision matches more than one thing; ``candidates`` lists them."""

    def __init__(self, rev: str, candidates: Sequence[str]) -> None:
        self.rev = rev
        self.candidates = list(candidates)
        shown = ", ".join(self.candidates[:10]) + (" ..." if len(self.candidates) > 10 else "")
        super().__init__(
            f"revision {rev!r} is ambiguous: it matches {shown}; use a longer id or a full name"
        )


class SnapshotNotFoundError(RefError, NotFoundError, KeyError):
    """No snapshot with this id (or matching this request) exists."""

    def __init__(self, snapshot_id: str, detail: str = "") -> None:
        self.snapshot_id = snapshot_id
        tail = f": {detail}" if detail else ""
        super().__init__(f"snapshot {snapshot_id!r} not found{tail}")


class BranchAlreadyExistsError(RefError, AlreadyExistsError, FileExistsError):
    """A branch with this name already exists."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"branch {name!r} already exists; delete it or choose another name")


class TagAlreadyExistsError(RefError, AlreadyExistsError, FileExistsError):
    """A tag with this name exists or existed (tag names are never reused)."""

    def __init__(self, name: str, deleted: bool = False) -> None:
        self.name = name
        self.deleted = deleted
        why = "was used by a deleted tag and cannot be reused" if deleted else "already exists"
        super().__init__(f"tag {name!r} {why}; tags are immutable, choose another name")


class ProtectedBranchError(RefError, PermissionError):
    """The operation is not allowed on this branch (``main`` cannot be deleted)."""

    def __init__(self, name: str, action: str) -> None:
        self.name = name
        super().__init__(f"cannot {action} branch {name!r}: it is the repository's main branch")


class InvalidNameError(InvalidInputError, ValueError):
    """A branch, tag or node name breaks the naming rules."""

    def __init__(self, kind: str, name: object, reason: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"invalid {kind} name {name!r}: {reason}")


class CorruptObjectError(IntegrityError, ValueError):
    """A metadata object failed its integrity checks."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"corrupt object {path}: {reason}")


class ObjectIdMismatchError(CorruptObjectError):
    """An intact object is stored under another object's key (copied or restored wrongly).

    ``expected_id`` is the id in the key, ``found_id`` the id the file proves it holds.
    """

    def __init__(self, path: str, kind: str, expected_id: str, found_id: str) -> None:
        self.kind = kind
        self.expected_id = expected_id
        self.found_id = found_id
        super().__init__(
            path,
            f"the file holds {kind} {found_id}, not {expected_id} (it was probably copied or "
            "restored under the wrong name)",
        )


class MissingObjectError(CorruptObjectError):
    """An object the repository refers to (through a ref, a snapshot or a manifest) is gone.

    Not a ``FileNotFoundError`` on purpose: zarr reads those as "no such key" and would show
    a damaged repository as an empty group or fill values instead of failing.
    """

    def __init__(self, key: str, where: str) -> None:
        self.key = key
        super().__init__(
            f"{key} in {where}", "the repository refers to this object but it is missing"
        )


class UnsupportedFormatError(UnsupportedError, ValueError):
    """A metadata object was written by an unknown (newer) format version.

    Not a ``CorruptObjectError``: the checksum covers the version, so the file is intact and
    written by another ick (a damaged version field is reported as corruption instead).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot read {path}: {reason}")


class RetiredFormatError(UnsupportedFormatError):
    """A metadata object was written by a pre-release format version this ick no longer reads."""


class ConfigError(InvalidInputError, ValueError):
    """A repository configuration value is invalid (unknown key, wrong type, out of range)."""


class ConfigChangedError(ConcurrentUpdateError):
    """Someone else saved the repository config between our read and our write."""


class InvalidVirtualContainerError(ConfigError):
    """A virtual chunk container, or the credentials authorising it, breaks Icechunk's rules.

    ``url_prefix`` is the container's prefix and ``reason`` the rule it breaks.
    """

    def __init__(self, url_prefix: object, reason: str) -> None:
        self.url_prefix = url_prefix
        self.reason = reason
        super().__init__(f"invalid virtual chunk container {url_prefix!r}: {reason}")


# --- virtual chunks --------------------------------------------------------------------------
# None of these is a KeyError or FileNotFoundError: zarr reads those as "no such chunk" and
# would show fill values where a chunk could not be fetched.


class VirtualChunkError(IcechunkError):
    """A virtual chunk cannot be read: its location is undeclared, unauthorised or escaping,
    or its source is unsupported, missing, changed or unreadable."""


class VirtualContainerNotFoundError(VirtualChunkError, NotFoundError):
    """No virtual chunk container declared in the repository config holds ``location``.

    ``declared`` lists the prefixes the config declares.
    """

    def __init__(self, location: str, declared: Sequence[str]) -> None:
        self.location = location
        self.declared = list(declared)
        shown = ", ".join(repr(p) for p in self.declared) if self.declared else "none"
        super().__init__(
            f"no virtual chunk container holds {location!r} (the repository declares {shown}); "
            "declare one with config.set_virtual_chunk_container(VirtualChunkContainer(prefix, "
            "store)) and save it with Repository.save_config()"
        )


class VirtualContainerNotAuthorizedError(VirtualChunkError, PermissionError):
    """The container holding ``location`` is declared but was not authorised when the
    repository was opened (``authorize_virtual_chunk_access``)."""

    def __init__(self, location: str, url_prefix: str) -> None:
        self.location = location
        self.url_prefix = url_prefix
        super().__init__(
            f"virtual chunk {location!r} is in container {url_prefix!r}, which was not "
            "authorised: open the repository with authorize_virtual_chunk_access="
            f"{{{url_prefix!r}: None}} to use default or anonymous credentials, or "
            f"{{{url_prefix!r}: credentials}} (e.g. ic.s3_credentials(...))"
        )


class InvalidVirtualLocationError(VirtualChunkError, InvalidInputError, ValueError):
    """A virtual chunk location is malformed or would escape its container (``..``,
    percent-encoded dots, an empty segment after the prefix); ``reason`` says which."""

    def __init__(self, location: object, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(
            f"invalid virtual chunk location {location!r}: {reason}; a location must name "
            "an object inside a declared container"
        )


class VirtualStoreUnsupportedError(VirtualChunkError, UnsupportedError):
    """The container holding ``location`` is served by a store this version of ick cannot
    read virtual chunks from (GCS, Azure, in-memory); ``store`` names its kind."""

    def __init__(self, location: str, url_prefix: str, store: str) -> None:
        self.location = location
        self.url_prefix = url_prefix
        self.store = store
        super().__init__(
            f"cannot read virtual chunk {location!r}: its container {url_prefix!r} is served "
            f"by {store}, and reading virtual chunks from it is not supported yet by this "
            "version of ick (file://, s3:// and http(s):// containers are)"
        )


class VirtualSourceError(VirtualChunkError):
    """The object holding a virtual chunk could not be read: an error reply, access denied,
    or a server that stayed unreachable. ``location`` names it, ``reason`` says why."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"cannot read virtual chunk {location!r}: {reason}")


class VirtualSourceNotFoundError(VirtualSourceError, NotFoundError):
    """The object a virtual chunk refers to does not exist (deleted or moved since the
    reference was made)."""

    def __init__(self, location: str, reason: str = "") -> None:
        super().__init__(
            location,
            reason
            or "the object does not exist: it was deleted or moved since the reference was "
            "made; fix or remove the reference",
        )


class VirtualSourceChangedError(VirtualSourceError, IntegrityError):
    """The object a virtual chunk refers to changed since the reference was made (its ETag
    differs, or it was modified after the reference's ``last_updated_at``): its bytes
    would not be the chunk's, so none are returned."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(
            location,
            f"the source changed since the reference was made ({reason}); make the "
            "reference again from the current object",
        )


class VirtualSourceTruncatedError(VirtualSourceError, IntegrityError):
    """The object a virtual chunk refers to ends before the chunk does: it was truncated
    or replaced, or the reference's offset and length are wrong."""

    def __init__(self, location: str, end: int, size: int | None) -> None:
        self.end = end
        self.size = size
        has = "fewer bytes" if size is None else f"{size} bytes"
        super().__init__(
            location,
            f"the chunk ends at byte {end} but the object holds {has}: it was truncated or "
            "replaced since the reference was made, or the reference is wrong",
        )


# --- maintenance -----------------------------------------------------------------------------


class RefsKeptMovingError(ConcurrentUpdateError):
    """gc gave up: refs moved to snapshots it had not marked on every one of its attempts."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(
            f"garbage collection stopped after {attempts} attempts: branches or tags kept "
            "moving to snapshots it had not marked; nothing was deleted. Run it again when "
            "fewer refs are being reset or created"
        )


# --- sessions --------------------------------------------------------------------------------


class SessionError(IcechunkError):
    """A session operation failed."""


class ReadOnlySessionError(SessionError, ValueError):
    """A write was attempted through a read-only session."""

    def __init__(self, what: str = "write") -> None:
        super().__init__(
            f"cannot {what}: the session is read-only; open one with repo.writable_session(branch)"
        )


class NoChangesToCommitError(SessionError):
    """``commit`` was called with nothing to commit."""

    def __init__(self) -> None:
        super().__init__("no changes to commit; pass allow_empty=True to commit anyway")


class NodeNotFoundError(SessionError, NotFoundError, KeyError):
    """No group or array at the path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no group or array at {path!r}")


class ImportWouldDeleteError(SessionError):
    """An import refused to delete nodes the source lacks (``allow_deletes=False``).

    ``paths`` lists every node it would have deleted, sorted; the session is unchanged.
    """

    def __init__(self, source: str, dest: str, paths: Sequence[str]) -> None:
        self.source = source
        self.dest = dest
        self.paths = list(paths)
        super().__init__(
            f"importing {source} would delete {len(self.paths)} node(s) below {dest} that it "
            f"lacks: {', '.join(self.paths[:10])}{' ...' if len(self.paths) > 10 else ''}; "
            "pass allow_deletes=True to delete them"
        )


class ConflictError(ConcurrentUpdateError):
    """A commit lost the race: the branch moved since the session started.

    ``expected_parent`` is the snapshot the session was based on, ``actual_parent`` the
    branch's current tip. Rebase the session (``session.rebase``) and commit again.
    """

    def __init__(
        self,
        branch: str,
        expected_parent: str | None,
        actual_parent: str | None,
        *,
        next_step: str = "rebase the session and commit again",
    ) -> None:
        self.branch = branch
        self.expected_parent = expected_parent
        self.actual_parent = actual_parent
        super().__init__(
            f"branch {branch!r} moved: expected it at {expected_parent}, found {actual_parent}; "
            + next_step
        )


class RebaseFailedError(ConflictError):
    """A rebase found conflicts the solver could not resolve."""

    def __init__(
        self,
        snapshot_id: str,
        conflicts: Sequence[Any],
        *,
        branch: str = "",
        expected_parent: str | None = None,
    ) -> None:
        self.snapshot = snapshot_id
        self.conflicts = list(conflicts)
        IcechunkError.__init__(
            self,
            f"rebase onto {snapshot_id} failed with {len(self.conflicts)} conflict(s): "
            + "; ".join(str(c) for c in self.conflicts[:5]),
        )
        self.branch = branch
        self.expected_parent = expected_parent
        self.actual_parent = snapshot_id
