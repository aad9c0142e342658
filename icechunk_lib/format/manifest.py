"""Columnar chunk manifests: numpy columns sorted by chunk key, looked up by binary search.

A ``ChunkTable`` holds the chunk references of one array (or one coordinate range of it).
Chunk coordinates are folded into one int64 key with ``key_shape`` (row-major), so sorting
by key is sorting by coordinates and a lookup is ``searchsorted``. A ``ManifestFile`` packs
tables of several arrays into one object; big arrays span several files. Their bytes on disk
are written and checked by ``manifest_codec``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = [
    "INLINE",
    "MAX_KEY",
    "NATIVE",
    "VIRTUAL",
    "ChunkRef",
    "ChunkTable",
    "ManifestFile",
    "fold_keys",
]

NATIVE = 1
"""Chunk bytes live in ``chunks/<id>`` of the repository."""
INLINE = 2
"""Chunk bytes are stored inside the manifest."""
VIRTUAL = 3
"""Chunk bytes are a byte range of an object elsewhere (``location``)."""

_ID = 12
_KIND = attrgetter("kind")
_OFFSET = attrgetter("offset")
_LENGTH = attrgetter("length")
_CHECKSUM = attrgetter("checksum")
_CHUNK_ID = attrgetter("chunk_id")
MAX_KEY = 2**63 - 1
"""The largest folded chunk key: a chunk grid must have fewer cells than this."""

Int64 = npt.NDArray[np.int64]


class ChunkRef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Where one chunk's bytes are: a native object, inline bytes, or a virtual byte range."""

    kind: int
    chunk_id: bytes = b""
    """Raw 12-byte id for native chunks."""
    offset: int = 0
    length: int = 0
    checksum: int = 0
    """Native and inline chunks: xxh3-64 of the chunk bytes. Virtual chunks: the
    ``last_updated_at`` checksum, whole seconds since the Unix epoch (0: none)."""
    data: bytes = b""
    """The bytes of an inline chunk."""
    location: str = ""
    """URL of the containing object for virtual chunks."""
    etag: str = ""
    """Virtual chunks: the containing object's ETag when the reference was made ("": none)."""


def fold_keys(coords: npt.NDArray[Any], key_shape: Sequence[int]) -> Int64:
    """Fold an (n, ndim) coordinate matrix into row-major int64 keys."""
    if not key_shape:
        return np.zeros(len(coords), dtype=np.int64)
    if math.prod(key_shape) > MAX_KEY:
        raise ValueError(f"chunk grid {tuple(key_shape)} is too large to index")
    keys: Int64 = np.ravel_multi_index(tuple(coords.T), tuple(key_shape)).astype(
        np.int64, copy=False
    )
    return keys


def _unfold(keys: Int64, key_shape: Sequence[int]) -> npt.NDArray[np.int64]:
    if not key_shape:
        return np.zeros((len(keys), 0), dtype=np.int64)
    return np.stack(np.unravel_index(keys, tuple(key_shape)), axis=1).astype(np.int64)


