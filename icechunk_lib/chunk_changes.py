"""One array's uncommitted chunk changes, kept as columns from the moment they are written.

A session records every chunk write here; a commit then reads the changes as numpy arrays
(``columns``) instead of walking one Python object per chunk. Virtual rows are columns too:
each holds an index into the record's distinct (location, etag) pairs, so a million virtual
references recorded at once (``put_virtual``) keep no Python object per reference. Lookups by
coordinates still work (a dict maps coordinates to rows) and the class is a
``MutableMapping`` of coordinates to ``ChunkRef`` (``None`` for a deleted chunk), so conflict
detection, diffs and merges use it like the dict it replaces.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np
import numpy.typing as npt

from icechunk_lib.format.manifest import NATIVE, VIRTUAL, ChunkRef, ChunkTable
from icechunk_lib.virtual.spec import VirtualRows
from icechunk_lib.zarr_keys import Coords

__all__ = ["ChunkChanges", "Columns", "VirtualRows"]

_ID = 12
_NO_ID = bytes(_ID)
_DELETED = 0
"""Row kind of a deleted chunk (ChunkRef kinds start at 1)."""
_DROPPED = 255
"""Row kind of a change that was taken back (rebase): skipped by ``columns``."""


class Columns:
    """The live changes of one array as numpy columns, rows in write order."""

    __slots__ = (
        "checksums",
        "coords",
        "deleted",
        "ids",
        "kinds",
        "lengths",
        "loc_index",
        "locations",
        "offsets",
        "refs",
    )

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
        loc_index: npt.NDArray[np.int32] | None = None,
        locations: list[tuple[str, str]] | None = None,
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
        """Row -> full ``ChunkRef`` for inline rows (their bytes)."""
        self.loc_index = np.full(len(kinds), -1, np.int32) if loc_index is None else loc_index
        """Virtual rows: their entry in ``locations``; -1 elsewhere."""
        self.locations = [] if locations is None else locations
        """Distinct (location, etag) pairs (some may be unused by these rows)."""

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
            loc_index=self.loc_index[rows],
            locations=self.locations,
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
            location_index=self.loc_index,
            locations=[loc for loc, _ in self.locations],
            location_etags=[etag for _, etag in self.locations],
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
        "_loc",
        "_locations",
        "_lock",
        "_offsets",
        "_others",
        "_pairs",
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
        self._loc = array("i")
        self._ids = bytearray()
        self._others: dict[int, ChunkRef] = {}
        self._locations: list[tuple[str, str]] = []
        """Distinct (location, etag) pairs of virtual rows, in first-use order; never shrinks."""
        self._pairs: dict[tuple[str, str], int] = {}
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
        # Rows already _DROPPED (taken back, or superseded while an earlier index lived) are
        # skipped; of the others the last write of each chunk wins.
        rows: dict[Coords, int] = {}
        ndim = self.ndim
        flat = self._coords.tolist()
        kinds = self._kinds
        for row in range(len(kinds)):
            if kinds[row] == _DROPPED:
                continue
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

    def _pair(self, location: str, etag: str) -> int:
        """The entry of (location, etag) in ``_locations``, added on first use."""
        pair = (location, etag)
        at = self._pairs.get(pair)
        if at is None:
            at = self._pairs[pair] = len(self._locations)
            self._locations.append(pair)
        return at

    def _append(
        self,
        coords: Coords,
        kind: int,
        cid: bytes,
        offset: int,
        length: int,
        checksum: int,
        other: ChunkRef | None = None,
        loc: int = -1,
    ) -> None:
        with self._lock:
            row = len(self._kinds)
            self._coords.extend(coords)
            self._kinds.append(kind)
            self._offsets.append(offset)
            self._lengths.append(length)
            self._checksums.append(checksum)
            self._loc.append(loc)
            self._ids += cid
            if self._rows is not None:
                self._supersede(self._rows, coords)
                self._rows[coords] = row
            if other is not None:  # inline: its bytes live here
                self._others[row] = other

    # --- writes ------------------------------------------------------------------------------

    def put_native(self, coords: Coords, chunk_id: bytes, length: int, checksum: int) -> None:
        """Record a native chunk written whole (the hot path: no ``ChunkRef`` object)."""
        self._append(coords, NATIVE, chunk_id, 0, length, checksum)

    def put_virtual(self, rows: VirtualRows) -> None:
        """Record many virtual chunks at once, in order (a later row of one chunk wins).

        The columns are appended as they are: no object per row.
        """
        n = len(rows.pair_index)
        coords = np.ascontiguousarray(rows.coords, dtype=np.int64)
        if coords.shape != (n, self.ndim):
            raise ValueError(
                f"expected an ({n}, {self.ndim}) coordinate matrix, got {coords.shape}"
            )
        if not n:
            return
        offsets, lengths, checksums = rows.offsets, rows.lengths, rows.checksums
        pairs, pair_index = rows.pairs, rows.pair_index
        with self._lock:
            # The batch's pairs as entries of this record's pairs (few: one per source object).
            mine = np.array([self._pair(loc, etag) for loc, etag in pairs], dtype=np.int32)
            loc = mine[np.asarray(pair_index, dtype=np.intp)]
            self._coords.frombytes(coords.tobytes())
            self._kinds.frombytes(np.full(n, VIRTUAL, dtype=np.uint8).tobytes())
            self._offsets.frombytes(np.ascontiguousarray(offsets, dtype=np.uint64).tobytes())
            self._lengths.frombytes(np.ascontiguousarray(lengths, dtype=np.uint64).tobytes())
            self._checksums.frombytes(np.ascontiguousarray(checksums, dtype=np.uint64).tobytes())
            self._loc.frombytes(loc.astype(np.int32).tobytes())
            self._ids += bytes(_ID * n)
            index = self._rows
            if index is not None and n <= len(index) // 8:
                # A small batch into a large indexed record: keep the index current.
                first = len(self._kinds) - n
                for row, c in enumerate(map(tuple, coords.tolist()), first):
                    self._supersede(index, c)
                    index[c] = row
            else:
                # An index would need a Python step per row: let the next lookup rebuild it
                # (rows it superseded are _DROPPED already, which ``columns`` and the build
                # skip).
                self._rows = None

    def absorb(self, other: ChunkChanges) -> None:
        """Apply every change of ``other`` after ours (``other`` wins a chunk both changed),
        column-wise: what merging a forked session's changes does."""
        if other.ndim != self.ndim:
            raise ValueError(f"expected changes of rank {self.ndim}, got rank {other.ndim}")
        cols = other.columns()
        n = len(cols)
        if not n:
            return
        with self._lock:
            first = len(self._kinds)
            mine = np.array(
                [self._pair(loc, etag) for loc, etag in cols.locations] + [-1], dtype=np.int32
            )
            self._coords.frombytes(np.ascontiguousarray(cols.coords, dtype=np.int64).tobytes())
            self._kinds.frombytes(cols.kinds.tobytes())
            self._offsets.frombytes(cols.offsets.tobytes())
            self._lengths.frombytes(cols.lengths.tobytes())
            self._checksums.frombytes(cols.checksums.tobytes())
            self._loc.frombytes(mine[cols.loc_index].tobytes())  # -1 picks the final -1
            self._ids += cols.ids.tobytes()
            self._others.update({first + row: ref for row, ref in cols.refs.items()})
            self._rows = None  # rebuilt on the next lookup, as after a large batch

    def __setitem__(self, coords: Coords, ref: ChunkRef | None) -> None:
        if len(coords) != self.ndim:
            raise ValueError(f"expected {self.ndim} coordinates, got {coords!r}")
        if ref is None:
            self._append(coords, _DELETED, _NO_ID, 0, 0, 0)
            return
        kind = ref.kind
        if kind == NATIVE:
            self._append(coords, NATIVE, ref.chunk_id, ref.offset, ref.length, ref.checksum)
        elif kind == VIRTUAL:
            with self._lock:
                loc = self._pair(ref.location, ref.etag)
            self._append(coords, VIRTUAL, _NO_ID, ref.offset, ref.length, ref.checksum, None, loc)
        else:
            self._append(coords, kind, _NO_ID, ref.offset, ref.length, ref.checksum, ref)

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
        if kind == VIRTUAL:
            location, etag = self._locations[self._loc[row]]
            return ChunkRef(
                VIRTUAL,
                offset=self._offsets[row],
                length=self._lengths[row],
                checksum=self._checksums[row],
                location=location,
                etag=etag,
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
        if self._rows is not None:
            return bool(self._rows)
        # Without an index every row taken back is _DROPPED; any other row is a live change.
        with self._lock:  # a view of the column must not outlive a concurrent append
            kinds = np.frombuffer(self._kinds, dtype=np.uint8)
            live = bool((kinds != _DROPPED).any())
            del kinds
        return live

    def __repr__(self) -> str:
        return f"ChunkChanges(ndim={self.ndim}, {len(self)} change(s))"

    def __reduce__(self) -> tuple[Any, ...]:
        # The live rows as columns (a few buffers however many rows there are).
        cols = self.columns()
        return (
            _rebuild,
            (
                self.ndim,
                cols.coords,
                cols.kinds,
                cols.ids,
                cols.offsets,
                cols.lengths,
                cols.checksums,
                cols.loc_index,
                cols.locations,
                cols.refs,
            ),
        )

    def copy(self) -> ChunkChanges:
        """An independent copy (column copies are memcpy; an index is copied if built)."""
        new = ChunkChanges.__new__(ChunkChanges)
        new.ndim = self.ndim
        new._lock = threading.Lock()
        with self._lock:
            new._rows = None if self._rows is None else dict(self._rows)
            new._coords = array("q", self._coords)
            new._kinds = array("B", self._kinds)
            new._offsets = array("Q", self._offsets)
            new._lengths = array("Q", self._lengths)
            new._checksums = array("Q", self._checksums)
            new._loc = array("i", self._loc)
            new._ids = bytearray(self._ids)
            new._others = dict(self._others)
            new._locations = list(self._locations)
            new._pairs = dict(self._pairs)
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
            # together; a stable sort keeps write order within them). A _DROPPED row that is
            # later than a live one of its chunk cannot occur: dropping a chunk's last row
            # (taking the change back) drops its earlier rows with it.
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
            loc_index=np.frombuffer(self._loc, dtype=np.int32, count=n_all),
            locations=list(self._locations),
        )
        if not live.all():
            return cols.select(np.flatnonzero(live))  # selecting copies
        if copy:
            for name in ("coords", "ids", "offsets", "lengths", "checksums", "loc_index"):
                setattr(cols, name, getattr(cols, name).copy())
        return cols


