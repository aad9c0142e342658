"""The commit protocol: new manifests, then snapshot and transaction log, then one ref swap.

Nothing written before the compare-and-swap of the branch ref is reachable from any ref, so a
crash at any point leaves the repository at its previous commit (leftovers are garbage).
``write_commit`` takes a change set and its base snapshot, writes steps 1 and 2 and returns
the new snapshot id; the session makes the swap (step 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from icechunk_lib.changeset import ChangeSet
from icechunk_lib.chunk_changes import Columns
from icechunk_lib.errors import NoChangesToCommitError, SessionError
from icechunk_lib.format import new_object_id, new_snapshot_id
from icechunk_lib.format.manifest import ChunkTable, ManifestFile, fold_keys
from icechunk_lib.format.pieces import region_ref
from icechunk_lib.format.snapshot import (
    ANCESTRY_SUMMARY_LENGTH,
    ARRAY,
    ExtraObject,
    ManifestFileInfo,
    ManifestRef,
    NodeSnapshot,
    Snapshot,
)
from icechunk_lib.format.txlog import NodeChange, TransactionLog, UpdatedChunks
from icechunk_lib.objects import ObjectStore
from icechunk_lib.refs import now_us
from icechunk_lib.regions import rebuild_regions, region_sizes
from icechunk_lib.zarr_keys import Coords, grid_shrinks, parse_array_meta

__all__ = [
    "changes_to_columns",
    "check_commit_info",
    "committed_outside",
    "rebuild_array",
    "write_commit",
]

_PIECES_IN_FLIGHT = 2
"""Manifest pieces of existing arrays a commit rewrites at once (bounds its memory)."""


def changes_to_columns(
    node_id: str, cols: Columns
) -> tuple[ChunkTable | None, np.ndarray[Any, Any] | None]:
    """Split one array's changes into a table of writes and the coordinates of deletes."""
    if not cols.deleted.any():
        return cols.table(node_id), None
    deleted = cols.coords[cols.deleted]
    keep = np.flatnonzero(~cols.deleted)
    return (cols.select(keep).table(node_id) if len(keep) else None), deleted


