"""Differences between snapshots, or between a change set and its base snapshot."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from icechunk_lib.changes import NodeChanges, node_changes
from icechunk_lib.changeset import ChangeSet
from icechunk_lib.format.manifest import INLINE, ChunkTable
from icechunk_lib.format.snapshot import ARRAY, NodeSnapshot, Snapshot
from icechunk_lib.objects import ObjectStore
from icechunk_lib.zarr_keys import parse_array_meta

__all__ = ["Diff", "diff_changes", "diff_snapshots"]


@dataclass
class Diff:
    """Groups and arrays added, deleted, updated or moved, and chunks written per array."""

    new_groups: set[str] = field(default_factory=set)
    new_arrays: set[str] = field(default_factory=set)
    deleted_groups: set[str] = field(default_factory=set)
    deleted_arrays: set[str] = field(default_factory=set)
    updated_groups: set[str] = field(default_factory=set)
    updated_arrays: set[str] = field(default_factory=set)
    updated_chunks: dict[str, list[list[int]]] = field(default_factory=dict)
    """Array path -> sorted coordinates of chunks written, replaced or deleted."""
    moved_nodes: list[tuple[str, str]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.new_groups
            or self.new_arrays
            or self.deleted_groups
            or self.deleted_arrays
            or self.updated_groups
            or self.updated_arrays
            or self.updated_chunks
            or self.moved_nodes
        )

    def __repr__(self) -> str:
        lines = []
        for label, paths in (
            ("Groups created", self.new_groups),
            ("Arrays created", self.new_arrays),
            ("Groups deleted", self.deleted_groups),
            ("Arrays deleted", self.deleted_arrays),
            ("Group definitions updated", self.updated_groups),
            ("Array definitions updated", self.updated_arrays),
        ):
            if paths:
                lines.append(f"{label}:")
                lines.extend(f"    {p}" for p in sorted(paths))
        if self.moved_nodes:
            lines.append("Nodes moved:")
            lines.extend(f"    {a} -> {b}" for a, b in self.moved_nodes)
        if self.updated_chunks:
            lines.append("Chunks updated:")
            for path, coords in sorted(self.updated_chunks.items()):
                lines.append(f"    {path}: {len(coords)} chunk(s)")
        return "\n".join(lines) if lines else "No changes"


def _from_node_changes(changes: NodeChanges) -> Diff:
    diff = Diff()
    for n in changes.new:
        (diff.new_arrays if n.kind == ARRAY else diff.new_groups).add(n.path)
    for n in changes.deleted:
        (diff.deleted_arrays if n.kind == ARRAY else diff.deleted_groups).add(n.path)
    for _, n in changes.updated:
        (diff.updated_arrays if n.kind == ARRAY else diff.updated_groups).add(n.path)
    diff.moved_nodes = sorted((old.path, new.path) for old, new in changes.moved)
    return diff


def diff_changes(changes: ChangeSet, base: Snapshot) -> Diff:
    """What ``changes`` (a session's uncommitted ones) change relative to ``base``."""
    diff = _from_node_changes(changes.node_changes(base.nodes))
    by_id = {n.id: n for n in changes.nodes.values() if n.kind == ARRAY}
    for nid, chunks in changes.chunks.items():
        node = by_id.get(nid)
        if node is not None and chunks:
            diff.updated_chunks[node.path] = sorted(list(c) for c in chunks)
    return diff


async def _table(objects: ObjectStore, node: NodeSnapshot) -> ChunkTable:
    """All chunk refs of ``node`` as one sorted table."""
    info = parse_array_meta(node.meta)
    ndim = info.ndim if info is not None else 0
    tables = await objects.node_tables(node)
    if len(tables) == 1:
        return tables[0]
    return ChunkTable.merge(node.id, ndim, tables, None, None)


def _changed_coords(a: ChunkTable, b: ChunkTable) -> list[list[int]]:
    """Coordinates present in only one table, or whose refs differ (vectorised)."""
    if not len(a):
        return sorted(b.coords().tolist())
    if not len(b):
        return sorted(a.coords().tolist())
    shape = tuple(max(x, y) for x, y in zip(a.key_shape, b.key_shape, strict=True))
    ka, kb = a.rekeyed(shape), b.rekeyed(shape)
    only = np.setxor1d(ka, kb, assume_unique=True)
    _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    differs = (
        (a.kinds[ia] != b.kinds[ib])
        | (a.lengths[ia] != b.lengths[ib])
        # Inline offsets index each manifest's own blob; their checksums compare content.
        | ((a.offsets[ia] != b.offsets[ib]) & (a.kinds[ia] != INLINE))
        | (a.checksums[ia] != b.checksums[ib])
        | (a.chunk_ids[ia] != b.chunk_ids[ib]).any(axis=1)
    )
    if a.locations or b.locations:
        la = np.array([*a.locations, ""], dtype=object)[a.location_index[ia]]
        lb = np.array([*b.locations, ""], dtype=object)[b.location_index[ib]]
        differs |= la != lb
    if a.location_etags or b.location_etags:  # a reference remade after its source changed
        ea = np.array([*(a.location_etags or [""] * len(a.locations)), ""], dtype=object)
        eb = np.array([*(b.location_etags or [""] * len(b.locations)), ""], dtype=object)
        differs |= ea[a.location_index[ia]] != eb[b.location_index[ib]]
    return _unravel(np.union1d(only, ka[ia[differs]]), shape)


def _unravel(keys: npt.NDArray[np.int64], shape: tuple[int, ...]) -> list[list[int]]:
    """Coordinates of row-major ``keys`` in ``shape``; a 0-d array's one chunk has none."""
    if not shape:  # np.unravel_index refuses a 0-d shape
        return [[] for _ in keys]
    if not len(keys):
        return []
    coords: list[list[int]] = np.stack(np.unravel_index(keys, shape), axis=1).tolist()
    return coords


async def diff_snapshots(objects: ObjectStore, old: Snapshot, new: Snapshot) -> Diff:
    """Everything that differs between two snapshots (any two, not only ancestor/descendant)."""
    diff = _from_node_changes(node_changes(old.nodes, {n.path: n for n in new.nodes}))
    old_by_id = {n.id: n for n in old.nodes}
    pairs = []
    for node in new.nodes:
        if node.kind != ARRAY:
            continue
        before = old_by_id.get(node.id)
        if before is not None and before.manifests == node.manifests:
            continue
        pairs.append((before, node))

    async def changed(before: NodeSnapshot | None, after: NodeSnapshot) -> list[list[int]]:
        tb = await _table(objects, after)
        ta = (
            await _table(objects, before)
            if before is not None
            else ChunkTable.empty(after.id, tb.ndim)
        )
        return _changed_coords(ta, tb)

    results = await asyncio.gather(*(changed(b, a) for b, a in pairs))
    for (_, node), coords in zip(pairs, results, strict=True):
        if coords:
            diff.updated_chunks[node.path] = coords
    return diff
