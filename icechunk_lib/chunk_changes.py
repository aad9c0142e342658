"""One array's uncommitted chunk changes, kept as columns from the moment they are written.

A session records every chunk write here; a commit then reads the changes as numpy arrays
(``columns``) instead of walking one Python object per chunk. Lookups by coordinates still
work (a dict maps coordinates to rows) and the class is a ``MutableMapping`` of coordinates to
``ChunkRef`` (``None`` for a deleted chunk), so conflict detection, diffs and merges use it
like the dict it replaces.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np
import numpy.typing as npt

from icechunk_lib.format.manifest import NATIVE, ChunkRef

__all__ = ["ChunkChanges", "Columns"]

Coords = tuple[int, ...]
_ID = 12
_NO_ID = bytes(_ID)
_DELETED = 0
"""Row kind of a deleted chunk (ChunkRef kinds start at 1)."""
_DROPPED = 255
"""Row kind of a change that was taken back (rebase): skipped by ``columns``."""


class Columns:
    """The live changes of one array as numpy columns, rows in write order."""

    __slots__ = ("checksums", "coords", "deleted", "ids", "kinds", "lengths", "offsets", "refs")

    def __init__(
        self,
        coords: npt.NDArray[np.int64],
        kinds: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.uint64],
        lengths: npt.NDArray[np.uint64],
        checksums: npt.NDArray[np.uint64],
        deleted: npt.NDArray[np.bool_],
        refs: dict[int, ChunkRef],
    ) -> None:
        self.coords = coords
        """(n, ndim) coordinates of every changed chunk, written or deleted."""
        self.kinds = kinds
        self.ids = ids
        """(n, 12) raw chunk ids (zeros for non-native rows)."""
        self.offsets = offsets
        self.lengths = lengths
        self.checksums = checksums
        self.deleted = deleted
        """True where the change deletes the chunk."""
        self.refs = refs
        """Row -> full ``ChunkRef`` for inline and virtual rows (their data and location)."""


class ChunkChanges(MutableMapping[Coords, "ChunkRef | None"]):
    """Coordinates -> ``ChunkRef`` (or ``None``: deleted), stored column-wise."""

    __slots__ = (
        "_checksums",
        "_coords",
        "_ids",
        "_kinds",
        "_lengths",
        "_offsets",
        "_others",
        "_rows",
        "ndim",
    )

    def __init__(self, ndim: int, items: Mapping[Coords, ChunkRef | None] | None = None) -> None:
        self.ndim = ndim
        self._rows: dict[Coords, int] = {}
        self._coords = array("q")
        self._kinds = array("B")
        self._offsets = array("Q")
        self._lengths = array("Q")
        self._checksums = array("Q")
        self._ids = bytearray()
        self._others: dict[int, ChunkRef] = {}
        if items:
            for coords, ref in items.items():
                self[coords] = ref

    # --- writes ------------------------------------------------------------------------------

    def put_native(self, coords: Coords, chunk_id: bytes, length: int, checksum: int) -> None:
        """Record a native chunk written whole (the hot path: no ``ChunkRef`` object)."""
        row = self._rows.get(coords)
        if row is None:
            self._rows[coords] = len(self._kinds)
            self._coords.extend(coords)
            self._kinds.append(NATIVE)
            self._offsets.append(0)
            self._lengths.append(length)
            self._checksums.append(checksum)
            self._ids += chunk_id
            return
        self._kinds[row] = NATIVE
        self._offsets[row] = 0
        self._lengths[row] = length
        self._checksums[row] = checksum
        self._ids[row * _ID : row * _ID + _ID] = chunk_id
        self._others.pop(row, None)

    def __setitem__(self, coords: Coords, ref: ChunkRef | None) -> None:
        if len(coords) != self.ndim:
            raise ValueError(f"expected {self.ndim} coordinates, got {coords!r}")
        if ref is not None and ref.kind == NATIVE and ref.offset == 0:
            self.put_native(coords, ref.chunk_id, ref.length, ref.checksum)
            return
        if ref is None:
            kind, offset, length, checksum, cid = _DELETED, 0, 0, 0, _NO_ID
        else:
            kind, offset, length, checksum = ref.kind, ref.offset, ref.length, ref.checksum
            cid = ref.chunk_id if ref.kind == NATIVE else _NO_ID
        row = self._rows.get(coords)
        if row is None:
            row = self._rows[coords] = len(self._kinds)
            self._coords.extend(coords)
            self._kinds.append(kind)
            self._offsets.append(offset)
            self._lengths.append(length)
            self._checksums.append(checksum)
            self._ids += cid
        else:
            self._kinds[row] = kind
            self._offsets[row] = offset
            self._lengths[row] = length
            self._checksums[row] = checksum
            self._ids[row * _ID : row * _ID + _ID] = cid
        if ref is not None and ref.kind != NATIVE:
            self._others[row] = ref
        else:
            self._others.pop(row, None)

    def __delitem__(self, coords: Coords) -> None:
        """Take a change back (not the same as deleting the chunk: see ``__setitem__``)."""
        row = self._rows.pop(coords)
        self._kinds[row] = _DROPPED
        self._others.pop(row, None)

    # --- reads -------------------------------------------------------------------------------

    def __getitem__(self, coords: Coords) -> ChunkRef | None:
        row = self._rows[coords]
        kind = self._kinds[row]
        if kind == NATIVE:
            return ChunkRef(
                NATIVE,
                bytes(self._ids[row * _ID : row * _ID + _ID]),
                self._offsets[row],
                self._lengths[row],
                self._checksums[row],
            )
        if kind == _DELETED:
            return None
        return self._others[row]

    def __contains__(self, coords: object) -> bool:
        return coords in self._rows

    def __iter__(self) -> Iterator[Coords]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"ChunkChanges(ndim={self.ndim}, {len(self)} change(s))"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.ndim, dict(self.items())))

    def copy(self) -> ChunkChanges:
        """An independent copy (column copies are memcpy; the row index is a dict copy)."""
        new = ChunkChanges.__new__(ChunkChanges)
        new.ndim = self.ndim
        new._rows = dict(self._rows)
        new._coords = array("q", self._coords)
        new._kinds = array("B", self._kinds)
        new._offsets = array("Q", self._offsets)
        new._lengths = array("Q", self._lengths)
        new._checksums = array("Q", self._checksums)
        new._ids = bytearray(self._ids)
        new._others = dict(self._others)
        return new

    def columns(self) -> Columns:
        """The live changes as numpy columns (copies: later writes do not show through)."""
        n_all = len(self._kinds)
        kinds = np.frombuffer(self._kinds, dtype=np.uint8, count=n_all).copy()
        coords = np.frombuffer(self._coords, dtype=np.int64).reshape(n_all, self.ndim).copy()
        ids = np.frombuffer(self._ids, dtype=np.uint8).reshape(n_all, _ID).copy()
        offsets = np.frombuffer(self._offsets, dtype=np.uint64, count=n_all).copy()
        lengths = np.frombuffer(self._lengths, dtype=np.uint64, count=n_all).copy()
        checksums = np.frombuffer(self._checksums, dtype=np.uint64, count=n_all).copy()
        refs = dict(self._others)
        if len(self._rows) != n_all:  # some changes were taken back: keep live rows only
            live = np.flatnonzero(kinds != _DROPPED)
            position = np.full(n_all, -1, dtype=np.int64)
            position[live] = np.arange(len(live))
            refs = {int(position[row]): ref for row, ref in refs.items()}
            kinds, coords, ids = kinds[live], coords[live], ids[live]
            offsets, lengths, checksums = offsets[live], lengths[live], checksums[live]
        return Columns(
            coords=coords,
            kinds=kinds,
            ids=ids,
            offsets=offsets,
            lengths=lengths,
            checksums=checksums,
            deleted=kinds == _DELETED,
            refs=refs,
        )


def _rebuild(ndim: int, items: dict[Coords, ChunkRef | None]) -> ChunkChanges:
    return ChunkChanges(ndim, items)
