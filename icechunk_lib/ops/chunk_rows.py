"""Chunk ids as numpy columns, grouped by sort: counting chunks once without a Python object
per chunk.

A chunk id (12 bytes) is two integer columns; a virtual chunk's key (location hash, offset,
length) is three. ``ChunkRows`` gathers such keys with each row's length and manifest index,
one manifest at a time, and ``grouped`` sorts them into ``ChunkGroups``: one group per
distinct key, with reductions over the manifests each key appears in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["COMPACT_ROWS", "ChunkGroups", "ChunkRows", "group_order", "id_columns"]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def id_columns(ids: npt.NDArray[np.uint8]) -> tuple[U64, U64]:
    """A (n, 12) matrix of chunk ids as two integer columns (first 8 bytes, last 4), read
    in native byte order: only equality matters, so no byte swap."""
    ids = np.ascontiguousarray(ids, dtype=np.uint8)
    high = ids[:, :8].copy().view(np.uint64).reshape(-1)
    low = ids[:, 8:].copy().view(np.uint32).reshape(-1).astype(np.uint64)
    return high, low


_MIX = np.uint64(0x9E3779B97F4A7C15)


def group_order(keys: Sequence[U64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """An order that puts equal keys next to each other, and where each run starts.

    Sorting one mixed 64-bit column is several times faster than a lexicographic sort of
    two or three; the runs are then checked column by column, and a collision of the mix
    (distinct keys, equal mix) falls back to the exact lexicographic sort.
    """
    mixed = keys[0].copy()
    for column in keys[1:]:
        mixed *= _MIX
        mixed ^= mixed >> np.uint64(29)
        mixed += column
    order = np.argsort(mixed)
    ranked = mixed[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = ranked[1:] != ranked[:-1]
    for column in keys:
        ranked = column[order]
        if bool((~new[1:] & (ranked[1:] != ranked[:-1])).any()):
            order = np.lexsort(tuple(reversed(keys)))
            new[1:] = False
            for exact in keys:
                ranked = exact[order]
                new[1:] |= ranked[1:] != ranked[:-1]
            break
    return order, new


COMPACT_ROWS = 1 << 21
"""Rows gathered before a count that needs no manifest index folds them to distinct keys."""


@dataclass
class ChunkRows:
    """Rows of (key columns, length, manifest index) gathered one manifest at a time.

    Without ``by_manifest`` (a plain total) rows are folded to one per distinct key every
    ``COMPACT_ROWS`` rows, so memory follows the distinct chunks, as a mark set would.
    """

    width: int
    by_manifest: bool = True
    parts: list[tuple[tuple[U64, ...], U64, I64]] = field(default_factory=list)
    pending: int = 0

    def add(self, keys: tuple[U64, ...], lengths: U64, manifest: int) -> None:
        if not len(lengths):
            return
        self.parts.append((keys, lengths, np.full(len(lengths), manifest, dtype=np.int64)))
        self.pending += len(lengths)
        if not self.by_manifest and self.pending >= COMPACT_ROWS:
            self._compact()

    def _compact(self) -> None:
        keys, lengths, manifests = self._rows()
        order, new = group_order(keys)
        first = order[new]
        self.parts = [(tuple(k[first] for k in keys), lengths[first], manifests[first])]
        self.pending = len(first)

    def _rows(self) -> tuple[list[U64], U64, I64]:
        keys = [np.concatenate([p[0][i] for p in self.parts]) for i in range(self.width)]
        lengths = np.concatenate([p[1] for p in self.parts])
        manifests = np.concatenate([p[2] for p in self.parts])
        return keys, lengths, manifests

    def grouped(self) -> ChunkGroups:
        """The rows sorted by key, each distinct key a group."""
        if not self.parts:
            empty_u, empty_i = np.zeros(0, np.uint64), np.zeros(0, np.int64)
            return ChunkGroups(empty_i, empty_u, empty_i, 0)
        keys, lengths, manifests = self._rows()
        self.parts, self.pending = [], 0
        order, new = group_order(keys)
        starts = np.flatnonzero(new)
        return ChunkGroups(starts, lengths[order][starts], manifests[order], len(order))


@dataclass
class ChunkGroups:
    """Sorted rows grouped by chunk: where each group starts, its length, each row's manifest."""

    starts: I64
    lengths: U64
    manifests: I64
    rows: int

    def usage(self, picked: npt.NDArray[np.bool_]) -> tuple[int, int]:
        """(chunks, bytes) of the groups ``picked`` (a mask over groups)."""
        return int(picked.sum()), int(self.lengths[picked].sum(dtype=np.uint64))

    def any_row(self, row_mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """Per group: whether any of its rows is in ``row_mask``."""
        if not self.rows:
            return np.zeros(0, dtype=bool)
        found: npt.NDArray[np.bool_] = np.logical_or.reduceat(row_mask, self.starts)
        return found

    def single_owner(self, owner_of_manifest: I64) -> I64:
        """Per group: the one snapshot owning all its rows' manifests, or -1."""
        if not self.rows:
            return np.zeros(0, dtype=np.int64)
        owners = owner_of_manifest[self.manifests]
        low = np.minimum.reduceat(owners, self.starts)
        high = np.maximum.reduceat(owners, self.starts)
        return np.where(low == high, low, -1)
