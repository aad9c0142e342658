"""Storage statistics: the bytes a repository's chunks take, each chunk counted once.

``chunk_storage_stats`` is Icechunk's total (native, inline and virtual bytes of everything a
branch or tag reaches). ``storage_report`` adds the views its users ask for: sizes per array
at a revision, per snapshot (with the bytes only that snapshot holds: what expiring it would
let gc free), per branch and tag, and the metadata's own bytes.

Both stream manifests from ``reachable.walk`` one at a time and keep, per manifest row, only
numpy columns: the chunk id (two integers), its length and the manifest's index. Counting a
chunk once, or finding the chunks one snapshot alone reaches, is then a sort and a few
reductions over those columns, never a Python object per chunk. The exclusive bytes use the
manifests' sharing: a manifest named by several snapshots makes all its chunks shared at
once, so only chunks whose every manifest has a single owner can be exclusive.

What counts once: a native chunk by its id, a virtual chunk by (location, offset, length), and
inline bytes once per manifest that stores them (each such manifest holds its own copy). A
virtual range counts once whatever ETag or ``last_updated_at`` its refs carry, as in
Icechunk: a ref remade after its source changed names the same bytes of the same object.
These totals (and ``only_here`` and the branch view) count each range once; the snapshot
and array views add up what each array's manifests hold, as a reader of it sees them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from icechunk_lib.errors import SnapshotNotFoundError
from icechunk_lib.format import content_checksum
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL, ChunkTable, ManifestFile
from icechunk_lib.format.snapshot import ARRAY, Snapshot
from icechunk_lib.objects import MANIFESTS, SNAPSHOTS, TRANSACTIONS
from icechunk_lib.ops.chunk_rows import ChunkGroups, ChunkRows, id_columns
from icechunk_lib.ops.reachable import (
    DEFAULT_CONCURRENCY,
    KnownSnapshot,
    ManifestFound,
    RefFound,
    SnapshotFound,
    walk,
)
from icechunk_lib.storage import Storage

__all__ = [
    "BY",
    "ArrayUsage",
    "ChunkStorageStats",
    "ChunkUsage",
    "MetadataUsage",
    "ProgressCallback",
    "RefUsage",
    "SnapshotUsage",
    "StorageReport",
    "StorageView",
    "chunk_storage_stats",
    "storage_report",
]

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: phases ``snapshots`` and ``manifests`` (``total`` 0: how
much is reachable is known only at the end), then ``refs`` (histories summed, of ``total``)."""

Ancestry = Callable[[str], AsyncIterator[str]]
"""The ids of a snapshot and its ancestors, newest first (the repository's ``ancestry``)."""

StorageView = Literal["snapshot", "branch", "array"]
"""The views of ``storage_report``."""
BY: tuple[StorageView, ...] = ("snapshot", "branch", "array")

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ChunkStorageStats:
    """Bytes of the chunks reachable from any branch or tag, by kind (Icechunk 1.1's type)."""

    native_bytes: int = 0
    """Bytes of chunks stored in the repository's ``chunks/``."""
    virtual_bytes: int = 0
    """Bytes of virtual chunks: byte ranges of objects elsewhere, not stored here."""
    inlined_bytes: int = 0
    """Bytes of chunks stored inside manifests."""

    @property
    def non_virtual_bytes(self) -> int:
        """Native plus inline bytes: about what the chunks take in this repository."""
        return self.native_bytes + self.inlined_bytes

    @property
    def total_bytes(self) -> int:
        """Native, inline and virtual bytes: all the data the repository refers to."""
        return self.native_bytes + self.inlined_bytes + self.virtual_bytes

    def __add__(self, other: ChunkStorageStats) -> ChunkStorageStats:
        if not isinstance(other, ChunkStorageStats):
            return NotImplemented
        return ChunkStorageStats(
            self.native_bytes + other.native_bytes,
            self.virtual_bytes + other.virtual_bytes,
            self.inlined_bytes + other.inlined_bytes,
        )