async def rebuild_array(
    objects: ObjectStore,
    node: NodeSnapshot,
    ndim: int,
    cols: Columns,
    max_refs: int,
    *,
    limit: asyncio.Semaphore,
    written: dict[str, ManifestFileInfo],
) -> tuple[list[ManifestRef], list[ChunkTable]]:
    """New manifest pieces for one array: only pieces the changes touch are rewritten.

    Every change belongs to the piece whose range starts at or before it (the first piece
    also takes anything before it), and each touched piece is merged with its own changes
    only, so rewritten pieces never overlap the ranges of the pieces kept as they were.
    Large rewritten pieces are written here, at most ``limit`` at a time, and recorded in
    ``written``. Returns the ``ManifestRef`` s to keep (untouched and already written pieces)
    and the new tables still to pack and write.
    """
    all_coords = cols.coords
    writes, deleted = changes_to_columns(node.id, cols)
    pieces = list(node.manifests)
    if not pieces:
        table = ChunkTable.merge(node.id, ndim, [], writes, deleted)
        return [], table.split(max_refs) if len(table) else []
    # Row-major bounds are not componentwise: a piece's first can exceed its last in a
    # trailing dimension, so the grid must cover both.
    extent = np.max(
        np.array(
            [[c + 1 for c in p.last] for p in pieces]
            + [[c + 1 for c in p.first] for p in pieces]
            + ([list(all_coords.max(axis=0) + 1)] if len(all_coords) else []),
            dtype=np.int64,
        ),
        axis=0,
    )
    shape = tuple(int(x) for x in extent)
    firsts = fold_keys(np.array([p.first for p in pieces], dtype=np.int64), shape)

    def owners(coords: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        found = np.searchsorted(firsts, fold_keys(coords, shape), side="right") - 1
        return np.clip(found, 0, None)

    write_owner = owners(writes.coords()) if writes is not None else np.zeros(0, np.int64)
    delete_owner = owners(deleted) if deleted is not None else np.zeros(0, np.int64)
    touched = sorted(set(write_owner.tolist()) | set(delete_owner.tolist()))
    kept = [p for i, p in enumerate(pieces) if i not in set(touched)]
    new_tables: list[ChunkTable] = []

    async def rewrite(i: int) -> None:
        # One piece at a time per slot of ``limit``: a change touching every piece of a huge
        # array holds a couple of pieces in flight, not the whole array.
        async with limit:
            manifest = await objects.manifest(pieces[i].manifest_id)
            base = manifest.tables.get(node.id)
            mine = writes.take(np.flatnonzero(write_owner == i)) if writes is not None else None
            gone = deleted[delete_owner == i] if deleted is not None else None
            bases = [base] if base is not None else []
            merged = ChunkTable.merge(node.id, ndim, bases, mine, gone)
            del manifest, base, bases
            if not len(merged):
                return
            if len(merged) < max_refs // 4:  # small: packed with other arrays' tables
                new_tables.append(merged)
                return
            for part in merged.split(max_refs):
                file = ManifestFile(new_object_id(), {node.id: part})
                size = await objects.write_manifest(file)
                written[file.id] = ManifestFileInfo(file.id, size, len(part))
                kept.append(
                    ManifestRef(file.id, part.first_coords(), part.last_coords(), len(part))
                )

    await asyncio.gather(*(rewrite(i) for i in touched))
    return kept, new_tables


async def _laid_out(
    objects: ObjectStore,
    node: NodeSnapshot,
    ndim: int,
    sizes: tuple[int, ...] | None,
    writes: ChunkTable | None,
    deleted: np.ndarray[Any, Any] | None,
    everything: bool,
    limit: asyncio.Semaphore,
    written: dict[str, ManifestFileInfo],
    regions: set[int],
    one_array: asyncio.Semaphore | None = None,
) -> tuple[list[ManifestRef], list[ChunkTable]]:
    """``rebuild_regions`` for one array, writing its large new pieces at once (as
    ``rebuild_array`` does); returns the pieces to keep and the small tables still to pack,
    recording in ``regions`` which of them are cut by region."""
    max_refs = objects.config.manifest.max_refs_per_manifest
    async with one_array if one_array is not None else contextlib.nullcontext():
        kept, tables = await rebuild_regions(
            objects,
            node,
            ndim,
            sizes,
            writes,
            deleted,
            limit=limit,
            max_refs=max_refs,
            everything=everything,
        )
        small: list[ChunkTable] = []
        for table in tables:
            # Small tables are packed with other arrays' ones; a layout rewrite writes the
            # region pieces at once (a file holds one piece per array anyway), so it holds
            # one array's references at a time, not every array's.
            if len(table) < max_refs // 4 and not (everything and sizes is not None):
                small.append(table)
                if sizes is not None:
                    regions.add(id(table))
                continue
            file = ManifestFile(new_object_id(), {node.id: table})
            size = await objects.write_manifest(file)
            written[file.id] = ManifestFileInfo(file.id, size, len(table))
            if sizes is not None:
                kept.append(region_ref(file.id, table))
            else:
                kept.append(
                    ManifestRef(file.id, table.first_coords(), table.last_coords(), len(table))
                )
        return kept, small


def _pack(tables: Sequence[ChunkTable], max_refs: int) -> list[ManifestFile]:
    """Group tables into manifest files of about ``max_refs`` refs (small arrays share)."""
    files: list[ManifestFile] = []
    current: dict[str, ChunkTable] = {}
    count = 0
    for table in tables:
        if current and (count + len(table) > max_refs or table.node_id in current):
            files.append(ManifestFile(new_object_id(), current))
            current, count = {}, 0
        current[table.node_id] = table
        count += len(table)
    if current:
        files.append(ManifestFile(new_object_id(), current))
    return files


_INT_RANGE = (-(2**63), 2**64 - 1)
"""The integers msgpack stores."""


def check_commit_info(message: object, metadata: object) -> None:
    """Refuse a message or metadata the snapshot and reflog could not give back as given.

    Checked before anything is written: the encoder takes values the decoder refuses (a
    ``None`` message, an ``int`` key), and such a commit would leave a branch whose tip
    cannot be read. Metadata is JSON-like (str keys; None, bool, int, float, str, list,
    dict), plus bytes and timezone-aware datetimes.
    """
    if type(message) is not str:
        raise SessionError(f"the commit message must be a string, not {type(message).__name__}")
    if not _is_text(message):
        raise SessionError("the commit message is not valid Unicode text (lone surrogate)")
    if type(metadata) is not dict:
        raise SessionError(f"commit metadata must be a dict, not {type(metadata).__name__}")
    try:
        problem = _json_problem(metadata, "metadata")
    except RecursionError:
        problem = "metadata is nested too deeply"
    if problem:
        raise SessionError(f"commit metadata must be JSON-like values: {problem}")


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_problem(value: object, where: str) -> str:
    """Why ``value`` is not JSON-like (empty if it is). Exact types: the encoder refuses
    subclasses (numpy scalars, ``str`` subclasses)."""
    if value is None or type(value) is bool or type(value) is float or type(value) is bytes:
        return ""
    if type(value) is dt.datetime:
        # Stored as an instant: a naive one would come back as text.
        return "" if value.utcoffset() is not None else f"{where} is a naive datetime (no tzinfo)"
    if type(value) is int:
        lo, hi = _INT_RANGE
        return "" if lo <= value <= hi else f"{where} is an integer out of range {lo}..{hi}"
    if type(value) is str:
        return "" if _is_text(value) else f"{where} is not valid Unicode text"
    if type(value) is list or type(value) is tuple:
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem:
                return problem
        return ""
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str or not _is_text(key):
                return f"{where} has a key that is not text: {key!r}"
            problem = _json_problem(item, f"{where}[{key!r}]")
            if problem:
                return problem
        return ""
    return f"{where} is a {type(value).__name__}"


async def committed_outside(objects: ObjectStore, node: NodeSnapshot, grid: Coords) -> list[Coords]:
    """Coordinates of the committed chunks of array ``node`` beyond ``grid``."""
    limit = np.array(grid, dtype=np.int64)
    outside: list[Coords] = []
    for mref in node.manifests:
        table = (await objects.manifest(mref.manifest_id)).tables.get(node.id)
        if table is not None and len(table):
            matrix = table.coords()
            outside.extend(map(tuple, matrix[(matrix >= limit).any(axis=1)].tolist()))
    return outside


async def _drop_outside_grid(
    objects: ObjectStore, old: NodeSnapshot, node: NodeSnapshot, changes: ChangeSet
) -> None:
    """Delete the chunks an array's shrunk grid cannot index, from its manifests and from the
    changes (``changes`` is the commit's own copy).

    The session drops them when it shrinks the grid, but only those it could see: chunks
    another writer added beyond the new grid reach the tree by a rebase or a merge, and kept,
    they would reappear if the array grew again (zarr's resize deletes them).
    """
    if node.kind != ARRAY:
        return
    info = parse_array_meta(node.meta)
    if not grid_shrinks(parse_array_meta(old.meta), info):
        return
    assert info is not None and info.grid is not None
    changes.delete_outside(node.id, info.grid, await committed_outside(objects, node, info.grid))


def _encode_coords(coords: np.ndarray[Any, Any]) -> bytes:
    return np.ascontiguousarray(coords, dtype="<i8").tobytes()


async def write_commit(
    objects: ObjectStore,
    base: Snapshot,
    changes: ChangeSet,
    message: str,
    metadata: dict[str, Any],
    *,
    allow_empty: bool = False,
    relayout: bool = False,
) -> str:
    """Write ``changes`` over ``base`` as manifests, a snapshot and its transaction log.

    Returns the new snapshot's id. Nothing is reachable until the caller swaps the branch ref
    from ``base`` to it. ``changes`` must be the commit's own copy: it is patched (chunks
    beyond a grid that shrank are deleted). ``relayout`` also rewrites every other array's
    manifests in the config's current layout, with the same chunk references.

    Raises:
        NoChangesToCommitError: nothing changed and not ``allow_empty``.
        SessionError: the message or metadata cannot be stored as given.
    """
    config = objects.config
    max_refs = config.manifest.max_refs_per_manifest
    nodes = changes.nodes
    node_diff = changes.node_changes(base.nodes)
    extra_changes = changes.extra_changes
    if not (node_diff or changes.live_chunks() or extra_changes or allow_empty):
        raise NoChangesToCommitError()
    check_commit_info(message, metadata)
    for old, updated in node_diff.updated:
        await _drop_outside_grid(objects, old, updated, changes)
    chunk_changes = changes.live_chunks()

    # 1. New manifests for arrays whose chunks changed.
    live = {n.id: n for n in nodes.values() if n.kind == ARRAY}
    rebuilds = []
    regions: set[int] = set()  # ids of the new tables that are pieces cut by region
    limit = asyncio.Semaphore(_PIECES_IN_FLIGHT)
    written: dict[str, ManifestFileInfo] = {}
    # Coordinates of each changed array, computed once for the manifests and the log.
    coords_of: dict[str, tuple[int, np.ndarray[Any, Any]]] = {}
    for nid, ch in chunk_changes.items():
        node = live.get(nid)
        info = parse_array_meta(node.meta) if node is not None else None
        if node is None or info is None or ch.ndim != info.ndim:
            continue
        cols = ch.columns(copy=False)  # ``ch`` is the commit's own capture
        coords_of[nid] = (info.ndim, cols.coords)
        sizes = region_sizes(config, node, info, rewrite=relayout)
        if sizes is None and not relayout:
            rebuild = rebuild_array(
                objects, node, info.ndim, cols, max_refs, limit=limit, written=written
            )
        else:
            writes, deleted = changes_to_columns(node.id, cols)
            rebuild = _laid_out(
                objects, node, info.ndim, sizes, writes, deleted, relayout, limit, written, regions
            )
        rebuilds.append((node, rebuild))
    if relayout:
        one_array = asyncio.Semaphore(1)  # a layout rewrite holds one array's refs at a time
        for node in live.values():
            info = parse_array_meta(node.meta)
            if node.id in coords_of or not node.manifests or info is None:
                continue
            sizes = region_sizes(config, node, info, rewrite=True)
            rebuild = _laid_out(
                objects,
                node,
                info.ndim,
                sizes,
                None,
                None,
                True,
                limit,
                written,
                regions,
                one_array,
            )
            rebuilds.append((node, rebuild))
    results = await asyncio.gather(*(coro for _, coro in rebuilds))
    new_tables = [t for _, tables in results for t in tables]
    files = _pack(new_tables, max_refs)
    file_sizes = await asyncio.gather(*(objects.write_manifest(f) for f in files))
    file_of = {id(t): f.id for f in files for t in f.tables.values()}
    infos = {
        f.id: ManifestFileInfo(f.id, s, f.num_refs())
        for f, s in zip(files, file_sizes, strict=True)
    }
    infos.update(written)
    new_node_manifests: dict[str, tuple[ManifestRef, ...]] = {}
    for (node, _), (kept, tables) in zip(rebuilds, results, strict=True):
        refs = kept + [
            region_ref(file_of[id(t)], t)
            if id(t) in regions
            else ManifestRef(file_of[id(t)], t.first_coords(), t.last_coords(), len(t))
            for t in tables
        ]
        refs.sort(key=lambda r: r.first)
        new_node_manifests[node.id] = tuple(refs)

    # 2. The snapshot.
    out_nodes = []
    for path in sorted(nodes):
        node = nodes[path]
        mrefs = new_node_manifests.get(node.id)
        if mrefs is not None:
            node = NodeSnapshot(node.id, node.path, node.kind, node.meta, mrefs)
        out_nodes.append(node)
    base_infos = {m.id: m for m in base.manifest_files}
    used = []
    for mid in sorted({m.manifest_id for n in out_nodes for m in n.manifests}):
        found = infos.get(mid) or base_infos.get(mid)
        used.append(found if found is not None else ManifestFileInfo(mid, 0, 0))
    extras: list[ExtraObject] = sorted(changes.extras.values(), key=lambda e: e.key)
    snapshot = Snapshot(
        id=new_snapshot_id(),
        parent_id=base.id,
        written_at=max(now_us(), base.written_at + 1),
        message=message,
        metadata=metadata,
        ancestry=((base.summary(), *base.ancestry))[:ANCESTRY_SUMMARY_LENGTH],
        nodes=tuple(out_nodes),
        manifest_files=tuple(used),
        extras=tuple(extras),
    )
    log = TransactionLog(
        snapshot_id=snapshot.id,
        new_groups=tuple(NodeChange(n.id, n.path) for n in node_diff.new if n.kind != ARRAY),
        new_arrays=tuple(NodeChange(n.id, n.path) for n in node_diff.new if n.kind == ARRAY),
        deleted_groups=tuple(
            NodeChange(n.id, n.path) for n in node_diff.deleted if n.kind != ARRAY
        ),
        deleted_arrays=tuple(
            NodeChange(n.id, n.path) for n in node_diff.deleted if n.kind == ARRAY
        ),
        updated_groups=tuple(
            NodeChange(n.id, n.path) for _, n in node_diff.updated if n.kind != ARRAY
        ),
        updated_arrays=tuple(
            NodeChange(n.id, n.path) for _, n in node_diff.updated if n.kind == ARRAY
        ),
        moved=tuple((n.id, old.path, n.path) for old, n in node_diff.moved),
        updated_chunks=tuple(
            UpdatedChunks(nid, live[nid].path, ndim, _encode_coords(coords))
            for nid, (ndim, coords) in coords_of.items()
        ),
        extra_keys=tuple(sorted(extra_changes)),
    )
    # Snapshot and log; the caller's branch compare-and-swap is the commit point.
    await asyncio.gather(objects.write_snapshot(snapshot), objects.write_transaction_log(log))
    return snapshot.id
