"""``VirtualChunkSpec`` and the checks every virtual reference passes before it is recorded.

A reference names a byte range (``offset``, ``length``) of an object at ``location`` and,
optionally, what the object was when the reference was made: its ETag, or a time it had not
changed since (``last_updated_at``, whole seconds). Reads refuse an object that no longer
matches, so a changed source is an error, never wrong data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from icechunk_lib.errors import InvalidInputError, InvalidVirtualLocationError
from icechunk_lib.format.containers import location_problem
from icechunk_lib.format.manifest import VIRTUAL, ChunkRef

__all__ = ["VirtualChunkSpec", "checked_ref", "updated_at_seconds"]

_U64 = 2**64


class VirtualChunkSpec:
    """One virtual chunk of an array: its index in the chunk grid and where its bytes are."""

    __slots__ = (
        "_etag_checksum",
        "_index",
        "_last_updated_at_checksum",
        "_length",
        "_location",
        "_offset",
    )

    def __init__(
        self,
        index: Sequence[int],
        location: str,
        offset: int,
        length: int,
        etag_checksum: str | None = None,
        last_updated_at_checksum: dt.datetime | None = None,
    ) -> None:
        self._index = list(index)
        self._location = location
        self._offset = offset
        self._length = length
        self._etag_checksum = etag_checksum
        self._last_updated_at_checksum = last_updated_at_checksum

    @property
    def index(self) -> list[int]:
        """The chunk index, in chunk grid coordinates."""
        return self._index

    @property
    def location(self) -> str:
        """The URL of the object holding the chunk, like ``s3://bucket/foo.nc``."""
        return self._location

    @property
    def offset(self) -> int:
        """Where the chunk starts in the object, in bytes."""
        return self._offset

    @property
    def length(self) -> int:
        """The chunk's length in bytes."""
        return self._length

    @property
    def etag_checksum(self) -> str | None:
        """The object's ETag: reads refuse the object once its ETag differs."""
        return self._etag_checksum

    @property
    def last_updated_at_checksum(self) -> dt.datetime | None:
        """A time the object had not changed since: reads refuse it once modified after."""
        return self._last_updated_at_checksum

    def __repr__(self) -> str:
        return (
            f"VirtualChunkSpec(index={self._index!r}, location={self._location!r}, "
            f"offset={self._offset}, length={self._length}, "
            f"etag_checksum={self._etag_checksum!r}, "
            f"last_updated_at_checksum={self._last_updated_at_checksum!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VirtualChunkSpec):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((tuple(self._index), *self._fields()[1:]))

    def _fields(self) -> tuple[object, ...]:
        return (
            self._index,
            self._location,
            self._offset,
            self._length,
            self._etag_checksum,
            self._last_updated_at_checksum,
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (VirtualChunkSpec, self._fields())


def updated_at_seconds(when: object, location: object) -> int:
    """``last_updated_at`` as whole seconds since the Unix epoch (a naive time is UTC).

    Raises:
        InvalidInputError: ``when`` is not a datetime, or is before 1970.
    """
    if not isinstance(when, dt.datetime):
        raise InvalidInputError(
            f"the last_updated_at checksum of {location!r} must be a datetime, "
            f"not {type(when).__name__}"
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = int(when.timestamp())
    if seconds <= 0:
        raise InvalidInputError(
            f"the last_updated_at checksum of {location!r} must be after 1970-01-01, not {when}"
        )
    return seconds


def _checked_int(value: object, what: str, location: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"the {what} of virtual chunk {location!r} must be an integer, not "
            f"{type(value).__name__}"
        )
    if not 0 <= value < _U64:
        raise InvalidInputError(
            f"the {what} of virtual chunk {location!r} must be between 0 and 2**64-1, not {value}"
        )
    return value


def checked_ref(
    location: object,
    offset: object,
    length: object,
    etag: object = None,
    last_updated_at: object = None,
) -> ChunkRef:
    """The ``ChunkRef`` of one virtual chunk, after checking every field.

    Raises:
        InvalidVirtualLocationError: the location is malformed or could leave a container.
        InvalidInputError: a bad offset, length or checksum.
    """
    if not isinstance(location, str):
        raise InvalidVirtualLocationError(location, "a location is a URL (text)")
    problem = location_problem(location)
    if problem is not None:
        raise InvalidVirtualLocationError(location, problem)
    start = _checked_int(offset, "offset", location)
    size = _checked_int(length, "length", location)
    if start + size >= _U64:
        raise InvalidInputError(f"virtual chunk {location!r} ends past byte 2**64-1")
    if etag is not None and (not isinstance(etag, str) or not etag):
        raise InvalidInputError(
            f"the etag checksum of virtual chunk {location!r} must be non-empty text"
        )
    seconds = 0 if last_updated_at is None else updated_at_seconds(last_updated_at, location)
    return ChunkRef(
        VIRTUAL, offset=start, length=size, checksum=seconds, location=location, etag=etag or ""
    )