@dataclass(frozen=True, slots=True)
class ChunkUsage:
    """A number of chunks and their bytes by kind; the unit of every view of the report."""

    chunks: int = 0
    native_bytes: int = 0
    inlined_bytes: int = 0
    virtual_bytes: int = 0
    virtual_chunks: int = 0
    """How many of ``chunks`` are virtual (byte ranges of objects outside the repository)."""

    @property
    def non_virtual_bytes(self) -> int:
        """Native plus inline bytes: what these chunks take in the repository."""
        return self.native_bytes + self.inlined_bytes

    @property
    def total_bytes(self) -> int:
        return self.native_bytes + self.inlined_bytes + self.virtual_bytes

    def stats(self) -> ChunkStorageStats:
        """The same bytes as Icechunk's ``ChunkStorageStats``."""
        return ChunkStorageStats(self.native_bytes, self.virtual_bytes, self.inlined_bytes)

    def __add__(self, other: ChunkUsage) -> ChunkUsage:
        if not isinstance(other, ChunkUsage):
            return NotImplemented
        return ChunkUsage(
            self.chunks + other.chunks,
            self.native_bytes + other.native_bytes,
            self.inlined_bytes + other.inlined_bytes,
            self.virtual_bytes + other.virtual_bytes,
            self.virtual_chunks + other.virtual_chunks,
        )


@dataclass(frozen=True, slots=True)
class ArrayUsage:
    """The chunks one array holds at the report's revision."""

    path: str
    usage: ChunkUsage


@dataclass(frozen=True, slots=True)
class SnapshotUsage:
    """One reachable snapshot: what a reader of it sees, and what only it holds."""

    snapshot_id: str
    written_at: dt.datetime
    message: str
    refs: tuple[str, ...]
    """The branches and tags at this snapshot (``"branch main"``, ``"tag v1"``)."""
    usage: ChunkUsage
    """The chunks of its arrays (each once)."""
    only_here: ChunkUsage
    """Chunks no other reachable snapshot's manifests hold, plus the inline bytes of the
    manifests no other snapshot names: what gc frees once this snapshot alone is gone."""


@dataclass(frozen=True, slots=True)
class RefUsage:
    """A branch or tag: every chunk its history holds, shared chunks counted once."""

    kind: str
    """``"branch"`` or ``"tag"``."""
    name: str
    snapshot_id: str
    snapshots: int
    """Snapshots in its history."""
    usage: ChunkUsage


@dataclass(frozen=True, slots=True)
class MetadataUsage:
    """The repository's own objects reachable from a ref: count and bytes of each kind."""

    snapshots: int = 0
    snapshot_bytes: int = 0
    manifests: int = 0
    manifest_bytes: int = 0
    transaction_logs: int = 0
    transaction_log_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.snapshot_bytes + self.manifest_bytes + self.transaction_log_bytes


@dataclass(frozen=True, slots=True)
class StorageReport:
    """What ``Repository.storage_stats`` found: the totals and the rows of one view."""

    by: str
    """The view: ``"snapshot"``, ``"branch"`` or ``"array"``."""
    snapshot_id: str | None
    """The revision of the ``array`` view, or the snapshot whose history the ``snapshot``
    view lists (None: every reachable snapshot)."""
    total: ChunkUsage
    """Every chunk reachable from a branch or tag, each once."""
    metadata: MetadataUsage
    arrays: tuple[ArrayUsage, ...] = ()
    snapshots: tuple[SnapshotUsage, ...] = ()
    """Newest first."""
    refs: tuple[RefUsage, ...] = ()
    """Branches, then tags, by name."""


def _table_usage(table: ChunkTable) -> tuple[ChunkUsage, int, int]:
    """A table's rows summed by kind, with its inline bytes and inline rows."""
    kinds, lengths = table.kinds, table.lengths
    native = int(lengths[kinds == NATIVE].sum(dtype=np.uint64))
    inline_rows = kinds == INLINE
    inlined = int(lengths[inline_rows].sum(dtype=np.uint64))
    virtual_rows = kinds == VIRTUAL
    virtual = int(lengths[virtual_rows].sum(dtype=np.uint64))
    usage = ChunkUsage(len(table), native, inlined, virtual, int(virtual_rows.sum()))
    return usage, inlined, int(inline_rows.sum())