def _rebuild(
    ndim: int,
    coords: npt.NDArray[np.int64],
    kinds: npt.NDArray[np.uint8],
    ids: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.uint64],
    checksums: npt.NDArray[np.uint64],
    loc_index: npt.NDArray[np.int32],
    locations: list[tuple[str, str]],
    others: dict[int, ChunkRef],
) -> ChunkChanges:
    """A record holding the given live rows (one per chunk), as ``__reduce__`` saved them."""
    new = ChunkChanges(ndim)
    new._coords.frombytes(np.ascontiguousarray(coords, dtype=np.int64).tobytes())
    new._kinds.frombytes(np.ascontiguousarray(kinds, dtype=np.uint8).tobytes())
    new._ids += np.ascontiguousarray(ids, dtype=np.uint8).tobytes()
    new._offsets.frombytes(np.ascontiguousarray(offsets, dtype=np.uint64).tobytes())
    new._lengths.frombytes(np.ascontiguousarray(lengths, dtype=np.uint64).tobytes())
    new._checksums.frombytes(np.ascontiguousarray(checksums, dtype=np.uint64).tobytes())
    new._loc.frombytes(np.ascontiguousarray(loc_index, dtype=np.int32).tobytes())
    new._others = dict(others)
    new._locations = [(str(loc), str(etag)) for loc, etag in locations]
    new._pairs = {pair: i for i, pair in enumerate(new._locations)}
    return new
