"""Listing the group/array hierarchy of a node tree, with optional storage statistics.

``list_nodes`` takes a working tree and its chunk changes (a session's change set) and the
object store its manifests live in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from icechunk_lib.chunk_changes import ChunkChanges
from icechunk_lib.errors import NodeNotFoundError
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL
from icechunk_lib.format.snapshot import ARRAY, NodeSnapshot
from icechunk_lib.names import validate_node_path
from icechunk_lib.objects import ObjectStore
from icechunk_lib.zarr_keys import read_zarr_json

__all__ = ["NodeInfo", "list_nodes"]


@dataclass(frozen=True)
class NodeInfo:
    """A group or array as ``ick ls`` shows it."""

    path: str
    kind: str
    """``"group"`` or ``"array"``."""
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    chunk_shape: tuple[int, ...] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    chunks_written: int | None = None
    """Chunks stored for the array (with ``stats``); chunks never written read as fill."""
    bytes_written: int | None = None
    """Stored bytes of those chunks (compressed, as written)."""
    dtype_name: str | None = None
    """The data type as people read it: ``int32``, ``struct{a:int32,b:float64}``, ..."""
    native_chunks: int | None = None
    """Of ``chunks_written`` (with ``stats``): those stored as objects in ``chunks/``."""
    inline_chunks: int | None = None
    """Those stored inside manifests."""
    virtual_chunks: int | None = None
    """Those that are byte ranges of objects outside the repository (virtual chunks)."""
    virtual_bytes: int | None = None
    """The bytes of the virtual chunks (part of ``bytes_written``, not stored here)."""


def _describe(node: NodeSnapshot) -> NodeInfo:
    meta = read_zarr_json(node.meta)
    if node.kind != ARRAY:
        return NodeInfo(node.path, "group", attributes=meta.attributes)
    dtype = meta.data_type
    return NodeInfo(
        node.path,
        "array",
        shape=tuple(meta.doc.get("shape") or ()),
        dtype=dtype if isinstance(dtype, str) else json.dumps(dtype),
        chunk_shape=meta.chunk_shape,
        attributes=meta.attributes,
        dtype_name=meta.data_type_name,
    )


@dataclass
class _Sizes:
    """Chunks of one array by kind, and their bytes (virtual bytes also on their own)."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    """Indexed by kind: ``NATIVE``, ``INLINE``, ``VIRTUAL`` (index 0 unused)."""
    size: int = 0
    virtual_size: int = 0

    def applied(self, info: NodeInfo) -> NodeInfo:
        """``info`` with these counts filled in."""
        return dataclasses.replace(
            info,
            chunks_written=sum(self.counts),
            bytes_written=self.size,
            native_chunks=self.counts[NATIVE],
            inline_chunks=self.counts[INLINE],
            virtual_chunks=self.counts[VIRTUAL],
            virtual_bytes=self.virtual_size,
        )


async def _stats(objects: ObjectStore, node: NodeSnapshot, changes: ChunkChanges | None) -> _Sizes:
    """An array's chunks by kind and their bytes: summed from manifest columns (a few numpy
    reductions per table) when nothing is pending, else ref by ref."""
    sizes = _Sizes()
    if not changes:
        for table in await objects.node_tables(node):
            counts = np.bincount(table.kinds, minlength=4).tolist()
            sizes.counts = [a + b for a, b in zip(sizes.counts, counts[:4], strict=True)]
            sizes.size += int(table.lengths.sum(dtype=np.uint64))
            virtual = table.kinds == VIRTUAL
            if counts[VIRTUAL]:
                sizes.virtual_size += int(table.lengths[virtual].sum(dtype=np.uint64))
        return sizes
    async for _, ref in objects.chunk_refs(node, changes):
        sizes.counts[ref.kind] += 1
        sizes.size += ref.length
        if ref.kind == VIRTUAL:
            sizes.virtual_size += ref.length
    return sizes


async def list_nodes(
    objects: ObjectStore,
    nodes: Mapping[str, NodeSnapshot],
    chunks: Mapping[str, ChunkChanges],
    path: str = "/",
    *,
    recursive: bool = False,
    stats: bool = False,
) -> list[NodeInfo]:
    """Children of the group at ``path`` in the tree ``nodes`` (every descendant if
    ``recursive``), sorted by path; ``chunks``: the tree's uncommitted chunk changes by node id.

    Groups that exist only as parents of other nodes (implicit groups) are listed too.

    Raises:
        NodeNotFoundError: nothing is at or below ``path``.
    """
    path = validate_node_path(path)
    prefix = "/" if path == "/" else path + "/"
    below = {p: n for p, n in nodes.items() if p.startswith(prefix) and p != path}
    if path != "/" and path not in nodes and not below:
        raise NodeNotFoundError(path)
    wanted: dict[str, NodeSnapshot | None] = {}
    for p, child in below.items():
        rest = p[len(prefix) :].split("/")
        # Every ancestor between ``path`` and the node is listed too (maybe implicit).
        for depth in range(1, len(rest) + 1 if recursive else 2):
            sub = prefix + "/".join(rest[:depth])
            wanted[sub] = child if sub == p else wanted.get(sub) or nodes.get(sub)
    infos = []
    for p in sorted(wanted):
        node = wanted[p]
        infos.append(_describe(node) if node is not None else NodeInfo(p, "group"))
    if stats:
        arrays = [(i, wanted[info.path]) for i, info in enumerate(infos) if info.kind == "array"]
        sums = await asyncio.gather(
            *(_stats(objects, n, chunks.get(n.id)) for _, n in arrays if n is not None)
        )
        for (i, _), sizes in zip(arrays, sums, strict=True):
            infos[i] = sizes.applied(infos[i])
    return infos