class _Collector:
    """The state of one statistics run: per-manifest columns and per-snapshot pieces."""

    def __init__(self, *, keep: str | None, by_manifest: bool = True) -> None:
        self.keep = keep
        """The snapshot whose array paths are kept (the ``array`` view's revision)."""
        self.native = ChunkRows(2, by_manifest)
        self.virtual = ChunkRows(3, by_manifest)
        self.manifest_index: dict[str, int] = {}
        self.inline_bytes: list[int] = []
        self.inline_rows: list[int] = []
        self.pieces: dict[tuple[str, str], ChunkUsage] = {}
        """(manifest id, node id) -> what that table of that manifest holds."""
        self.snapshot_ids: list[str] = []
        self.snapshot_meta: list[tuple[int, str]] = []
        self.snapshot_pieces: list[tuple[tuple[str, str], ...]] = []
        self.snapshot_manifests: list[tuple[str, ...]] = []
        self.paths: dict[str, str] = {}
        self.refs: list[RefFound] = []

    def snapshot(self, snap: Snapshot) -> None:
        self.snapshot_ids.append(snap.id)
        self.snapshot_meta.append((snap.written_at, snap.message))
        pieces = tuple((m.manifest_id, n.id) for n in snap.nodes for m in n.manifests)
        self.snapshot_pieces.append(pieces)
        self.snapshot_manifests.append(tuple(sorted({mid for mid, _ in pieces})))
        if snap.id == self.keep:
            self.paths = {n.id: n.path for n in snap.nodes if n.kind == ARRAY}

    def manifest(self, manifest: ManifestFile) -> None:
        index = self.manifest_index.setdefault(manifest.id, len(self.manifest_index))
        inline_bytes = inline_rows = 0
        for node_id, table in manifest.tables.items():
            usage, table_inline, table_inline_rows = _table_usage(table)
            self.pieces[(manifest.id, node_id)] = usage
            inline_bytes += table_inline
            inline_rows += table_inline_rows
            native = table.kinds == NATIVE
            if native.any():
                self.native.add(id_columns(table.chunk_ids[native]), table.lengths[native], index)
            virtual = np.flatnonzero(table.kinds == VIRTUAL)
            if len(virtual):
                hashes = np.array(
                    [content_checksum(loc.encode()) for loc in table.locations], dtype=np.uint64
                )
                keys = (
                    hashes[table.location_index[virtual]],
                    table.offsets[virtual].astype(np.uint64),
                    table.lengths[virtual].astype(np.uint64),
                )
                self.virtual.add(keys, table.lengths[virtual].astype(np.uint64), index)
        self.inline_bytes.append(inline_bytes)
        self.inline_rows.append(inline_rows)


async def _collect(
    storage: Storage,
    collector: _Collector,
    concurrency: int,
    progress: ProgressCallback | None,
) -> None:
    """Walk everything reachable into ``collector``; damage raises the walk's error."""
    counts = {"snapshots": 0, "manifests": 0}
    async for found in walk(storage, concurrency=concurrency, transaction_logs=False):
        if isinstance(found, KnownSnapshot):  # the walk is given nothing known: never
            continue
        if found.error is not None:
            raise found.error
        if isinstance(found, RefFound):
            collector.refs.append(found)
            continue
        if isinstance(found, SnapshotFound):
            assert found.snapshot is not None
            collector.snapshot(found.snapshot)
            phase = "snapshots"
        elif isinstance(found, ManifestFound):
            assert found.manifest is not None
            collector.manifest(found.manifest)
            phase = "manifests"
        else:
            continue
        counts[phase] += 1
        if progress is not None:
            progress(phase, counts[phase], 0)


