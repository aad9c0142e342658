"""The storage seam: async byte-level object storage with declared atomic capabilities.

Everything above this layer speaks in keys (``"snapshots/ABC..."``) and bytes. Backends know
nothing about the repository format; the format knows nothing about backends.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Self

from icechunk_lib.errors import InvalidKeyError, ReadOnlyStorageError, StorageError

if TYPE_CHECKING:
    from icechunk_lib.storage.tuning import StorageTuning

__all__ = [
    "RESERVED_PREFIX",
    "ObjectInfo",
    "Storage",
    "StorageCapabilities",
    "check_byte_range",
    "check_key",
    "check_prefix",
    "is_key_segment",
    "listed_after",
]

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
RESERVED_PREFIX = ".ick-"
"""Segments starting with this are reserved for a backend's own files (locks, temporaries)."""
_SEGMENT = r"(?!\.\.?(?:/|$))(?!\.ick-)[^/\x00-\x1f\x7f\\\ud800-\udfff]+"
MAX_SEGMENT_BYTES = 255
"""Longest key segment in UTF-8 bytes: a file name on common file systems (``NAME_MAX``)."""
MAX_KEY_BYTES = 1024
"""Longest key in UTF-8 bytes, as on S3, so a key valid on one backend is valid on all."""
# A key of at most this many characters cannot exceed either limit (4 UTF-8 bytes each).
_SHORT_KEY = MAX_SEGMENT_BYTES // 4
_VALID_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_ONE_SEGMENT = re.compile(_SEGMENT)


