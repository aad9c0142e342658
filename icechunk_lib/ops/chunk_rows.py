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

__all__ = ["COMPACT_ROWS", "ChunkGroups", "ChunkRows", "group_order", "id_columns", "mix"]

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


def mix(keys: Sequence[U64]) -> U64:
    """One 64-bit column from key columns: equal keys give equal values, and distinct keys
    almost never do (``group_order`` checks)."""
    mixed = keys[0].copy()
    for column in keys[1:]:
        mixed *= _MIX
        mixed ^= mixed >> np.uint64(29)
        mixed += column
    return mixed


def group_order(
    keys: Sequence[U64], mixed: U64 | None = None
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """An order that puts equal keys next to each other, and where each run starts.

    Sorting one mixed 64-bit column (``mixed``, else ``mix(keys)``) is several times faster
    than a lexicographic sort of two or three, and the sort is stable (timsort), so rows that
    arrive as sorted runs (one per manifest) are merged rather than sorted again. The runs are
    then checked column by column; a collision of the mix (distinct keys, equal mix) falls
    back to the exact lexicographic sort.
    """
    if mixed is None:
        mixed = mix(keys)
    order = np.argsort(mixed, kind="stable")
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
class _Part:
    """Rows of one manifest (or of a fold), sorted by their mixed key."""

    keys: tuple[U64, ...]
    lengths: U64
    manifests: I64
    mixed: U64


@dataclass
class ChunkRows:
    """Rows of (key columns, length, manifest index) gathered one manifest at a time.

    Each manifest's rows are sorted as they arrive (while the next reads are in flight), so
    grouping at the end merges sorted runs. Without ``by_manifest`` (a plain total) rows
    are folded to one per distinct key every ``COMPACT_ROWS`` rows, so memory follows the
    distinct chunks, as a mark set would.
    """

    width: int
    by_manifest: bool = True
    parts: list[_Part] = field(default_factory=list)
    pending: int = 0

    def add(self, keys: tuple[U64, ...], lengths: U64, manifest: int) -> None:
        if not len(lengths):
            return
        mixed = mix(keys)
        order = np.argsort(mixed)
        self.parts.append(
            _Part(
                tuple(k[order] for k in keys),
                lengths[order],
                np.full(len(lengths), manifest, dtype=np.int64),
                mixed[order],
            )
        )
        self.pending += len(lengths)
        if not self.by_manifest and self.pending >= COMPACT_ROWS:
            self._compact()

    def _compact(self) -> None:
        rows = self._rows()
        order, new = group_order(rows.keys, rows.mixed)
        first = order[new]  # ascending in the mix: one sorted run
        self.parts = [
            _Part(
                tuple(k[first] for k in rows.keys),
                rows.lengths[first],
                rows.manifests[first],
                rows.mixed[first],
            )
        ]
        self.pending = len(first)

    def _rows(self) -> _Part:
        parts = self.parts
        return _Part(
            tuple(np.concatenate([p.keys[i] for p in parts]) for i in range(self.width)),
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.manifests for p in parts]),
            np.concatenate([p.mixed for p in parts]),
        )

    def grouped(self) -> ChunkGroups:
        """The rows sorted by key, each distinct key a group."""
        if not self.parts:
            empty_u, empty_i = np.zeros(0, np.uint64), np.zeros(0, np.int64)
            return ChunkGroups(empty_i, empty_u, empty_i, 0)
        rows = self._rows()
        self.parts, self.pending = [], 0
        order, new = group_order(rows.keys, rows.mixed)
        starts = np.flatnonzero(new)
        return ChunkGroups(starts, rows.lengths[order][starts], rows.manifests[order], len(order))


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
