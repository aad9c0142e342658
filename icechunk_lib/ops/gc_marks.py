"""gc's mark phase: what every branch and tag reaches, as sorted id columns.

Marking goes through ``reachable.walk`` (so it follows whatever the walk follows) and keeps
snapshot, manifest and log ids as small sets and chunk ids as a sorted numpy ``S12`` column
(12 bytes per live chunk, no Python object per chunk). An incremental mark starts from the
last gc record's sets and reads only the snapshots and manifests it does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field

import numpy as np

from icechunk_lib.format.gc_record import GCRecord, IdColumn, column
from icechunk_lib.format.ids import OBJECT_ID_BYTES, decode_id
from icechunk_lib.format.manifest import NATIVE, ManifestFile
from icechunk_lib.format.snapshot import Snapshot
from icechunk_lib.ops.reachable import (
    KnownSnapshot,
    ManifestFound,
    RefFound,
    SnapshotFound,
    TransactionLogFound,
    walk,
)
from icechunk_lib.storage import Storage

__all__ = ["IdSet", "Marks", "mark"]

_S12 = f"S{OBJECT_ID_BYTES}"
_EMPTY: IdColumn = np.zeros(0, dtype=_S12)


def raw_ids(ids: Iterator[str] | list[str] | set[str]) -> IdColumn:
    """Printed ids as a sorted, unique ``S12`` column."""
    raw = b"".join(decode_id(i) for i in ids)
    return np.unique(np.frombuffer(raw, dtype=_S12))


def _split(ids: IdColumn) -> tuple[np.ndarray, np.ndarray]:
    """12-byte ids as (first 8 bytes, last 4 bytes) big-endian integers: sorting by the pair
    is sorting by the bytes."""
    parts = np.frombuffer(ids.tobytes(), dtype=[("hi", ">u8"), ("lo", ">u4")])
    return parts["hi"].astype(np.uint64), parts["lo"].astype(np.uint32)


class IdSet:
    """A set of raw 12-byte ids kept as one sorted column plus unsorted pending pieces.

    Adding a piece is an append; the pieces are merged (``np.union1d``) when they grow as
    big as the column, so building the set from n ids costs O(n log n) and holds about
    12 bytes per distinct id.
    """

    def __init__(self, base: IdColumn = _EMPTY) -> None:
        self._sorted = base
        self._pending: list[IdColumn] = []
        self._pending_len = 0
        self._index: tuple[np.ndarray, np.ndarray, int] | None = None

    def add(self, ids: IdColumn) -> None:
        if len(ids) and len(self._sorted):
            # Manifests of one array over many commits share most rows: keep only ids the
            # sorted column lacks, so pending pieces (and merges) follow what is new.
            ids = ids[~self._in_sorted(ids)]
        if len(ids):
            self._pending.append(ids)
            self._pending_len += len(ids)
            if self._pending_len > max(1 << 16, len(self._sorted)):
                self.column()

    def column(self) -> IdColumn:
        """The ids, sorted and unique."""
        if self._pending:
            merged = np.unique(np.concatenate(self._pending))
            self._sorted = np.union1d(self._sorted, merged) if len(self._sorted) else merged
            self._pending = []
            self._pending_len = 0
            self._index = None
        return self._sorted

    def contains(self, ids: IdColumn) -> np.ndarray:
        """A boolean mask: which of ``ids`` are in the set."""
        self.column()
        return self._in_sorted(ids)

    def _in_sorted(self, ids: IdColumn) -> np.ndarray:
        """Which of ``ids`` the sorted column holds: a search on the ids' first 8 bytes as
        integers (far faster than comparing 12-byte strings), then the last 4 bytes checked
        along the few neighbours that share those 8."""
        if not len(self._sorted) or not len(ids):
            return np.zeros(len(ids), dtype=bool)
        if self._index is None:
            hi, lo = _split(self._sorted)
            # The longest run of equal first halves: how far a match can sit from the first.
            starts = np.flatnonzero(np.r_[True, hi[1:] != hi[:-1], True])
            self._index = (hi, lo, int(np.diff(starts).max()))
        hi, lo, run = self._index
        q_hi, q_lo = _split(ids)
        at = np.searchsorted(hi, q_hi)
        found = np.zeros(len(ids), dtype=bool)
        for step in range(run):
            where = np.minimum(at + step, len(hi) - 1)
            found |= (hi[where] == q_hi) & (lo[where] == q_lo)
        return found

    def __len__(self) -> int:
        return len(self.column())


class _Printed:
    """A container of printed ids: a raw sorted column plus a live container of printed ids
    (not copied: what the mark adds is seen at once)."""

    def __init__(self, raw: IdColumn, extra: Container[str]) -> None:
        self._raw = raw
        self._extra = extra

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        if item in self._extra:
            return True
        if not len(self._raw):
            return False
        key = np.array([decode_id(item)], dtype=_S12)
        at = int(np.searchsorted(self._raw, key)[0])
        return at < len(self._raw) and self._raw[at] == key[0]


@dataclass
class Marks:
    """What the mark found reachable, plus what the last record already knew."""

    old_snapshots: IdColumn = field(default_factory=lambda: _EMPTY)
    old_parents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<i4"))
    old_manifests: IdColumn = field(default_factory=lambda: _EMPTY)
    old_logs: IdColumn = field(default_factory=lambda: _EMPTY)
    snapshots: dict[str, str | None] = field(default_factory=dict)
    """Snapshots read by this run, with their parents."""
    manifests: set[str] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    chunks: IdSet = field(default_factory=IdSet)
    known_reached: set[str] = field(default_factory=set)
    """Snapshots of the last record the walk reached (and did not read)."""
    tips: dict[str, str] = field(default_factory=dict)
    manifests_read: int = 0
    snapshots_read: int = 0

    @classmethod
    def from_record(cls, record: GCRecord, path: str) -> Marks:
        return cls(
            old_snapshots=column(record.snapshots, "snapshots", path),
            old_parents=np.frombuffer(record.parents, dtype="<i4"),
            old_manifests=column(record.manifests, "manifests", path),
            old_logs=column(record.transaction_logs, "transaction_logs", path),
            chunks=IdSet(column(record.chunks, "chunks", path)),
        )

    def known_snapshots(self) -> _Printed:
        return _Printed(self.old_snapshots, self.snapshots)

    def known_manifests(self) -> _Printed:
        return _Printed(self.old_manifests, self.manifests)

    def has_snapshot(self, snapshot_id: str) -> bool:
        return snapshot_id in self.known_snapshots()

    def all_old_reachable(self) -> bool:
        """Whether every snapshot of the last record is an ancestor of one the walk reached
        (so nothing the last run kept was released since)."""
        n = len(self.old_snapshots)
        if not n:
            return True
        seen = np.zeros(n, dtype=bool)
        known = raw_ids(self.known_reached) if self.known_reached else _EMPTY
        at = np.minimum(np.searchsorted(self.old_snapshots, known), n - 1)
        stack = at[self.old_snapshots[at] == known].tolist()
        parents = self.old_parents.tolist()
        count = 0
        while stack:
            i = stack.pop()
            if seen[i]:
                continue
            seen[i] = True
            count += 1
            if parents[i] >= 0:
                stack.append(parents[i])
        return count == n

    # --- columns for the next record -----------------------------------------------------

    def snapshot_columns(self) -> tuple[IdColumn, np.ndarray]:
        """Every marked snapshot (sorted) and the index of each one's parent (-1: none)."""
        old_parent_raw = np.where(
            self.old_parents >= 0,
            self.old_snapshots[np.maximum(self.old_parents, 0)]
            if len(self.old_parents)
            else _EMPTY,
            np.zeros(1, dtype=_S12)[0],
        ).astype(_S12)
        new_ids = list(self.snapshots)
        new_raw = np.frombuffer(b"".join(decode_id(i) for i in new_ids), dtype=_S12)
        new_parent_raw = np.frombuffer(
            b"".join(
                decode_id(p) if p else bytes(OBJECT_ID_BYTES) for p in self.snapshots.values()
            ),
            dtype=_S12,
        )
        ids = np.concatenate([self.old_snapshots, new_raw])
        parent_raw = np.concatenate([old_parent_raw, new_parent_raw])
        order = np.argsort(ids, kind="stable")
        ids, parent_raw = ids[order], parent_raw[order]
        keep = np.ones(len(ids), dtype=bool)
        keep[1:] = ids[1:] != ids[:-1]
        ids, parent_raw = ids[keep], parent_raw[keep]
        if not len(ids):
            return ids, np.zeros(0, dtype="<i4")
        at = np.searchsorted(ids, parent_raw)
        at_clipped = np.minimum(at, len(ids) - 1)
        found = (at < len(ids)) & (ids[at_clipped] == parent_raw)
        return ids, np.where(found, at_clipped, -1).astype("<i4")

    def manifest_column(self) -> IdColumn:
        return np.union1d(self.old_manifests, raw_ids(self.manifests)).astype(_S12)

    def log_column(self) -> IdColumn:
        return np.union1d(self.old_logs, raw_ids(self.logs)).astype(_S12)

    def live_snapshot(self) -> Callable[[str], bool]:
        known = self.known_snapshots()
        return known.__contains__

    def live_manifest(self) -> Callable[[str], bool]:
        return self.known_manifests().__contains__

    def live_log(self) -> Callable[[str], bool]:
        # A snapshot's own log is live with it; expiration may keep logs of others.
        logs = _Printed(self.old_logs, self.logs)
        snaps = self.known_snapshots()
        return lambda i: i in logs or i in snaps