@dataclass(frozen=True, slots=True)
class StorageCapabilities:
    """The atomic operations a backend guarantees; writers need both to be safe."""

    create_if_absent: bool
    compare_and_swap: bool

    @property
    def safe_writes(self) -> bool:
        """True when concurrent writers cannot lose updates on this backend."""
        return self.create_if_absent and self.compare_and_swap

    @property
    def missing(self) -> str:
        """The atomic operations lacking, as every message names them (``""``: none)."""
        lacks = []
        if not self.create_if_absent:
            lacks.append("atomic create-if-absent (If-None-Match: * on S3)")
        if not self.compare_and_swap:
            lacks.append("compare-and-swap (If-Match on S3)")
        return " and ".join(lacks)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key relative to the storage root, size and modification time."""

    key: str
    size: int
    last_modified: datetime


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise ``InvalidKeyError``.

    Keys are ``/``-separated, relative, with no empty, ``.`` or ``..`` segments, so no key can
    name anything outside the storage root; they are valid Unicode, with segments of at most
    ``MAX_SEGMENT_BYTES`` and keys of at most ``MAX_KEY_BYTES`` in UTF-8, so every backend
    can hold every valid key.
    """
    if type(key) is str and _VALID_KEY.fullmatch(key) and (len(key) <= _SHORT_KEY or _fits(key)):
        return key  # fast path: one regex match (and a length check for long keys)
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(str(key), "keys must be non-empty strings")
    if key.startswith("/") or key.endswith("/"):
        raise InvalidKeyError(key, "keys must not start or end with '/'")
    if _BAD_CHARS.search(key):
        raise InvalidKeyError(key, "control characters and backslashes are not allowed")
    if _SURROGATES.search(key):
        raise InvalidKeyError(key, "keys must be valid Unicode (no lone surrogates)")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKeyError(key, "empty, '.' and '..' segments are not allowed")
        if part.startswith(RESERVED_PREFIX):
            raise InvalidKeyError(key, f"segments starting with {RESERVED_PREFIX!r} are reserved")
        if len(part.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidKeyError(key, f"a segment is longer than {MAX_SEGMENT_BYTES} bytes")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKeyError(key, f"keys must be at most {MAX_KEY_BYTES} bytes")
    return key


def is_key_segment(name: str) -> bool:
    """Whether ``name`` can be one segment of a valid key (backends check names they list)."""
    return _ONE_SEGMENT.fullmatch(name) is not None and len(name.encode()) <= MAX_SEGMENT_BYTES


def _fits(key: str) -> bool:
    """Whether a key without surrogates is within both byte limits."""
    if len(key.encode()) > MAX_KEY_BYTES:
        return False
    return all(len(part.encode()) <= MAX_SEGMENT_BYTES for part in key.split("/"))


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if some valid key can start with it, else raise ``InvalidKeyError``.

    ``""`` lists everything; a prefix may end with ``/`` or mid-segment (``"refs/branch."``).
    """
    if not isinstance(prefix, str):
        raise InvalidKeyError(str(prefix), "prefixes must be strings")
    if prefix.startswith("/"):
        raise InvalidKeyError(prefix, "prefixes must not start with '/'")
    if _BAD_CHARS.search(prefix):
        raise InvalidKeyError(prefix, "control characters and backslashes are not allowed")
    if _SURROGATES.search(prefix):
        raise InvalidKeyError(prefix, "keys must be valid Unicode (no lone surrogates)")
    # Only complete segments are checked: the last one may still grow into a valid name.
    for part in prefix.split("/")[:-1]:
        if part in ("", ".", ".."):
            raise InvalidKeyError(prefix, "empty, '.' and '..' segments are not allowed")
    return prefix


def listed_after(infos: Iterable[ObjectInfo], start_after: str) -> list[ObjectInfo]:
    """The objects of ``infos`` whose keys are greater than ``start_after``, sorted by key
    (for backends that cannot start a listing at a key themselves)."""
    return sorted((i for i in infos if i.key > start_after), key=_by_key)


def _by_key(info: ObjectInfo) -> str:
    return info.key


def check_byte_range(byte_range: tuple[int, int | None]) -> tuple[int, int | None]:
    """Return ``(start, end)`` if both offsets are non-negative, else raise ``ValueError``."""
    start, end = byte_range
    if start < 0 or (end is not None and end < 0):
        raise ValueError(f"byte range offsets must be non-negative, got {byte_range!r}")
    return start, end


class Storage(ABC):
    """Async object storage addressed by relative keys.

    Contract every backend honours (``icechunk_lib.testing.StorageTests`` checks it; each
    backend's tests subclass it):

    * ``get`` of a missing key raises ``ObjectNotFoundError``.
    * every write is atomic for readers: they see the old bytes or the new, never a mix
      (``put_new`` excepted: nothing names its key until it returns).
    * ``put_if_absent`` raises ``ObjectExistsError`` if the key exists (when
      ``capabilities.create_if_absent``), atomically across processes.
    * ``put_new`` never replaces an object: a key that exists raises ``ObjectExistsError``
      and keeps its bytes, as ``put_if_absent`` does (on S3, ``If-None-Match: *``).
    * ``put_if_match`` replaces the object only if its current version token equals
      ``version``; otherwise (or if it is missing) raises ``PreconditionFailedError``.
    * a reply lost after the write was applied (a backend that retries on a timeout) never
      turns a write that landed into a failure: a create-if-absent (``put_if_absent``,
      ``put_new``) whose outcome is uncertain returns when the object then holds exactly
      ``data`` (which the retry or a read-back finds), and so does a ``put_if_match`` whose
      retry fails its condition. Otherwise its error has ``outcome_unknown=True``
      (``ObjectExistsError`` when other bytes are there, the error that ended the writes
      when it cannot tell); a plain conflict has ``outcome_unknown=False``. Callers rely on
      this and do not check again (``icechunk_lib.testing.LostReplyTests`` checks it).
    * ``delete`` of a missing key is not an error; a delete is ordered with ``put_if_match``,
      so a swap against the version read before the delete fails instead of restoring it.
    * keys are checked with ``check_key``; an unsafe key raises ``InvalidKeyError``.
    * writes never create the location itself (see ``create_root``); a write to a location
      that is gone raises ``LocationNotFoundError``.
    * ``close`` (or leaving ``async with storage:``) ends the use of this handle: it releases
      what the backend holds (connections), is idempotent, and every later operation raises
      ``StorageError`` saying the storage is closed. The stored objects stay; a pickled or
      newly opened handle on the same location is open.

    A backend starts each operation with ``self._check_open()``; one that holds connections
    overrides ``close`` to release them once and calls ``super().close()``.
    """

    _closed: bool = False
    """Set by ``close``; a class default so backends need not call ``super().__init__``."""

    capabilities: StorageCapabilities

    unsafe_writes: bool = False
    """True when the user opted into writing without atomic operations (a backend, or a
    server, that lacks them): concurrent writers can then lose updates."""

    async def probe_capabilities(self) -> StorageCapabilities:
        """The capabilities the backend really has, checked against the server once per
        process where the backend cannot know them (S3 at a custom endpoint). The default
        returns ``capabilities``."""
        self._check_open()
        return self.capabilities

    def check_writable(self, capabilities: StorageCapabilities | None = None) -> None:
        """Raise ``ReadOnlyStorageError`` unless writes are safe with ``capabilities`` (what
        a probe found; default ``capabilities``) or the user allowed unsafe writes.

        The one refusal of unsafe writes and its wording: the repository's write check and
        a backend refusing a write itself (S3 on a server that ignores conditions) call it.
        """
        found = self.capabilities if capabilities is None else capabilities
        if found.safe_writes or self.unsafe_writes:
            return
        raise ReadOnlyStorageError(
            f"{self.url} lacks {found.missing}, so concurrent writers could lose updates; "
            "it can only be read. To write anyway, accepting that risk, open the storage "
            "with allow_unsafe_writes=True (ick: --unsafe-writes)"
        )

    def apply_tuning(self, tuning: StorageTuning) -> None:  # noqa: B027  (an optional hook)
        """Use the repository's retry, concurrency and request-size settings from now on;
        backends without requests to tune ignore them (the default)."""

    @property
    @abstractmethod
    def url(self) -> str:
        """A printable location for messages and reprs; it never contains credentials (a
        backend whose location can carry them shows it through ``url.redact_url``)."""

    async def create_root(self) -> None:
        """Create the location itself (a directory, a bucket prefix) if the backend has one
        to create; ``Repository.create`` calls it once. Writes never create it. The default
        does nothing."""
        self._check_open()  # an optional hook: most backends have no location to create

    @abstractmethod
    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        """Return the object's bytes, or bytes ``[start, end)`` of it (``end=None``: to the end).

        A range past the end of the object is clipped, like Python slicing; negative offsets
        raise ``ValueError``.
        """

    @abstractmethod
    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        """Return the object's bytes and an opaque version token for ``put_if_match``."""

    @abstractmethod
    async def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` unconditionally (used for objects under fresh ids)."""

    async def put_new(self, key: str, data: bytes) -> None:
        """Write an object under a fresh random key that nothing references yet.

        For chunks and manifests: the caller publishes the key (in a snapshot) only after
        this returns, so a backend may skip its atomic-publish step; a crash midway can
        leave a partial object that nothing points to. A key that already exists is never
        replaced: ``ObjectExistsError``, the object unchanged (a fresh id that collides is a
        bug to report, not data to overwrite). The default is ``put_if_absent``.
        """
        await self.put_if_absent(key, data)

    @abstractmethod
    async def put_if_absent(self, key: str, data: bytes) -> None:
        """Create ``key`` with ``data``; raise ``ObjectExistsError`` if it already exists.

        A try whose reply was lost is recognised by its bytes (see the class docstring):
        the caller need not read the object back.
        """

    @abstractmethod
    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        """Replace ``key`` only if its version is ``version``; return the new version token."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abstractmethod
    async def size(self, key: str) -> int:
        """The object's size in bytes; ``ObjectNotFoundError`` if missing."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete every key; return how many were given. Backends may batch this.

        Every key is checked before anything is deleted, so an invalid one deletes nothing.
        """
        checked = [check_key(key) for key in keys]
        for key in checked:
            await self.delete(key)
        return len(checked)

    @abstractmethod
    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix``.

        A ``prefix`` is a plain string prefix (``"refs/"``, ``"refs/branch."``), not a glob;
        one no valid key can start with raises ``InvalidKeyError`` (see ``check_prefix``).
        Without ``start_after`` the order is unspecified. With it, only keys greater than
        ``start_after`` are listed, in ascending order (S3's ``StartAfter``): time-ordered
        ids make that "what was written since", so gc need not list everything again.
        """

    async def remove_leftovers(self, older_than: datetime, *, skip: Collection[str] = ()) -> int:
        """Delete the temporary files an interrupted write left behind, if this backend
        writes through any, once older than ``older_than``; return how many went.

        They are never objects (``list`` does not show them). Top-level directories named in
        ``skip`` are not searched (gc skips the big ones, where only exclusive creates
        write). The default has nothing to remove.
        """
        return 0

    async def is_empty(self) -> bool:
        """True when the storage holds no objects at all."""
        async for _ in self.list(""):
            return False
        return True

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called on this handle."""
        return self._closed

    async def close(self) -> None:
        """Stop using this handle; idempotent. Later operations raise ``StorageError``.

        Backends that hold connections override it to release them (once) and call
        ``super().close()``; the stored objects are not touched.
        """
        self._closed = True

    def _check_open(self) -> None:
        """Raise ``StorageError`` if this handle is closed (every operation calls it)."""
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> StorageError:
        """The error for any use of a closed handle (hot paths test ``_closed`` inline)."""
        return StorageError(f"the storage {self.url} is closed; open a new one to use it again")

    async def __aenter__(self) -> Self:
        """``async with storage:`` closes the storage when the block ends."""
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
