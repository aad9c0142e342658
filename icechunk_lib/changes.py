"""Node-level differences between two node trees (base snapshot vs. working tree)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from icechunk_lib.format.snapshot import NodeSnapshot

__all__ = ["NodeChanges", "node_changes"]


@dataclass
class NodeChanges:
    """Nodes created, deleted, re-described (``zarr.json`` changed) and moved."""

    new: list[NodeSnapshot] = field(default_factory=list)
    deleted: list[NodeSnapshot] = field(default_factory=list)
    updated: list[tuple[NodeSnapshot, NodeSnapshot]] = field(default_factory=list)
    moved: list[tuple[NodeSnapshot, NodeSnapshot]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new or self.deleted or self.updated or self.moved)


def node_changes(base: Iterable[NodeSnapshot], working: Mapping[str, NodeSnapshot]) -> NodeChanges:
    """Compare nodes by id: a node keeps its id through metadata updates and moves."""
    out = NodeChanges()
    base_by_id = {n.id: n for n in base}
    seen: set[str] = set()
    for node in working.values():
        old = base_by_id.get(node.id)
        if old is None:
            out.new.append(node)
            continue
        seen.add(node.id)
        if old is node:
            continue
        if old.meta != node.meta:
            out.updated.append((old, node))
        if old.path != node.path:
            out.moved.append((old, node))
    if len(seen) != len(base_by_id):
        out.deleted.extend(n for nid, n in base_by_id.items() if nid not in seen)
    return out