async def chunk_storage_stats(
    storage: Storage,
    *,
    max_concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
) -> ChunkStorageStats:
    """Bytes of every chunk reachable from a branch or tag, each chunk once, by kind; at
    most the smaller of ``max_concurrency`` and the walk's default reads in flight."""
    collector = _Collector(keep=None, by_manifest=False)
    await _collect(storage, collector, min(max_concurrency, DEFAULT_CONCURRENCY), progress)
    return _total(collector, collector.native.grouped(), collector.virtual.grouped()).stats()


def _total(collector: _Collector, native: ChunkGroups, virtual: ChunkGroups) -> ChunkUsage:
    everything_n = np.ones(len(native.starts), dtype=bool)
    everything_v = np.ones(len(virtual.starts), dtype=bool)
    n_chunks, n_bytes = native.usage(everything_n)
    v_chunks, v_bytes = virtual.usage(everything_v)
    return ChunkUsage(
        n_chunks + v_chunks + sum(collector.inline_rows),
        n_bytes,
        sum(collector.inline_bytes),
        v_bytes,
        v_chunks,
    )


async def storage_report(
    storage: Storage,
    ancestry: Ancestry,
    *,
    by: StorageView = "snapshot",
    snapshot_id: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
) -> StorageReport:
    """Totals plus one view (see ``StorageReport``); ``snapshot_id`` is the ``array`` view's
    revision (required there) or limits the ``snapshot`` view to its history."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, not {by!r}")
    if by == "array" and snapshot_id is None:
        raise ValueError("the array view needs a snapshot id")
    if by == "branch" and snapshot_id is not None:
        raise ValueError("the branch view covers every branch and tag: give no revision")
    collector = _Collector(keep=snapshot_id if by == "array" else None)
    await _collect(storage, collector, concurrency, progress)
    if snapshot_id is not None and snapshot_id not in collector.snapshot_ids:
        raise SnapshotNotFoundError(snapshot_id, "it is not reachable from any branch or tag")
    native, virtual = collector.native.grouped(), collector.virtual.grouped()
    total = _total(collector, native, virtual)
    metadata = await _metadata(storage, collector)
    if by == "array":
        return StorageReport(by, snapshot_id, total, metadata, arrays=_arrays(collector))
    if by == "snapshot":
        wanted = None
        if snapshot_id is not None:
            wanted = {s async for s in ancestry(snapshot_id)}
        rows = _snapshots(collector, native, virtual, wanted)
        return StorageReport(by, snapshot_id, total, metadata, snapshots=rows)
    refs = await _refs(collector, native, virtual, ancestry, progress)
    return StorageReport(by, None, total, metadata, refs=refs)


def _arrays(collector: _Collector) -> tuple[ArrayUsage, ...]:
    assert collector.keep is not None
    at = collector.snapshot_ids.index(collector.keep)
    sums: dict[str, ChunkUsage] = dict.fromkeys(collector.paths, ChunkUsage())
    for mid, node_id in collector.snapshot_pieces[at]:
        piece = collector.pieces.get((mid, node_id))
        if piece is not None and node_id in sums:
            sums[node_id] = sums[node_id] + piece
    return tuple(
        sorted((ArrayUsage(collector.paths[n], u) for n, u in sums.items()), key=lambda a: a.path)
    )


def _owners(collector: _Collector) -> I64:
    """Per manifest: the index of the one snapshot naming it, or -1 when several do."""
    owner = np.full(len(collector.manifest_index), -2, dtype=np.int64)
    for snap, manifests in enumerate(collector.snapshot_manifests):
        for mid in manifests:
            m = collector.manifest_index.get(mid)
            if m is not None:
                owner[m] = snap if owner[m] == -2 else -1
    return owner


def _snapshots(
    collector: _Collector, native: ChunkGroups, virtual: ChunkGroups, wanted: set[str] | None
) -> tuple[SnapshotUsage, ...]:
    owner = _owners(collector)
    n = len(collector.snapshot_ids)
    excl: list[list[int]] = []
    for groups in (native, virtual):
        single = groups.single_owner(owner)
        mine = single >= 0
        counts = np.bincount(single[mine], minlength=n)
        sizes = np.zeros(n, dtype=np.uint64)
        np.add.at(sizes, single[mine], groups.lengths[mine])  # exact, unlike float weights
        excl.append(counts.tolist())
        excl.append(sizes.tolist())
    inline_bytes = [0] * n
    inline_rows = [0] * n
    for m, snap in enumerate(owner.tolist()):
        if snap >= 0:
            inline_bytes[snap] += collector.inline_bytes[m]
            inline_rows[snap] += collector.inline_rows[m]
    labels: dict[str, list[str]] = {}
    for ref in collector.refs:
        if ref.snapshot_id is not None:
            labels.setdefault(ref.snapshot_id, []).append(ref.label)
    rows = []
    for i, sid in enumerate(collector.snapshot_ids):
        if wanted is not None and sid not in wanted:
            continue
        usage = ChunkUsage()
        for piece in collector.snapshot_pieces[i]:
            found = collector.pieces.get(piece)
            if found is not None:
                usage = usage + found
        only = ChunkUsage(
            excl[0][i] + excl[2][i] + inline_rows[i],
            excl[1][i],
            inline_bytes[i],
            excl[3][i],
            excl[2][i],
        )
        written_at, message = collector.snapshot_meta[i]
        when = dt.datetime.fromtimestamp(written_at / 1_000_000, dt.UTC)
        rows.append(SnapshotUsage(sid, when, message, tuple(labels.get(sid, ())), usage, only))
    rows.sort(key=lambda r: (r.written_at, r.snapshot_id), reverse=True)
    return tuple(rows)


async def _refs(
    collector: _Collector,
    native: ChunkGroups,
    virtual: ChunkGroups,
    ancestry: Ancestry,
    progress: ProgressCallback | None,
) -> tuple[RefUsage, ...]:
    index = {sid: i for i, sid in enumerate(collector.snapshot_ids)}
    done: dict[str, tuple[int, ChunkUsage]] = {}
    rows = []
    refs = [r for r in collector.refs if r.snapshot_id is not None]
    for number, ref in enumerate(refs, 1):
        tip = ref.snapshot_id
        assert tip is not None
        if tip not in done:
            history = [index[s] async for s in ancestry(tip) if s in index]
            done[tip] = (len(history), _history_usage(collector, native, virtual, history))
        count, usage = done[tip]
        rows.append(RefUsage(ref.kind, ref.name, tip, count, usage))
        if progress is not None:
            progress("refs", number, len(refs))
    return tuple(rows)


def _history_usage(
    collector: _Collector, native: ChunkGroups, virtual: ChunkGroups, history: Sequence[int]
) -> ChunkUsage:
    """Every chunk the manifests of the snapshots ``history`` name, each once."""
    named = np.zeros(len(collector.manifest_index), dtype=bool)
    for i in history:
        for mid in collector.snapshot_manifests[i]:
            m = collector.manifest_index.get(mid)
            if m is not None:
                named[m] = True
    n_chunks, n_bytes = native.usage(native.any_row(named[native.manifests]))
    v_chunks, v_bytes = virtual.usage(virtual.any_row(named[virtual.manifests]))
    picked = np.flatnonzero(named).tolist()
    inline_bytes = sum(collector.inline_bytes[m] for m in picked)
    inline_rows = sum(collector.inline_rows[m] for m in picked)
    return ChunkUsage(n_chunks + v_chunks + inline_rows, n_bytes, inline_bytes, v_bytes, v_chunks)


async def _metadata(storage: Storage, collector: _Collector) -> MetadataUsage:
    """Count and bytes of the reachable snapshots, manifests and logs, from three listings."""
    found: dict[str, tuple[int, int]] = {}
    for prefix, ids in (
        (SNAPSHOTS, set(collector.snapshot_ids)),
        (MANIFESTS, set(collector.manifest_index)),
        (TRANSACTIONS, set(collector.snapshot_ids)),
    ):
        count = size = 0
        async for info in storage.list(prefix):
            if info.key[len(prefix) :] in ids:
                count += 1
                size += info.size
        found[prefix] = (count, size)
    return MetadataUsage(*found[SNAPSHOTS], *found[MANIFESTS], *found[TRANSACTIONS])
