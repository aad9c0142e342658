"""Listing the group/array hierarchy of a session, with optional storage statistics."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from icechunk_lib.errors import NodeNotFoundError
from icechunk_lib.format.snapshot import ARRAY, NodeSnapshot
from icechunk_lib.names import validate_node_path

if TYPE_CHECKING:
    from icechunk_lib.session import Session

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


def _describe(node: NodeSnapshot) -> NodeInfo:
    try:
        doc: Any = json.loads(node.meta)
    except (ValueError, UnicodeDecodeError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    attributes = doc.get("attributes") if isinstance(doc.get("attributes"), dict) else {}
    if node.kind != ARRAY:
        return NodeInfo(node.path, "group", attributes=attributes)
    dtype = doc.get("data_type")
    grid = (doc.get("chunk_grid") or {}).get("configuration") or {}
    chunk_shape = grid.get("chunk_shape")
    return NodeInfo(
        node.path,
        "array",
        shape=tuple(doc.get("shape") or ()),
        dtype=dtype if isinstance(dtype, str) else json.dumps(dtype),
        chunk_shape=tuple(chunk_shape) if isinstance(chunk_shape, list) else None,
        attributes=attributes,
    )


async def _stats(session: Session, node: NodeSnapshot) -> tuple[int, int]:
    """(chunks, bytes) of an array: summed from manifest columns when nothing is pending."""
    if not session.changed_chunks().get(node.id):
        manifests = await asyncio.gather(
            *(session._objects.manifest(m.manifest_id) for m in node.manifests)
        )
        tables = [m.tables[node.id] for m in manifests if node.id in m.tables]
        return sum(len(t) for t in tables), sum(int(t.lengths.sum()) for t in tables)
    count = size = 0
    async for _, ref in session.iter_chunks(node):
        count += 1
        size += ref.length
    return count, size


async def list_nodes(
    session: Session, path: str = "/", *, recursive: bool = False, stats: bool = False
) -> list[NodeInfo]:
    """Children of the group at ``path`` (every descendant if ``recursive``), sorted by path.

    Groups that exist only as parents of other nodes (implicit groups) are listed too.
    """
    path = validate_node_path(path)
    nodes = await session.nodes()
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
        sums = await asyncio.gather(*(_stats(session, n) for _, n in arrays if n is not None))
        for (i, _), (count, size) in zip(arrays, sums, strict=True):
            info = infos[i]
            infos[i] = NodeInfo(
                info.path,
                info.kind,
                info.shape,
                info.dtype,
                info.chunk_shape,
                info.attributes,
                count,
                size,
            )
    return infos
