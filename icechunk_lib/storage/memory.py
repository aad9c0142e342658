"""In-process storage for tests and scratch work, shared by every handle on the same data.

Pickling keeps identity: a storage unpickled in the process that still holds the original is
that original (a pickled read-only session keeps seeing new commits); elsewhere it is rebuilt
from the pickled objects. Closing a handle leaves the objects: the name, or unpickling, then
gives a new open handle on them (as reopening a bucket would).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import ClassVar, NamedTuple

from icechunk_lib.errors import (
    InvalidNameError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from icechunk_lib.storage._base import (
    ObjectInfo,
    Storage,
    StorageCapabilities,
    check_byte_range,
    check_key,
    check_prefix,
)

__all__ = ["InMemoryStorage"]

_NAME = re.compile(r"[A-Za-z0-9._~-]+")

# What one object pickles to: (bytes, version token, modification time).
_PickledObject = tuple[bytes, str, datetime]


class _Object(NamedTuple):
    # A named tuple: built on every chunk write, where a frozen dataclass costs more.
    data: bytes
    version: str
    mtime: float
    """Seconds since the epoch; ``modified`` turns it into a datetime when listed."""

    @property
    def modified(self) -> datetime:
        return datetime.fromtimestamp(self.mtime, UTC)


class _Shelf:
    """The objects of one storage and the lock and counter that guard them, shared by the
    handles on it (a closed handle and the one that replaces it)."""

    __slots__ = ("__weakref__", "clock", "lock", "objects")

    def __init__(self, objects: dict[str, _Object], clock: int) -> None:
        self.objects = objects
        self.clock = clock
        self.lock = threading.Lock()


class InMemoryStorage(Storage):
    """Objects in a dict guarded by a lock; version tokens come from a per-storage counter."""

    capabilities = StorageCapabilities(create_if_absent=True, compare_and_swap=True)

    _live: ClassVar[weakref.WeakValueDictionary[str, InMemoryStorage]] = (
        weakref.WeakValueDictionary()
    )
    _named: ClassVar[dict[str, InMemoryStorage]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        """Create a fresh, empty, anonymous storage."""
        self._setup(uuid.uuid4().hex, None, _Shelf({}, 0))
        with InMemoryStorage._registry_lock:
            InMemoryStorage._live[self._uid] = self

    def _setup(self, uid: str, name: str | None, shelf: _Shelf) -> None:
        self._uid = uid
        self._name = name
        self._shelf = shelf
        self._objects = shelf.objects
        self._lock = shelf.lock

    @classmethod
    def _handle(cls, uid: str, name: str | None, shelf: _Shelf) -> InMemoryStorage:
        """A new handle on ``shelf``, registered as the live one of ``uid`` and, unless the
        name is taken, of ``name``; the caller holds ``_registry_lock``."""
        storage = cls.__new__(cls)
        storage._setup(uid, name, shelf)
        cls._live[uid] = storage
        if name is not None:
            cls._named.setdefault(name, storage)
        return storage

    def _open_handle(self) -> InMemoryStorage:
        """This handle, or if closed its open successor on the same objects (made now if
        needed, taking its place in the registries); the caller holds ``_registry_lock``."""
        if not self._closed:
            return self
        live = InMemoryStorage._live.get(self._uid)
        if live is not None and not live._closed:
            return live
        successor = InMemoryStorage.__new__(InMemoryStorage)
        successor._setup(self._uid, self._name, self._shelf)
        InMemoryStorage._live[self._uid] = successor
        if self._name is not None and InMemoryStorage._named.get(self._name) is self:
            InMemoryStorage._named[self._name] = successor
        return successor

    @classmethod
    def named(cls, name: str) -> InMemoryStorage:
        """Return the process-wide storage called ``name``, creating it on first use.

        Named storages live until ``drop_named``; ``memory://<name>`` URLs resolve here.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidNameError(
                "memory storage", name, "use letters, digits and '.', '_', '~', '-' only"
            )
        with cls._registry_lock:
            storage = cls._named.get(name)
            if storage is None:
                return cls._handle(uuid.uuid4().hex, name, _Shelf({}, 0))
            return storage._open_handle()

    @classmethod
    def drop_named(cls, name: str) -> None:
        """Forget the named storage (handles already held keep working on its data)."""
        with cls._registry_lock:
            cls._named.pop(name, None)

    @property
    def name(self) -> str | None:
        """The registry name, or ``None`` for an anonymous storage."""
        return self._name

    @property
    def url(self) -> str:
        """``memory://<name>``, or ``memory://<short id>`` for an anonymous storage."""
        return f"memory://{self._name or self._uid[:8]}"

    def __repr__(self) -> str:
        return f"InMemoryStorage({self.url!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InMemoryStorage):
            return NotImplemented
        return self._uid == other._uid

    def __hash__(self) -> int:
        return hash(("memory", self._uid))

    def __reduce__(
        self,
    ) -> tuple[object, tuple[str, str | None, dict[str, _PickledObject], int]]:
        with self._lock:
            objects = {k: (o.data, o.version, o.modified) for k, o in self._objects.items()}
            clock = self._shelf.clock
        return (_restore, (self._uid, self._name, objects, clock))

    # --- reads ---------------------------------------------------------------------------

    def _lookup(self, key: str) -> _Object:
        if self._closed:
            raise self._closed_error()
        obj = self._objects.get(key)  # one dict read is atomic; the value is immutable
        if obj is None:
            check_key(key)  # only valid keys are ever stored: check on a miss alone
            raise ObjectNotFoundError(key, self.url)
        return obj

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        """Return the object's bytes or a clipped slice of them (see ``Storage.get``)."""
        if byte_range is not None:
            start, end = check_byte_range(byte_range)
            return self._lookup(key).data[start:end]
        return self._lookup(key).data

    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        """Return the bytes and their counter-based version token."""
        obj = self._lookup(key)
        return obj.data, obj.version

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        self._check_open()
        return check_key(key) in self._objects

    async def size(self, key: str) -> int:
        """The object's size in bytes."""
        return len(self._lookup(key).data)

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        with self._lock:
            matches = [(k, o) for k, o in self._objects.items() if k.startswith(prefix)]
        if start_after is not None:
            matches = sorted((k, o) for k, o in matches if k > start_after)
        for key, obj in matches:
            yield ObjectInfo(key=key, size=len(obj.data), last_modified=obj.modified)

    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Yield a snapshot of the objects under ``prefix`` taken when iteration starts
        (overrides ``Storage.list``)."""
        self._check_open()
        return self._list(check_prefix(prefix), start_after)

    async def is_empty(self) -> bool:
        """True when no object is stored."""
        self._check_open()
        return not self._objects

    # --- writes --------------------------------------------------------------------------

    def _store(self, key: str, data: bytes) -> str:
        """Store ``data`` under a fresh version; the caller holds ``self._lock``."""
        shelf = self._shelf
        shelf.clock += 1
        version = str(shelf.clock)
        # bytes() copies a bytearray/memoryview so later caller mutations cannot leak in.
        if type(data) is not bytes:
            data = bytes(data)
        self._objects[key] = _Object(data, version, time.time())
        return version

    async def put(self, key: str, data: bytes) -> None:
        """Write ``data`` unconditionally."""
        self._check_open()
        check_key(key)
        with self._lock:
            self._store(key, data)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        """Create ``key``; ``ObjectExistsError`` if present."""
        self._check_open()
        check_key(key)
        with self._lock:
            if key in self._objects:
                raise ObjectExistsError(key)
            self._store(key, data)

    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        """Replace ``key`` if its version token is ``version``; return the new token."""
        self._check_open()
        check_key(key)
        with self._lock:
            current = self._objects.get(key)
            if current is None or current.version != version:
                raise PreconditionFailedError(key)
            return self._store(key, data)

    async def delete(self, key: str) -> None:
        """Delete ``key`` if present."""
        self._check_open()
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete every key under one lock; all keys are checked before anything is deleted."""
        self._check_open()
        checked = [check_key(key) for key in keys]
        with self._lock:
            for key in checked:
                self._objects.pop(key, None)
        return len(checked)


def _restore(
    uid: str, name: str | None, objects: dict[str, _PickledObject], clock: int
) -> InMemoryStorage:
    """Unpickle: the live storage with this id if this process has one (a new open handle on
    its objects if it was closed), else a rebuilt copy."""
    with InMemoryStorage._registry_lock:
        live = InMemoryStorage._live.get(uid)
        if live is not None:
            return live._open_handle()
        rebuilt = {
            k: _Object(data, version, when.timestamp())
            for k, (data, version, when) in objects.items()
        }
        return InMemoryStorage._handle(uid, name, _Shelf(rebuilt, clock))
