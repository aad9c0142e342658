"""One array's uncommitted chunk changes, kept as columns from the moment they are written.

A session records every chunk write here; a commit then reads the changes as numpy arrays
(``columns``) instead of walking one Python object per chunk. Lookups by coordinates still
work (a dict maps coordinates to rows) and the class is a ``MutableMapping`` of coordinates to
``ChunkRef`` (``None`` for a deleted chunk), so conflict detection, diffs and merges use it
like the dict it replaces.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np
import numpy.typing as npt

from icechunk_lib.format.manifest import NATIVE, ChunkRef, ChunkTable
from icechunk_lib.zarr_keys import Coords

__all__ = ["ChunkChanges", "Columns"]

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

    def __len__(self) -> int:
        return len(self.kinds)

    def select(self, rows: npt.NDArray[np.intp]) -> Columns:
        """Only ``rows`` (ascending), renumbered from 0; copies."""
        position = np.full(len(self.kinds), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        kinds = self.kinds[rows]
        return Columns(
            coords=self.coords[rows],
            kinds=kinds,
            ids=self.ids[rows],
            offsets=self.offsets[rows],
            lengths=self.lengths[rows],
            checksums=self.checksums[rows],
            deleted=kinds == _DELETED,
            refs={int(position[r]): ref for r, ref in self.refs.items() if position[r] >= 0},
        )

    def table(self, node_id: str) -> ChunkTable:
        """The rows as a sorted manifest table (call on rows that write, not delete)."""
        return ChunkTable.from_columns(
            node_id,
            self.coords,
            kinds=self.kinds,
            ids=self.ids,
            offsets=self.offsets,
            lengths=self.lengths,
            checksums=self.checksums,
            others=self.refs,
        )


class ChunkChanges(MutableMapping[Coords, "ChunkRef | None"]):
    """Coordinates -> ``ChunkRef`` (or ``None``: deleted), stored column-wise.

    Writes only append rows: the coordinates -> row index is built on the first lookup (a
    read of an uncommitted chunk, a status, a rebase) and kept current from then on. A
    session that only writes therefore holds no Python object per chunk, and ``columns``
    resolves repeated writes of one chunk (the last one wins) with numpy.
    """

    __slots__ = (
        "_checksums",
        "_coords",
        "_ids",
        "_kinds",
        "_lengths",
        "_lock",
        "_offsets",
        "_others",
        "_rows",
        "ndim",
    )

    def __init__(self, ndim: int, items: Mapping[Coords, ChunkRef | None] | None = None) -> None:
        self.ndim = ndim
        # Appends and the index build exclude each other: a lookup from another thread must
        # not build an index that misses a row appended meanwhile.
        self._lock = threading.Lock()
        self._rows: dict[Coords, int] | None = None
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

    # --- the row index -----------------------------------------------------------------------

    def _index(self) -> dict[Coords, int]:
        """Coordinates -> live row, built on first use; superseded rows become ``_DROPPED``."""
        rows = self._rows
        if rows is not None:
            return rows
        with self._lock:
            if self._rows is None:
                self._rows = self._build_index()
            return self._rows

    def _build_index(self) -> dict[Coords, int]:
        # No row is _DROPPED yet: only taking a change back drops one, and that needs the index.
        rows: dict[Coords, int] = {}
        ndim = self.ndim
        flat = self._coords.tolist()
        for row in range(len(self._kinds)):
            coords = tuple(flat[row * ndim : row * ndim + ndim])
            self._supersede(rows, coords)
            rows[coords] = row
        return rows

    def _supersede(self, rows: dict[Coords, int], coords: Coords) -> None:
        """Drop the row ``coords`` had until now, if any (a newer write replaces it)."""
        previous = rows.get(coords)
        if previous is not None:
            self._kinds[previous] = _DROPPED
            self._others.pop(previous, None)

    def _append(
        self,
        coords: Coords,
        kind: int,
        cid: bytes,
        offset: int,
        length: int,
        checksum: int,
        other: ChunkRef | None = None,
    ) -> None:
        with self._lock:
            row = len(self._kinds)
            self._coords.extend(coords)
            self._kinds.append(kind)
            self._offsets.append(offset)
            self._lengths.append(length)
            self._checksums.append(checksum)
            self._ids += cid
            if self._rows is not None:
                self._supersede(self._rows, coords)
                self._rows[coords] = row
            if other is not None:  # inline or virtual: its bytes or location live here
                self._others[row] = other

    # --- writes ------------------------------------------------------------------------------

    def put_native(self, coords: Coords, chunk_id: bytes, length: int, checksum: int) -> None:
        """Record a native chunk written whole (the hot path: no ``ChunkRef`` object)."""
        self._append(coords, NATIVE, chunk_id, 0, length, checksum)

    def __setitem__(self, coords: Coords, ref: ChunkRef | None) -> None:
        if len(coords) != self.ndim:
            raise ValueError(f"expected {self.ndim} coordinates, got {coords!r}")
        if ref is None:
            self._append(coords, _DELETED, _NO_ID, 0, 0, 0)
            return
        native = ref.kind == NATIVE
        self._append(
            coords,
            ref.kind,
            ref.chunk_id if native else _NO_ID,
            ref.offset,
            ref.length,
            ref.checksum,
            None if native else ref,
        )

    def __delitem__(self, coords: Coords) -> None:
        """Take a change back (not the same as deleting the chunk: see ``__setitem__``)."""
        rows = self._index()
        with self._lock:
            row = rows.pop(coords)
            self._kinds[row] = _DROPPED
            self._others.pop(row, None)

    # --- reads -------------------------------------------------------------------------------

    def __getitem__(self, coords: Coords) -> ChunkRef | None:
        row = self._index()[coords]
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
        return coords in self._index()

    def __iter__(self) -> Iterator[Coords]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._index())

    def __bool__(self) -> bool:
        # Without an index no row was taken back, so any row is a live change.
        return bool(self._rows) if self._rows is not None else len(self._kinds) > 0

    def __repr__(self) -> str:
        return f"ChunkChanges(ndim={self.ndim}, {len(self)} change(s))"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.ndim, dict(self.items())))

    def copy(self) -> ChunkChanges:
        """An independent copy (column copies are memcpy; an index is copied if built)."""
        new = ChunkChanges.__new__(ChunkChanges)
        new.ndim = self.ndim
        new._lock = threading.Lock()
        new._rows = None if self._rows is None else dict(self._rows)
        new._coords = array("q", self._coords)
        new._kinds = array("B", self._kinds)
        new._offsets = array("Q", self._offsets)
        new._lengths = array("Q", self._lengths)
        new._checksums = array("Q", self._checksums)
        new._ids = bytearray(self._ids)
        new._others = dict(self._others)
        return new

    def columns(self, *, copy: bool = True) -> Columns:
        """The live changes as numpy columns.

        With ``copy=False`` the columns may be views of this record, which must then not be
        written to while they are in use (a commit reads the private copy it captured).
        """
        n_all = len(self._kinds)
        kinds = np.frombuffer(self._kinds, dtype=np.uint8, count=n_all).copy()
        coords = np.frombuffer(self._coords, dtype=np.int64).reshape(n_all, self.ndim)
        live = kinds != _DROPPED
        if self._rows is None and n_all > 1:
            # Rows in write order: the last write of each chunk wins (equal coordinates sort
            # together; a stable sort keeps write order within them).
            # (A 0-d array has one chunk: every row but the last is an older write of it.)
            order = np.lexsort(coords.T[::-1]) if self.ndim else np.arange(n_all)
            ordered = coords[order]
            later = np.zeros(n_all, dtype=bool)
            later[:-1] = (ordered[1:] == ordered[:-1]).all(axis=1)
            live[order[later]] = False
        cols = Columns(
            coords=coords,
            kinds=kinds,
            ids=np.frombuffer(self._ids, dtype=np.uint8).reshape(n_all, _ID),
            offsets=np.frombuffer(self._offsets, dtype=np.uint64, count=n_all),
            lengths=np.frombuffer(self._lengths, dtype=np.uint64, count=n_all),
            checksums=np.frombuffer(self._checksums, dtype=np.uint64, count=n_all),
            deleted=kinds == _DELETED,
            refs=dict(self._others),
        )
        if not live.all():
            return cols.select(np.flatnonzero(live))  # selecting copies
        if copy:
            for name in ("coords", "ids", "offsets", "lengths", "checksums"):
                setattr(cols, name, getattr(cols, name).copy())
        return cols


def _rebuild(ndim: int, items: dict[Coords, ChunkRef | None]) -> ChunkChanges:
    return ChunkChanges(ndim, items)
