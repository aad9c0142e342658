"""``VirtualChunkSpec`` and the checks every virtual reference passes before it is recorded.

A reference names a byte range (``offset``, ``length``) of an object at ``location`` and,
optionally, what the object was when the reference was made: its ETag, or a time it had not
changed since (``last_updated_at``, whole seconds). Reads refuse an object that no longer
matches, so a changed source is an error, never wrong data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import chain, repeat
from operator import attrgetter
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from icechunk_lib.errors import InvalidInputError, InvalidVirtualLocationError
from icechunk_lib.format.containers import location_problem
from icechunk_lib.format.manifest import VIRTUAL, ChunkRef

__all__ = ["VirtualChunkSpec", "VirtualRows", "checked_ref", "spec_columns", "updated_at_seconds"]

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
    if size == 0:  # zarr cannot decode an empty chunk: every read of it would fail
        raise InvalidInputError(
            f"virtual chunk {location!r} has length 0; a chunk holds at least one byte"
        )
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


class VirtualRows(NamedTuple):
    """Virtual chunks as columns (row ``i`` is one chunk): many checked ``VirtualChunkSpec``
    s, as ``spec_columns`` reads them and ``ChunkChanges.put_virtual`` records them."""

    coords: npt.NDArray[np.int64]
    """(n, ndim) chunk indices, each inside the grid."""
    offsets: npt.NDArray[np.uint64]
    lengths: npt.NDArray[np.uint64]
    checksums: npt.NDArray[np.uint64]
    """``last_updated_at`` in whole seconds (0: none)."""
    pair_index: npt.NDArray[np.int32]
    """Row -> its entry in ``pairs``."""
    pairs: list[tuple[str, str]]
    """Distinct (location, etag) pairs ("": no etag), in first-use order."""


_INDEX = attrgetter("_index")
_LOCATION = attrgetter("_location")
_OFFSET = attrgetter("_offset")
_LENGTH = attrgetter("_length")
_ETAG = attrgetter("_etag_checksum")
_UPDATED = attrgetter("_last_updated_at_checksum")


def spec_columns(specs: Sequence[object], grid: Sequence[int]) -> VirtualRows | None:
    """The specs as checked columns, with whole-column passes (no Python step per spec);
    None when any spec fails a check, or is of an unusual type (an ``int`` subclass, say),
    so the caller checks them one by one with ``checked_ref`` for the exact error.

    Every check of ``checked_ref`` holds for each row, and each index has ``len(grid)``
    plain ``int`` coordinates inside ``grid``; each distinct location and checksum is
    checked once.
    """
    try:
        return _spec_columns(specs, tuple(grid))
    except (TypeError, ValueError, OverflowError):  # unhashable, unsized, too large...
        return None


def _spec_columns(specs: Sequence[object], grid: tuple[int, ...]) -> VirtualRows | None:
    n = len(specs)
    ndim = len(grid)
    if not all(map(isinstance, specs, repeat(VirtualChunkSpec))):
        return None
    # Every pass below is map/set/fromiter over the specs: C loops, no Python frame per spec.
    indices = list(map(_INDEX, specs))
    if n and set(map(len, indices)) != {ndim}:
        return None
    if n and ndim and set(map(type, chain.from_iterable(indices))) != {int}:
        return None
    flat = chain.from_iterable(indices)
    coords = np.fromiter(flat, dtype=np.int64, count=n * ndim).reshape(n, ndim)
    if n and ndim and not ((coords >= 0).all() and (coords < np.array(grid)).all()):
        return None
    offsets = _u64_column(list(map(_OFFSET, specs)))
    lengths = _u64_column(list(map(_LENGTH, specs)))
    if offsets is None or lengths is None:
        return None
    if ((offsets + lengths) < offsets).any() or not lengths.all():  # wrapped, or empty
        return None
    locations = list(map(_LOCATION, specs))
    etags = list(map(_ETAG, specs))
    updated = list(map(_UPDATED, specs))
    distinct_etags = set(etags)
    if not all(type(e) is str and e for e in distinct_etags - {None}):
        return None
    distinct_updated = set(updated)
    seconds: dict[object, int] = {None: 0}
    for when in distinct_updated - {None}:
        if type(when) is not dt.datetime:
            return None
        try:
            seconds[when] = updated_at_seconds(when, "")
        except InvalidInputError:
            return None
    if distinct_updated == {None}:
        checksums = np.zeros(n, dtype=np.uint64)
    else:
        checksums = np.fromiter(map(seconds.__getitem__, updated), np.uint64, count=n)
    # Distinct (location, etag) pairs, keyed by the location alone when no spec has an etag.
    keys: list[object] = (
        list(locations) if distinct_etags <= {None} else list(zip(locations, etags, strict=True))
    )
    distinct: dict[object, int] = dict.fromkeys(keys, 0)
    pairs: list[tuple[str, str]] = []
    for i, key in enumerate(distinct):
        distinct[key] = i
        pair: tuple[str, str | None] = (key, None) if isinstance(key, str) else key  # type: ignore[assignment]
        pairs.append((pair[0], pair[1] or ""))
    # Each distinct location once: its type and syntax (no escape out of a container).
    for location in dict.fromkeys(loc for loc, _ in pairs):
        if type(location) is not str or location_problem(location) is not None:
            return None
    pair_index = np.fromiter(map(distinct.__getitem__, keys), np.int32, count=n)
    return VirtualRows(coords, offsets, lengths, checksums, pair_index, pairs)


def _u64_column(values: list[object]) -> npt.NDArray[np.uint64] | None:
    """``values`` as uint64 if every one is a plain ``int`` in [0, 2**64) (None: not)."""
    if values and set(map(type, values)) != {int}:
        return None
    try:
        return np.fromiter(values, dtype=np.uint64, count=len(values))
    except OverflowError:  # negative, or 2**64 and above
        return None