@dataclass(eq=False)
class ChunkTable:
    """The chunk references of one array (or one coordinate range of one), as numpy columns."""

    node_id: str
    key_shape: tuple[int, ...]
    keys: Int64
    kinds: npt.NDArray[np.uint8]
    chunk_ids: npt.NDArray[np.uint8]  # (n, 12)
    offsets: npt.NDArray[np.uint64]
    lengths: npt.NDArray[np.uint64]
    checksums: npt.NDArray[np.uint64]
    inline_data: bytes
    location_index: npt.NDArray[np.int32]
    locations: list[str]
    """Distinct (location, etag) pairs of the virtual rows, indexed by ``location_index``."""
    location_etags: list[str] = field(default_factory=list)
    """The ETag of each entry of ``locations`` ("": none); empty when no entry has one."""
    # Lookups bisect a memoryview of the key column: unlike ``searchsorted`` it never
    # releases the GIL, which under zarr's codec threads costs a wait for every chunk read.
    _key_view: memoryview | None = field(default=None, repr=False)
    _id_view: memoryview | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def ndim(self) -> int:
        return len(self.key_shape)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def empty(cls, node_id: str, ndim: int) -> ChunkTable:
        return cls.from_refs(node_id, np.zeros((0, ndim), dtype=np.int64), [])

    @classmethod
    def from_refs(
        cls, node_id: str, coords: npt.NDArray[Any], refs: Sequence[ChunkRef]
    ) -> ChunkTable:
        """Build a sorted table from coordinates (n, ndim) and their refs."""
        n = len(refs)
        # Each column is one C-level pass (map + attrgetter): no Python frame per chunk and no
        # allocation (building a tuple per ref and one record array costs more).
        kinds = np.fromiter(map(_KIND, refs), dtype=np.uint8, count=n)
        blob = b"".join(map(_CHUNK_ID, refs))
        if len(blob) != n * _ID:  # not all native: pad the others' empty ids
            blob = b"".join(r.chunk_id if r.kind == NATIVE else bytes(_ID) for r in refs)
        return cls.from_columns(
            node_id,
            coords,
            kinds=kinds,
            ids=np.frombuffer(blob, dtype=np.uint8).reshape(n, _ID),
            offsets=np.fromiter(map(_OFFSET, refs), dtype=np.uint64, count=n),
            lengths=np.fromiter(map(_LENGTH, refs), dtype=np.uint64, count=n),
            checksums=np.fromiter(map(_CHECKSUM, refs), dtype=np.uint64, count=n),
            others={i: refs[i] for i in np.flatnonzero(kinds != NATIVE).tolist()},
        )

    @classmethod
    def from_columns(
        cls,
        node_id: str,
        coords: npt.NDArray[Any],
        *,
        kinds: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.uint8],
        offsets: npt.NDArray[np.uint64],
        lengths: npt.NDArray[np.uint64],
        checksums: npt.NDArray[np.uint64],
        others: dict[int, ChunkRef],
    ) -> ChunkTable:
        """Build a sorted table from unsorted columns; ``others`` holds the full refs of the
        inline and virtual rows (their bytes and locations). ``offsets`` may be modified."""
        n = len(kinds)
        coords = np.asarray(coords, dtype=np.int64)
        if coords.ndim != 2 or len(coords) != n:
            raise ValueError(f"expected an ({n}, ndim) coordinate matrix, got {coords.shape}")
        key_shape = tuple(int(x) + 1 for x in coords.max(axis=0)) if n else (1,) * coords.shape[1]
        keys = fold_keys(coords, key_shape)
        # Inline chunks point into one blob through offset/length.
        inline_parts: list[bytes] = []
        locations: list[str] = []
        etags: list[str] = []
        loc_lookup: dict[tuple[str, str], int] = {}
        loc_index = np.full(n, -1, dtype=np.int32)
        pos = 0
        for i in sorted(others):
            ref = others[i]
            if ref.kind == INLINE:
                inline_parts.append(ref.data)
                offsets[i] = pos
                lengths[i] = len(ref.data)
                pos += len(ref.data)
            elif ref.kind == VIRTUAL:
                pair = (ref.location, ref.etag)
                idx = loc_lookup.get(pair)
                if idx is None:
                    idx = loc_lookup[pair] = len(locations)
                    locations.append(ref.location)
                    etags.append(ref.etag)
                loc_index[i] = idx
        table = cls(
            node_id=node_id,
            key_shape=key_shape,
            keys=keys,
            kinds=kinds,
            chunk_ids=ids,
            offsets=offsets,
            lengths=lengths,
            checksums=checksums,
            inline_data=b"".join(inline_parts),
            location_index=loc_index,
            locations=locations,
            location_etags=etags if any(etags) else [],
        )
        if n > 1 and not bool((keys[1:] > keys[:-1]).all()):
            return table.take(np.argsort(keys, kind="stable"))
        # Already in key order (chunks written in order, the usual case): no reordered copy.
        return table

    def take(self, index: npt.NDArray[np.intp]) -> ChunkTable:
        """Rows ``index`` in that order, with the inline blob compacted to what they use."""
        kinds = self.kinds[index]
        offsets = self.offsets[index].copy()
        lengths = self.lengths[index]
        blob = self.inline_data
        inline_rows = np.flatnonzero(kinds == INLINE)
        if len(inline_rows):
            starts = offsets[inline_rows].astype(np.int64)
            lens = lengths[inline_rows].astype(np.int64)
            new_starts = np.zeros(len(lens), dtype=np.int64)
            np.cumsum(lens[:-1], out=new_starts[1:])
            total = int(lens.sum())
            gather = np.repeat(starts - new_starts, lens) + np.arange(total, dtype=np.int64)
            blob = np.frombuffer(self.inline_data, dtype=np.uint8)[gather].tobytes()
            offsets[inline_rows] = new_starts.astype(np.uint64)
        else:
            blob = b""
        location_index, locations, etags = self._used_locations(self.location_index[index])
        return ChunkTable(
            node_id=self.node_id,
            key_shape=self.key_shape,
            keys=self.keys[index],
            kinds=kinds,
            chunk_ids=self.chunk_ids[index],
            offsets=offsets,
            lengths=lengths,
            checksums=self.checksums[index],
            inline_data=blob,
            location_index=location_index,
            locations=locations,
            location_etags=etags,
        )

    def _used_locations(
        self, index: npt.NDArray[np.int32]
    ) -> tuple[npt.NDArray[np.int32], list[str], list[str]]:
        """``index`` (rows' location indices) and the locations and ETags, keeping only the
        entries a row names: a merge appends the changes' locations to the base's, so
        without this every location a chunk ever had would stay in its manifest."""
        locations, etags = self.locations, self.location_etags
        if not locations:
            return index, locations, etags
        named = index >= 0
        used = np.bincount(index[named], minlength=len(locations)) > 0
        if used.all():
            return index, locations, etags
        keep = np.flatnonzero(used)
        remap = np.full(len(locations), -1, dtype=np.int32)
        remap[keep] = np.arange(len(keep), dtype=np.int32)
        index = np.where(named, remap[np.maximum(index, 0)], -1).astype(np.int32)
        picked = keep.tolist()
        kept_etags = [etags[i] for i in picked] if etags else []
        return index, [locations[i] for i in picked], kept_etags if any(kept_etags) else []

    def coords(self) -> npt.NDArray[np.int64]:
        """The (n, ndim) coordinates of every row, in key order."""
        return _unfold(self.keys, self.key_shape)

    def rekeyed(self, key_shape: tuple[int, ...]) -> Int64:
        """This table's keys folded with another (larger or equal) ``key_shape``."""
        if key_shape == self.key_shape:
            return self.keys
        return fold_keys(self.coords(), key_shape)

    # --- lookup --------------------------------------------------------------------------------

    def find(self, coords: Sequence[int]) -> int:
        """Row index of the chunk at ``coords``, or -1."""
        key = 0
        for c, n in zip(coords, self.key_shape, strict=True):
            if c >= n or c < 0:
                return -1
            key = key * n + c
        view = self._key_view
        if view is None:
            view = self._key_view = np.ascontiguousarray(self.keys, dtype=np.int64).data
        i = bisect.bisect_left(view, key)
        if i < len(view) and view[i] == key:
            return i
        return -1

    def ref(self, i: int) -> ChunkRef:
        """The ``ChunkRef`` of row ``i``."""
        # ``.item`` turns one numpy element into a Python int with the least overhead.
        kind = self.kinds.item(i)
        if kind == NATIVE:
            ids = self._id_view
            if ids is None:
                flat = np.ascontiguousarray(self.chunk_ids, dtype=np.uint8).reshape(-1)
                ids = self._id_view = flat.data
            return ChunkRef(
                NATIVE,
                ids[i * _ID : i * _ID + _ID].tobytes(),
                self.offsets.item(i),
                self.lengths.item(i),
                self.checksums.item(i),
            )
        if kind == INLINE:
            start = self.offsets.item(i)
            length = self.lengths.item(i)
            return ChunkRef(
                INLINE,
                length=length,
                checksum=self.checksums.item(i),
                data=self.inline_data[start : start + length],
            )
        at = self.location_index.item(i)
        return ChunkRef(
            VIRTUAL,
            offset=self.offsets.item(i),
            length=self.lengths.item(i),
            checksum=self.checksums.item(i),
            location=self.locations[at],
            etag=self.location_etags[at] if self.location_etags else "",
        )

    def location_etag(self, at: int) -> str:
        """The ETag of ``locations[at]`` ("": none)."""
        return self.location_etags[at] if self.location_etags else ""

    # --- bulk operations ---------------------------------------------------------------------

    @staticmethod
    def merge(
        node_id: str,
        ndim: int,
        bases: Sequence[ChunkTable],
        changes: ChunkTable | None,
        deleted: npt.NDArray[Any] | None,
    ) -> ChunkTable:
        """Apply ``changes`` (new or replaced refs) and ``deleted`` coordinates to ``bases``.

        All work is vectorised: no Python loop runs per chunk.
        """
        nonempty = [t for t in bases if len(t)]
        nothing_deleted = deleted is None or not len(deleted)
        if not nonempty and changes is not None and len(changes) and nothing_deleted:
            return changes._shrunk()  # a new array: nothing to merge with, no copy
        shapes = [t.key_shape for t in nonempty]
        if changes is not None and len(changes):
            shapes.append(changes.key_shape)
        if deleted is not None and len(deleted):
            shapes.append(tuple(int(x) + 1 for x in deleted.max(axis=0)))
        if not shapes:
            return ChunkTable.empty(node_id, ndim)
        key_shape = tuple(int(x) for x in np.max(np.array(shapes, dtype=np.int64), axis=0))
        parts = [t for t in bases if len(t)]
        if changes is not None and len(changes):
            parts.append(changes)
        if not parts:  # only deletions of chunks that were never committed
            return ChunkTable.empty(node_id, ndim)
        keys = np.concatenate([t.rekeyed(key_shape) for t in parts])
        drop_keys: list[Int64] = []
        if changes is not None and len(changes):
            drop_keys.append(keys[len(keys) - len(changes) :])
        if deleted is not None and len(deleted):
            drop_keys.append(fold_keys(np.asarray(deleted, dtype=np.int64), key_shape))
        n_base = len(keys) - (len(changes) if changes is not None else 0)
        keep = np.ones(len(keys), dtype=bool)
        if drop_keys and n_base:
            # Membership by binary search in the sorted drop keys: a few numpy calls, where
            # np.isin costs several times more on the small merges of everyday commits.
            drop = np.unique(np.concatenate(drop_keys))
            base_keys = keys[:n_base]
            at = np.minimum(np.searchsorted(drop, base_keys), len(drop) - 1)
            keep[:n_base] = drop[at] != base_keys
        # Concatenate columns (and inline blobs, shifting their offsets).
        blob_parts: list[bytes] = []
        offsets_parts = []
        loc_parts = []
        locations: list[str] = []
        etags: list[str] = []
        blob_pos = 0
        for t in parts:
            off = t.offsets.copy()
            if t.inline_data:
                inline = t.kinds == INLINE
                off[inline] += np.uint64(blob_pos)
                blob_parts.append(t.inline_data)
                blob_pos += len(t.inline_data)
            offsets_parts.append(off)
            li = t.location_index
            if t.locations:
                li = np.where(li >= 0, li + len(locations), li).astype(np.int32)
                locations.extend(t.locations)
                etags.extend(t.location_etags or [""] * len(t.locations))
            loc_parts.append(li)
        combined = ChunkTable(
            node_id=node_id,
            key_shape=key_shape,
            keys=keys,
            kinds=np.concatenate([t.kinds for t in parts]),
            chunk_ids=np.concatenate([t.chunk_ids for t in parts]),
            offsets=np.concatenate(offsets_parts),
            lengths=np.concatenate([t.lengths for t in parts]),
            checksums=np.concatenate([t.checksums for t in parts]),
            inline_data=b"".join(blob_parts),
            location_index=np.concatenate(loc_parts),
            locations=locations,
            location_etags=etags if any(etags) else [],
        )
        rows = np.flatnonzero(keep)
        order = rows[np.argsort(keys[rows], kind="stable")]
        result = combined.take(order)
        return result._shrunk()

    def _shrunk(self) -> ChunkTable:
        """Same rows with the tightest ``key_shape`` (so manifests stay small and ranges exact)."""
        if not len(self):
            return ChunkTable.empty(self.node_id, self.ndim)
        coords = self.coords()
        tight = tuple(int(x) + 1 for x in coords.max(axis=0))
        if tight == self.key_shape:
            return self
        self.keys = fold_keys(coords, tight)
        self.key_shape = tight
        return self

    def split(self, max_rows: int) -> list[ChunkTable]:
        """Cut into consecutive key ranges of at most ``max_rows`` rows each."""
        n = len(self)
        if n <= max_rows:
            return [self]
        return [
            self.take(np.arange(s, min(s + max_rows, n)))._shrunk() for s in range(0, n, max_rows)
        ]

    def first_coords(self) -> tuple[int, ...]:
        return tuple(int(x) for x in np.unravel_index(int(self.keys[0]), self.key_shape))

    def last_coords(self) -> tuple[int, ...]:
        return tuple(int(x) for x in np.unravel_index(int(self.keys[-1]), self.key_shape))

    def nbytes(self) -> int:
        """Approximate in-memory size, for cache accounting."""
        return int(
            self.keys.nbytes
            + self.kinds.nbytes
            + self.chunk_ids.nbytes
            + self.offsets.nbytes
            + self.lengths.nbytes
            + self.checksums.nbytes
            + len(self.inline_data)
            + self.location_index.nbytes
        )


@dataclass(eq=False)
class ManifestFile:
    """One manifest object: the tables of one or more arrays, keyed by node id."""

    id: str
    tables: dict[str, ChunkTable]

    def nbytes(self) -> int:
        return sum(t.nbytes() for t in self.tables.values())

    def num_refs(self) -> int:
        return sum(len(t) for t in self.tables.values())
