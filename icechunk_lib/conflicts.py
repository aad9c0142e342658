"""Conflict detection and solving for rebasing a change set onto a branch that moved.

``rebase_changes`` takes a change set, its base snapshot and the branch tip, reads the
transaction logs of the commits in between, lets a ``ConflictSolver`` patch the change set,
and returns the tip with the change set replayed over it. Nothing here touches a session.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import numpy as np

from icechunk_lib.changes import NodeChanges
from icechunk_lib.changeset import ChangeSet
from icechunk_lib.errors import RebaseFailedError, SessionError
from icechunk_lib.format.snapshot import ARRAY, GROUP, ExtraObject, NodeSnapshot, Snapshot
from icechunk_lib.format.txlog import TransactionLog
from icechunk_lib.lineage import Lineage, with_lineage
from icechunk_lib.objects import ObjectStore
from icechunk_lib.zarr_keys import Coords, parse_array_meta, read_zarr_json

__all__ = [
    "BasicConflictSolver",
    "Conflict",
    "ConflictDetector",
    "ConflictSolver",
    "ConflictType",
    "Resolution",
    "VersionSelection",
    "check_solver",
    "detect",
    "rebase_changes",
]


class ConflictType(enum.Enum):
    NewNodeConflictsWithExistingNode = 1
    ZarrMetadataDoubleUpdate = 2
    ZarrMetadataUpdateOfDeletedArray = 3
    ZarrMetadataUpdateOfDeletedGroup = 4
    ChunkDoubleUpdate = 5
    ChunksUpdatedInDeletedArray = 6
    DeleteOfUpdatedArray = 7
    DeleteOfUpdatedGroup = 8
    MoveOperationCannotBeRebased = 9
    BaseNotInHistory = 10
    NewNodeInInvalidGroup = 11
    ChunksUpdatedInUpdatedArray = 12


class VersionSelection(enum.Enum):
    """Which side wins a chunk written by both sessions."""

    Fail = 0
    UseOurs = 1
    UseTheirs = 2


@dataclass
class Conflict:
    """One conflict found while rebasing: its type, the node path and, for chunks, coords."""

    conflict_type: ConflictType
    path: str
    conflicted_chunks: list[list[int]] = field(default_factory=list)

    def __str__(self) -> str:
        extra = f" ({len(self.conflicted_chunks)} chunk(s))" if self.conflicted_chunks else ""
        return f"{self.conflict_type.name} at {self.path}{extra}"


class Resolution(NamedTuple):
    """What a ``ConflictSolver`` returns: the patched change set and what it left unresolved."""

    changes: ChangeSet
    unresolved: list[Conflict]


class ConflictSolver:
    """Decides, for each conflict, whether the rebase may proceed (and how).

    Subclass it and override ``resolve`` for a solver of your own.
    """

    def resolve(self, changes: ChangeSet, conflicts: list[Conflict]) -> Resolution:
        """Patch ``changes`` to resolve what it can; return it with the conflicts left.

        ``changes`` is the rebase's own copy: change it in place (``drop_chunk_changes``, ...)
        or return another change set. This base version resolves nothing.
        """
        return Resolution(changes, conflicts)


class ConflictDetector(ConflictSolver):
    """Fail on any conflict; rebase only when the changes are independent."""


class BasicConflictSolver(ConflictSolver):
    """Resolve chunk double-writes by picking a side; optionally let deletes win."""

    def __init__(
        self,
        *,
        on_chunk_conflict: VersionSelection = VersionSelection.UseOurs,
        fail_on_delete_of_updated_array: bool = False,
        fail_on_delete_of_updated_group: bool = False,
    ) -> None:
        self.on_chunk_conflict = on_chunk_conflict
        self.fail_on_delete_of_updated_array = fail_on_delete_of_updated_array
        self.fail_on_delete_of_updated_group = fail_on_delete_of_updated_group

    def resolve(self, changes: ChangeSet, conflicts: list[Conflict]) -> Resolution:
        """Keep our chunks or theirs (``on_chunk_conflict``); let our deletes win unless told
        to fail (overrides ``ConflictSolver.resolve``)."""
        left = []
        for c in conflicts:
            t = c.conflict_type
            if t is ConflictType.ChunkDoubleUpdate and self.on_chunk_conflict is not (
                VersionSelection.Fail
            ):
                if self.on_chunk_conflict is VersionSelection.UseTheirs:
                    changes.drop_chunk_changes(c.path, c.conflicted_chunks)
                continue
            if t is ConflictType.DeleteOfUpdatedArray and not self.fail_on_delete_of_updated_array:
                continue
            if t is ConflictType.DeleteOfUpdatedGroup and not self.fail_on_delete_of_updated_group:
                continue
            left.append(c)
        return Resolution(changes, left)


def _coords_of(log: TransactionLog) -> dict[str, set[Coords]]:
    out: dict[str, set[Coords]] = {}
    for ch in log.updated_chunks:
        if ch.ndim:
            rows = np.frombuffer(ch.coords, dtype="<i8").reshape(-1, ch.ndim).tolist()
            coords: set[Coords] = {tuple(r) for r in rows}
        else:
            coords = {()}
        out.setdefault(ch.node_id, set()).update(coords)
    return out


def detect(
    changes: ChangeSet, base_nodes: tuple[NodeSnapshot, ...], log: TransactionLog
) -> list[Conflict]:
    """Conflicts between ``changes`` (made over ``base_nodes``) and one commit that landed
    before them, described by its transaction log."""
    ours = changes.node_changes(base_nodes)
    conflicts: list[Conflict] = []
    their_new_paths = {n.path for n in (*log.new_groups, *log.new_arrays)}
    their_deleted = {n.id: n for n in (*log.deleted_groups, *log.deleted_arrays)}
    deleted_arrays = {n.id for n in log.deleted_arrays}
    their_updated = {n.id for n in (*log.updated_groups, *log.updated_arrays)}
    their_chunks = _coords_of(log)
    their_moved = {m[0] for m in log.moved}
    for n in ours.new:
        if n.path in their_new_paths:
            conflicts.append(Conflict(ConflictType.NewNodeConflictsWithExistingNode, n.path))
    for _, n in ours.updated:
        if n.id in their_updated:
            conflicts.append(Conflict(ConflictType.ZarrMetadataDoubleUpdate, n.path))
        elif n.id in their_deleted:
            kind = (
                ConflictType.ZarrMetadataUpdateOfDeletedArray
                if n.kind == ARRAY
                else ConflictType.ZarrMetadataUpdateOfDeletedGroup
            )
            conflicts.append(Conflict(kind, n.path))
    for n in ours.deleted:
        if n.id in their_updated or n.id in their_chunks:
            kind = (
                ConflictType.DeleteOfUpdatedArray
                if n.kind == ARRAY
                else ConflictType.DeleteOfUpdatedGroup
            )
            conflicts.append(Conflict(kind, n.path))
    for old, n in ours.moved:
        if n.id in their_updated or n.id in their_chunks or n.id in their_moved:
            conflicts.append(Conflict(ConflictType.MoveOperationCannotBeRebased, old.path))
    path_of = {n.id: n.path for n in changes.nodes.values()}
    for nid, chunks in changes.chunks.items():
        if nid not in path_of or not chunks:
            continue
        if nid in deleted_arrays:
            conflicts.append(Conflict(ConflictType.ChunksUpdatedInDeletedArray, path_of[nid]))
            continue
        theirs = their_chunks.get(nid)
        if theirs:
            both = sorted(list(c) for c in theirs.intersection(chunks))
            if both:
                conflicts.append(Conflict(ConflictType.ChunkDoubleUpdate, path_of[nid], both))
    return conflicts


async def rebase_changes(
    objects: ObjectStore,
    branch: str,
    base: Snapshot,
    tip_id: str,
    changes: ChangeSet,
    solver: ConflictSolver,
) -> tuple[Snapshot, ChangeSet]:
    """Replay ``changes`` (made over ``base``) on ``tip_id``, the tip of ``branch``.

    Checks them against the transaction log of every commit since ``base``, oldest first
    (across an expiration's gap, the logs its record names),
    letting ``solver`` patch them. Returns the tip snapshot and the change set over it (which
    may share chunk records with ``changes``, the caller's own copy).

    Raises:
        RebaseFailedError: conflicts the solver left, or ``base`` is not in the branch's
            history any more.
    """
    landed = await with_lineage(objects, partial(_landed_since, objects, base.id, tip_id))
    if landed is None:
        raise RebaseFailedError(tip_id, [Conflict(ConflictType.BaseNotInHistory, branch)])
    for snap_id in reversed(landed):
        log = await objects.transaction_log(snap_id)
        conflicts = detect(changes, base.nodes, log)
        if conflicts:
            changes, unresolved = solver.resolve(changes, conflicts)
            if unresolved:
                raise RebaseFailedError(snap_id, unresolved, branch=branch, expected_parent=base.id)
    tip = await objects.snapshot(tip_id)
    ours = changes.node_changes(base.nodes)
    tip_by_id = {n.id: n for n in tip.nodes}
    for n in ours.deleted:
        tip_by_id.pop(n.id, None)
    moved = {n.id for _, n in ours.moved}
    for _, n in [*ours.updated, *ours.moved]:
        current = tip_by_id.get(n.id)
        if current is not None:
            # Our path only where we moved the node: a metadata change keeps their rename.
            path = n.path if n.id in moved else current.path
            tip_by_id[n.id] = NodeSnapshot(n.id, path, n.kind, n.meta, current.manifests)
    for n in ours.new:
        tip_by_id[n.id] = n
    clashes = _tree_conflicts(list(tip_by_id.values()), ours, tip.nodes, changes.nodes)
    clashes += _layout_conflicts(changes, base.nodes, tip.nodes)
    if clashes:
        raise RebaseFailedError(tip_id, clashes, branch=branch, expected_parent=base.id)
    nodes = {n.path: n for n in tip_by_id.values()}
    extras: dict[str, ExtraObject] = {e.key: e for e in tip.extras}
    for key in changes.extra_changes:
        extra = changes.extras.get(key)
        if extra is not None:
            extras[key] = extra
        else:
            extras.pop(key, None)
    return tip, changes.with_tree(nodes, extras)


async def _landed_since(
    objects: ObjectStore, base_id: str, tip_id: str, lineage: Lineage
) -> list[str] | None:
    """The commits from ``base_id`` (exclusive) to ``tip_id``, newest first, or None if
    ``base_id`` is not in the tip's history.

    Across a gap an expiration left (a snapshot re-parented onto the root) the commits are
    the skipped ones its record names, so a base that was released is still found, and
    the rebase checks the logs of every commit that landed after it.
    """
    landed: list[str] = []
    cursor: str | None = tip_id
    while cursor is not None and cursor != base_id:
        landed.append(cursor)
        moved = lineage.override(cursor)
        if moved is None:
            cursor = (await objects.snapshot_header(cursor)).parent_id
        elif base_id in moved.skipped:
            landed.extend(moved.skipped[: moved.skipped.index(base_id)])
            return landed
        else:
            cursor = moved.parent_id
    return None if cursor is None else landed


def _tree_conflicts(
    merged: list[NodeSnapshot],
    ours: NodeChanges,
    tip_nodes: tuple[NodeSnapshot, ...],
    working: dict[str, NodeSnapshot],
) -> list[Conflict]:
    """What the replayed tree cannot hold: two nodes on one path (one would be dropped), or a
    node whose group one side deleted, moved or replaced (it would hang in no group)."""
    new_ids = {n.id for n in ours.new}
    moved_from = {n.id: old.path for old, n in ours.moved}
    by_path: dict[str, list[NodeSnapshot]] = {}
    for n in merged:
        by_path.setdefault(n.path, []).append(n)
    conflicts: list[Conflict] = []
    for path, same in by_path.items():
        if len(same) < 2:
            continue
        mover = next((n for n in same if n.id in moved_from), None)
        if mover is not None and not any(n.id in new_ids for n in same):
            conflicts.append(
                Conflict(ConflictType.MoveOperationCannotBeRebased, moved_from[mover.id])
            )
        else:
            conflicts.append(Conflict(ConflictType.NewNodeConflictsWithExistingNode, path))
    groups = {p for p, same in by_path.items() if any(n.kind == GROUP for n in same)}
    # Only groups that existed on either side count: a tree may hold nodes whose parent
    # was never written (a raw store write), and that is not the rebase's doing.
    known = {n.path for n in tip_nodes if n.kind == GROUP}
    known.update(p for p, n in working.items() if n.kind == GROUP)
    for n in merged:
        if n.path == "/":
            continue
        parent = n.path.rsplit("/", 1)[0] or "/"
        if parent not in groups and parent in known:
            conflicts.append(Conflict(ConflictType.NewNodeInInvalidGroup, n.path))
    return conflicts


def _layout_conflicts(
    changes: ChangeSet, base_nodes: tuple[NodeSnapshot, ...], tip_nodes: tuple[NodeSnapshot, ...]
) -> list[Conflict]:
    """Arrays we wrote chunks to whose chunk layout they changed (data type, codecs, chunk
    grid or key encoding), or whose grid they shrank below a chunk we wrote: our chunk bytes
    would be read with their metadata, or hidden until the array grew again."""
    before = {n.id: n for n in base_nodes}
    after = {n.id: n for n in tip_nodes}
    conflicts: list[Conflict] = []
    for nid, chunks in changes.chunks.items():
        old, new = before.get(nid), after.get(nid)
        if not chunks or old is None or new is None or old.meta == new.meta:
            continue
        if _layout(old.meta) != _layout(new.meta):
            conflicts.append(Conflict(ConflictType.ChunksUpdatedInUpdatedArray, new.path))
            continue
        info = parse_array_meta(new.meta)
        outside = [
            list(c)
            for c, ref in chunks.items()
            if ref is not None and (info is None or not info.contains(c))
        ]
        if outside:
            conflicts.append(
                Conflict(ConflictType.ChunksUpdatedInUpdatedArray, new.path, sorted(outside))
            )
    return conflicts


def _layout(meta: bytes) -> object:
    """An array's ``zarr.json`` without what leaves its chunk bytes' meaning alone."""
    read = read_zarr_json(meta)
    if read.problem:
        return meta
    return read.without("attributes", "shape", "dimension_names")


def check_solver(solver: object) -> None:
    """Refuse what is not a solver instance (a class, with the parentheses forgotten) before
    anything is written, not deep inside the rebase."""
    if not isinstance(solver, ConflictSolver):
        what = f"the class {solver.__name__}" if isinstance(solver, type) else repr(solver)
        raise SessionError(
            f"a conflict solver must be a ConflictSolver instance such as "
            f"BasicConflictSolver(), not {what}"
        )