def manifest_chunk_ids(manifest: ManifestFile) -> Iterator[IdColumn]:
    """The native chunk ids of each table of ``manifest`` as ``S12`` columns."""
    for table in manifest.tables.values():
        rows = table.kinds == NATIVE
        if rows.any():
            ids = np.ascontiguousarray(table.chunk_ids[rows], dtype=np.uint8)
            yield ids.view(_S12).reshape(-1)


def snapshot_chunk_ids(snap: Snapshot) -> IdColumn:
    """Chunk ids of extra (non-Zarr) keys the snapshot keeps in ``chunks/``."""
    raw = b"".join(e.chunk_id for e in snap.extras if len(e.chunk_id) == OBJECT_ID_BYTES)
    return np.frombuffer(raw, dtype=_S12)


async def mark(
    storage: Storage,
    marks: Marks,
    *,
    concurrency: int,
    tick: Callable[[], None],
) -> None:
    """Walk from every ref, skipping what ``marks`` already holds, and add what is found.

    Damage (a ref, snapshot or manifest that cannot be read) raises its error: a gc that
    cannot see what a damaged object names must not delete anything.
    """
    async for found in walk(
        storage,
        concurrency=concurrency,
        known_snapshots=marks.known_snapshots(),
        known_manifests=marks.known_manifests(),
    ):
        if isinstance(found, RefFound):
            if found.error is not None:
                raise found.error
            if found.snapshot_id is not None:
                marks.tips[found.label] = found.snapshot_id
        elif isinstance(found, KnownSnapshot):
            marks.known_reached.add(found.snapshot_id)
        elif isinstance(found, SnapshotFound):
            if found.snapshot is None:
                assert found.error is not None
                raise found.error
            snap = found.snapshot
            # The parent history gives it: a snapshot re-parented by an expiration record is
            # recorded with its new parent, so the next run's reachability check does not
            # walk into what the expiration released.
            marks.snapshots[snap.id] = found.parent_id
            marks.snapshots_read += 1
            marks.chunks.add(snapshot_chunk_ids(snap))
            tick()
        elif isinstance(found, TransactionLogFound):
            marks.logs.add(found.snapshot_id)  # kept even if damaged: nothing to gain
        elif isinstance(found, ManifestFound):
            if found.manifest is None:
                assert found.error is not None
                raise found.error
            marks.manifests.add(found.manifest_id)
            marks.manifests_read += 1
            for ids in manifest_chunk_ids(found.manifest):
                marks.chunks.add(ids)
            tick()
