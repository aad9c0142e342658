"""Manifest pieces by region: cutting a chunk table along split sizes, and finding the pieces
that may hold given chunk coordinates.

An array's pieces are ``ManifestRef`` s (consecutive row-major ranges, found by bisecting
``first``) or, once manifest splitting applies to it, ``RegionRef`` s holding the chunks of
one region of the chunk grid each, found by their boxes. Boxes of pieces written under
different split sizes may overlap (their chunks never do), so a lookup yields candidates.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from icechunk_lib.format.manifest import ChunkTable, fold_keys
from icechunk_lib.format.snapshot import ManifestRef, RegionRef

__all__ = ["PieceIndex", "cut_regions", "region_ref", "uses_regions"]

_OPEN = 2**62
"""Upper bound of an axis a row-major piece does not bound (any coordinate fits below)."""


def uses_regions(pieces: Sequence[ManifestRef]) -> bool:
    """Whether an array's pieces must be found by box (some piece was cut by region)."""
    return any(type(p) is RegionRef for p in pieces)


def _box(piece: ManifestRef, ndim: int) -> tuple[list[int], list[int]]:
    """Inclusive bounds of the chunks ``piece`` may hold. A row-major range from ``first``
    to ``last`` is bounded on the axes up to the first one where they differ, and open on
    the axes after it."""
    if type(piece) is RegionRef:
        return list(piece.lower), list(piece.upper)
    lo, hi = [0] * ndim, [_OPEN] * ndim
    for axis, (a, b) in enumerate(zip(piece.first, piece.last, strict=True)):
        lo[axis], hi[axis] = a, b
        if a != b:
            break
    return lo, hi


class PieceIndex:
    """The pieces of one array that may hold given coordinates, by their boxes.

    Every box edge along an axis starts a slab; a cell (one slab per axis) lies wholly
    inside or wholly outside each box, so the candidates of a cell are computed once (with
    numpy, over all pieces) and a lookup is a bisect per axis and a dict lookup.
    """

    def __init__(self, pieces: Sequence[ManifestRef], ndim: int) -> None:
        self.pieces = tuple(pieces)
        boxes = [_box(p, ndim) for p in self.pieces]
        shape = (len(boxes), ndim)
        self._lo = np.array([b[0] for b in boxes], dtype=np.int64).reshape(shape)
        self._hi = np.array([b[1] for b in boxes], dtype=np.int64).reshape(shape)
        self._edges = [
            np.unique(np.concatenate([self._lo[:, a], self._hi[:, a] + 1])) for a in range(ndim)
        ]
        self._edge_lists = [e.tolist() for e in self._edges]
        self._cells: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._found: dict[tuple[int, ...], tuple[ManifestRef, ...]] = {}

    def _of_cell(self, cell: tuple[int, ...]) -> tuple[int, ...]:
        found = self._cells.get(cell)
        if found is None:
            if any(c < 0 for c in cell):
                found = ()
            else:
                start = np.array([e[c] for e, c in zip(self._edges, cell, strict=True)])
                inside = ((self._lo <= start) & (start <= self._hi)).all(axis=1)
                found = tuple(np.flatnonzero(inside).tolist())
            self._cells[cell] = found
        return found

    def candidates(self, coords: Sequence[int]) -> tuple[ManifestRef, ...]:
        """The pieces whose box holds ``coords`` (the hot path: no numpy call once the cell
        was seen)."""
        cell = tuple(
            bisect.bisect_right(e, c) - 1 for e, c in zip(self._edge_lists, coords, strict=True)
        )
        found = self._found.get(cell)
        if found is None:
            found = self._found[cell] = tuple(self.pieces[i] for i in self._of_cell(cell))
        return found

    def touched(self, coords: npt.NDArray[Any]) -> list[int]:
        """Indices of the pieces whose boxes hold any of the ``(n, ndim)`` ``coords``."""
        if not len(coords) or not self.pieces:
            return []
        cells = np.stack(
            [np.searchsorted(e, coords[:, a], side="right") - 1 for a, e in enumerate(self._edges)],
            axis=1,
        )
        found: set[int] = set()
        for cell in np.unique(cells, axis=0).tolist():
            found.update(self._of_cell(tuple(cell)))
        return sorted(found)


def cut_regions(table: ChunkTable, sizes: Sequence[int]) -> list[ChunkTable]:
    """``table`` cut into one table per region of ``sizes`` chunks along each axis, in
    row-major order of regions; rows keep their order within a region (vectorised)."""
    if not len(table) or not table.ndim:
        return [table] if len(table) else []
    coords = table.coords()
    region = coords // np.asarray(sizes, dtype=np.int64)
    region_shape = tuple(int(x) + 1 for x in region.max(axis=0))
    keys = fold_keys(region, region_shape)
    if len(keys) < 2 or bool((keys[1:] == keys[0]).all()):
        return [table]
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    bounds = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    return [
        table.take(part)._shrunk()
        for part in np.split(order, bounds)  # each part ascending: stable sort of sorted rows
    ]


def region_ref(manifest_id: str, table: ChunkTable) -> RegionRef:
    """The ``RegionRef`` of a piece holding ``table`` (its row-major ends and its box)."""
    coords = table.coords()
    return RegionRef(
        manifest_id,
        table.first_coords(),
        table.last_coords(),
        len(table),
        tuple(int(x) for x in coords.min(axis=0)),
        tuple(int(x) for x in coords.max(axis=0)),
    )
