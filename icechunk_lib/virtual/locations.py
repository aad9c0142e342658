"""Every distinct location the virtual chunks of a session's tree point at (Icechunk's
``Session.all_virtual_chunk_locations``), read from manifest columns, not per chunk."""

from __future__ import annotations

import numpy as np

from icechunk_lib.changeset import ChangeSet
from icechunk_lib.format.manifest import VIRTUAL, ChunkTable, fold_keys
from icechunk_lib.format.snapshot import ARRAY
from icechunk_lib.objects import ObjectStore

__all__ = ["virtual_chunk_locations"]


async def virtual_chunk_locations(objects: ObjectStore, changes: ChangeSet) -> list[str]:
    """The sorted distinct locations of the virtual chunks the tree of ``changes`` holds:
    committed ones its changes did not replace or delete, and its own.

    Raises:
        MissingObjectError: a manifest of the tree is gone from storage.
    """
    found: set[str] = set()
    arrays = [n for n in changes.nodes.values() if n.kind == ARRAY]
    for node in arrays:
        pending = changes.chunks.get(node.id)
        changed = None
        if pending:
            cols = pending.columns(copy=False)
            changed = cols.coords
            used = np.unique(cols.loc_index[cols.kinds == VIRTUAL])
            found.update(cols.locations[i][0] for i in used.tolist())
        for table in await objects.node_tables(node):
            found.update(_committed_locations(table, changed))
    return sorted(found)


def _committed_locations(table: ChunkTable, changed: np.ndarray | None) -> set[str]:
    """Locations of the table's virtual rows that ``changed`` coordinates do not override."""
    if not table.locations:
        return set()
    virtual = table.kinds == VIRTUAL
    if changed is not None and len(changed):
        shape = np.array(table.key_shape, dtype=np.int64)
        inside = changed[(changed < shape).all(axis=1)]
        if len(inside):
            overridden = np.isin(table.keys, fold_keys(inside, table.key_shape))
            virtual &= ~overridden
    used = np.unique(table.location_index[virtual])
    return {table.locations[i] for i in used.tolist()}
