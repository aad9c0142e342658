"""``ChangeSet``: the uncommitted state of a session, as a type of its own.

A session is a base snapshot plus a change set. The change set holds the working node tree
(every node, path -> node, as the session sees it), the extra (non-Zarr) objects, the chunk
changes of each array (columnar ``ChunkChanges``, keyed by node id) and which extra keys
changed. What changed relative to the base (new, updated, deleted and moved nodes) is derived
by node id (``node_changes``): a node keeps its id, and so its chunks, through metadata
updates and moves.

It is plain data: no I/O and no lock (the session that owns one serialises access to it).
Commit, rebase, conflict solvers and diffs read a change set, or a ``copy``, and return data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from icechunk_lib.changes import NodeChanges, node_changes
from icechunk_lib.chunk_changes import ChunkChanges, VirtualRows
from icechunk_lib.errors import InvalidNameError, NodeNotFoundError
from icechunk_lib.format import new_node_id
from icechunk_lib.format.manifest import NATIVE, ChunkRef
from icechunk_lib.format.snapshot import ARRAY, GROUP, ExtraObject, NodeSnapshot, Snapshot
from icechunk_lib.objects import chunk_key
from icechunk_lib.zarr_keys import Coords, parse_array_meta

__all__ = ["ChangeSet", "Coords"]


def _array_above(nodes: Mapping[str, NodeSnapshot], path: str) -> str | None:
    """The array among the ancestors of ``path``, if any: only groups may have children (a
    node inside an array would take over part of its chunk keys and hide its data)."""
    i = path.find("/", 1)
    while i > 0:
        above = nodes.get(path[:i])
        if above is not None and above.kind == ARRAY:
            return above.path
        i = path.find("/", i + 1)
    return None


class ChangeSet:
    """The working node tree, extras and chunk changes of a session over its base snapshot.

    Read the public attributes; change them only through the methods, which keep the tree's
    rules (only groups have children) and the records consistent. Paths given to the methods
    are already validated node paths.
    """

    __slots__ = ("chunks", "dirty", "extra_changes", "extras", "nodes")

    def __init__(
        self,
        nodes: dict[str, NodeSnapshot],
        extras: dict[str, ExtraObject],
        chunks: dict[str, ChunkChanges] | None = None,
        extra_changes: set[str] | None = None,
        *,
        dirty: bool = False,
    ) -> None:
        self.nodes = nodes
        """The working tree, path -> node (the base's nodes until something changes)."""
        self.extras = extras
        """Every extra object of the working tree, key -> object."""
        self.chunks: dict[str, ChunkChanges] = {} if chunks is None else chunks
        """Node id -> that array's chunk changes (a record may be empty)."""
        self.extra_changes: set[str] = set() if extra_changes is None else extra_changes
        """Keys of extras written or deleted."""
        self.dirty = dirty
        """Whether anything was changed (a change undone by hand still counts)."""

    @classmethod
    def from_snapshot(cls, base: Snapshot) -> ChangeSet:
        """An empty change set over ``base``: its nodes and extras, nothing changed."""
        return cls({n.path: n for n in base.nodes}, {e.key: e for e in base.extras})

    # --- views -------------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """Whether nothing was changed since the base snapshot (see ``dirty``)."""
        return not self.dirty

    def node_changes(self, base_nodes: Iterable[NodeSnapshot]) -> NodeChanges:
        """New, deleted, updated and moved nodes relative to ``base_nodes``, by node id."""
        return node_changes(base_nodes, self.nodes)

    def live_chunks(self) -> dict[str, ChunkChanges]:
        """Node id -> chunk changes, only the records that hold a change."""
        return {nid: ch for nid, ch in self.chunks.items() if ch}

    def path_of(self, node_id: str) -> str | None:
        """The working path of the node with ``node_id`` (None: not in the tree)."""
        return next((p for p, n in self.nodes.items() if n.id == node_id), None)

    def chunk_keys(self) -> set[str]:
        """Storage keys of every chunk the changes refer to (native chunks, big extras)."""
        changed = (self.extras.get(k) for k in self.extra_changes)
        keys = {chunk_key(e.chunk_id) for e in changed if e is not None and e.chunk_id}
        for changes in self.chunks.values():
            cols = changes.columns(copy=False)
            keys.update(chunk_key(bytes(row)) for row in cols.ids[cols.kinds == NATIVE])
        return keys

    # --- nodes -------------------------------------------------------------------------------

    def put_node(self, path: str, meta: bytes) -> tuple[NodeSnapshot, NodeSnapshot | None]:
        """Create or update the node at ``path`` from its ``zarr.json``; (new, old) nodes.

        An array keeps its id (and chunks) through metadata updates of the same rank; a node
        that changes kind or rank is a new node, and the old one's chunk changes go.

        Raises:
            InvalidNameError: ``path`` is inside an array, or is a group with children that
                would become an array.
        """
        nodes = self.nodes
        info = parse_array_meta(meta)
        kind = ARRAY if info is not None else GROUP
        above = _array_above(nodes, path)
        if above is not None:
            raise InvalidNameError(
                "node", path, f"it is inside array {above}; only groups have children"
            )
        old = nodes.get(path)
        if kind == ARRAY and old is not None and old.kind == GROUP:
            below = path.rstrip("/") + "/"
            if any(p != path and p.startswith(below) for p in nodes):
                raise InvalidNameError(
                    "node", path, "it has children and only groups have children; delete them first"
                )
        old_info = parse_array_meta(old.meta) if old is not None and old.kind == ARRAY else None
        same_rank = kind == GROUP or (old_info is not None and old_info.ndim == info.ndim)  # type: ignore[union-attr]
        if old is not None and old.kind == kind and same_rank:
            node = NodeSnapshot(old.id, path, kind, bytes(meta), old.manifests)
        else:
            if old is not None:
                self.chunks.pop(old.id, None)
            node = NodeSnapshot(new_node_id(), path, kind, bytes(meta))
        nodes[path] = node
        self.dirty = True
        return node, old

    def delete_node(self, path: str) -> NodeSnapshot | None:
        """Delete the node at ``path`` (not its children) and its chunk changes."""
        node = self.nodes.pop(path, None)
        if node is not None:
            self.chunks.pop(node.id, None)
            self.dirty = True
        return node

    def delete_tree(self, path: str) -> int:
        """Delete the node at ``path`` and every node below it; returns how many."""
        prefix = "/" if path == "/" else path + "/"
        doomed = [p for p in self.nodes if p == path or p.startswith(prefix)]
        for p in doomed:
            self.delete_node(p)
        return len(doomed)

    def move(self, src: str, dst: str) -> None:
        """Rename the node at ``src``, with everything below it, to ``dst``; ids stay.

        Raises:
            NodeNotFoundError: nothing is at ``src``.
            InvalidNameError: ``src`` is the root, ``dst`` exists, is inside ``src`` or is
                inside an array.
        """
        nodes = self.nodes
        if src == "/":
            raise InvalidNameError("node", src, "the root group cannot be moved")
        if src not in nodes:
            raise NodeNotFoundError(src)
        if dst in nodes or dst.startswith(src + "/"):
            raise InvalidNameError("node", dst, "the destination exists or is inside the source")
        above = _array_above(nodes, dst)
        if above is not None:
            raise InvalidNameError(
                "node", dst, f"it is inside array {above}; only groups have children"
            )
        for p in [p for p in nodes if p == src or p.startswith(src + "/")]:
            node = nodes.pop(p)
            new_path = dst + p[len(src) :]
            nodes[new_path] = NodeSnapshot(node.id, new_path, node.kind, node.meta, node.manifests)
        self.dirty = True

    # --- chunks ------------------------------------------------------------------------------

    def chunk_record(self, node_id: str, ndim: int) -> ChunkChanges:
        """The chunk change record of an array, created on first use."""
        changes = self.chunks.get(node_id)
        if changes is None:
            changes = self.chunks[node_id] = ChunkChanges(ndim)
        return changes

    def put_native(
        self, node_id: str, coords: Coords, chunk_id: bytes, length: int, checksum: int
    ) -> None:
        """Record a native chunk written whole (the write hot path: no ``ChunkRef``)."""
        changes = self.chunks.get(node_id)
        if changes is None:
            changes = self.chunks[node_id] = ChunkChanges(len(coords))
        changes.put_native(coords, chunk_id, length, checksum)
        self.dirty = True

    def put_virtual(self, node_id: str, rows: VirtualRows) -> None:
        """Record many virtual chunks of an array at once, column-wise (see ``ChunkChanges``)."""
        if len(rows.pair_index):
            self.chunk_record(node_id, rows.coords.shape[1]).put_virtual(rows)
            self.dirty = True

    def set_chunk_ref(self, node_id: str, coords: Coords, ref: ChunkRef | None) -> None:
        """Record the chunk at ``coords`` as ``ref``; ``None`` deletes the chunk."""
        self.chunk_record(node_id, len(coords))[coords] = ref
        self.dirty = True

    def delete_outside(self, node_id: str, grid: Coords, committed: Iterable[Coords]) -> None:
        """Delete the chunks of an array beyond ``grid``: the ``committed`` ones given and any
        this change set wrote (a grid that shrank holds only chunks it can index)."""
        outside = list(committed)
        changes = self.chunks.get(node_id)
        if changes is not None:
            outside.extend(
                c for c in list(changes) if any(x >= n for x, n in zip(c, grid, strict=True))
            )
        if not outside:
            return
        if changes is None:
            changes = self.chunks[node_id] = ChunkChanges(len(grid))
        for coords in outside:
            changes[coords] = None
        self.dirty = True

    def drop_chunk_changes(self, path: str, coords: Iterable[Iterable[int]] | None = None) -> None:
        """Take back our changes of these chunks (all of them if ``coords`` is None) of the
        array at ``path``, as if never made: the base's, or another writer's, chunks show."""
        node = self.nodes.get(path)
        if node is None:
            return
        if coords is None:
            self.chunks.pop(node.id, None)
            return
        changes = self.chunks.get(node.id)
        if changes is not None:
            for c in coords:
                changes.pop(tuple(c), None)

    # --- extras ------------------------------------------------------------------------------

    def set_extra(self, extra: ExtraObject) -> None:
        """Write an extra object under its key."""
        self.extras[extra.key] = extra
        self.extra_changes.add(extra.key)
        self.dirty = True

    def delete_extra(self, key: str) -> bool:
        """Delete the extra object at ``key``; False if there is none."""
        if self.extras.pop(key, None) is None:
            return False
        self.extra_changes.add(key)
        self.dirty = True
        return True

    # --- whole change sets -------------------------------------------------------------------

    def copy(self) -> ChangeSet:
        """An independent copy (chunk records are copied column-wise; empty ones are left out)."""
        return ChangeSet(
            dict(self.nodes),
            dict(self.extras),
            {nid: ch.copy() for nid, ch in self.chunks.items() if ch},
            set(self.extra_changes),
            dirty=self.dirty,
        )

    def with_tree(
        self, nodes: dict[str, NodeSnapshot], extras: dict[str, ExtraObject]
    ) -> ChangeSet:
        """These chunk and extra changes over another working tree (a rebase's result).

        Shares the chunk records and the changed extra keys with this change set.
        """
        return ChangeSet(nodes, extras, self.chunks, self.extra_changes, dirty=self.dirty)

    def merge(self, other: ChangeSet, base_nodes: Iterable[NodeSnapshot]) -> None:
        """Fold the changes ``other`` made over the same base into this change set.

        Nodes follow their ids (another's delete, update or move applies to the node where
        it is now); chunk changes of one array combine, ``other`` winning a chunk both wrote.
        ``other`` must not be used afterwards: its chunk records may be adopted as they are.
        """
        nodes = self.nodes
        theirs = other.node_changes(base_nodes)
        for n in theirs.deleted:
            current = self.path_of(n.id)
            if current is not None:
                del nodes[current]
        for old, n in [*theirs.updated, *theirs.moved]:
            nodes.pop(old.path, None)
            nodes[n.path] = n
        for n in theirs.new:
            nodes[n.path] = n
        for nid, changes in other.chunks.items():
            mine = self.chunks.get(nid)
            if mine is None:
                self.chunks[nid] = changes
            else:
                mine.absorb(changes)
        for key in other.extra_changes:
            extra = other.extras.get(key)
            if extra is None:
                self.extras.pop(key, None)
            else:
                self.extras[key] = extra
            self.extra_changes.add(key)
        self.dirty = True

    def __repr__(self) -> str:
        return (
            f"<ChangeSet {len(self.nodes)} node(s), {len(self.live_chunks())} array(s) with "
            f"chunk changes, {len(self.extra_changes)} extra change(s)>"
        )
