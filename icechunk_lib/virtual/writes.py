"""Recording virtual references in a session: ``IcechunkStore.set_virtual_ref(s)`` land here.

Every reference is checked before any is recorded (location, offset, length, checksum, chunk
index inside the array's grid), so a bad one changes nothing. With validation on, a location
no declared container holds is refused (``set_virtual_ref``) or skipped and reported
(``set_virtual_refs``), as in Icechunk.

``set_virtual_refs`` takes a million references in a second or two: the specs are read and
checked as columns (``spec_columns``), each distinct location is checked once, and the rows
are appended to the change set column-wise. Only a batch with a bad spec is walked one spec
at a time, to raise the error of the first bad one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from icechunk_lib.errors import (
    InvalidInputError,
    NodeNotFoundError,
    VirtualContainerNotFoundError,
)
from icechunk_lib.format.manifest import ChunkRef
from icechunk_lib.format.snapshot import ARRAY, NodeSnapshot
from icechunk_lib.names import validate_node_path
from icechunk_lib.virtual.access import VirtualAccess
from icechunk_lib.virtual.resolver import VirtualResolver
from icechunk_lib.virtual.spec import VirtualChunkSpec, VirtualRows, checked_ref, spec_columns
from icechunk_lib.workspace import Workspace
from icechunk_lib.zarr_keys import Coords, parse_array_meta

__all__ = ["record_virtual_ref", "record_virtual_refs"]


def _resolver(ws: Workspace) -> VirtualResolver:
    """Containers only (what a writer checks): authorisation is a reader's concern."""
    return VirtualResolver(ws.objects.config.virtual_chunk_containers, VirtualAccess())


async def record_virtual_ref(
    ws: Workspace, node: NodeSnapshot, coords: Coords, ref: ChunkRef, *, validate: bool
) -> None:
    """Record one checked virtual reference at ``coords`` of array ``node``.

    Raises:
        VirtualContainerNotFoundError: ``validate`` and no declared container holds it.
        InvalidVirtualLocationError: the location escapes the container that holds it.
    """
    if validate:
        _resolver(ws).container(ref.location)
    await ws.set_chunk_refs(node, [(coords, ref)])


async def record_virtual_refs(
    ws: Workspace, path: str, chunks: Sequence[VirtualChunkSpec], *, validate: bool
) -> list[tuple[int, ...]] | None:
    """Record virtual references for the array at ``path``; the indices skipped because no
    declared container holds their location (None when none was skipped).

    Raises:
        NodeNotFoundError: no array at ``path``.
        InvalidInputError: a malformed spec or an index outside the array's chunk grid.
        InvalidVirtualLocationError: a location that could leave its container.
    """
    node = await _array(ws, path)
    info = parse_array_meta(node.meta)
    resolver = _resolver(ws) if validate else None
    cols = spec_columns(chunks, info.grid) if info is not None and info.grid is not None else None
    if cols is None:  # some spec is bad (or unusual): find which, one by one
        items, passed_over = _one_by_one(node, chunks, resolver)
        await ws.set_chunk_refs(node, items)
        return passed_over or None
    rows = cols
    skipped: list[tuple[int, ...]] = []
    if resolver is not None:
        # Each distinct location once, in first-use order (so the error raised, if any, is
        # the one of the first spec that has it).
        held = {loc: _held(resolver, loc) for loc in dict.fromkeys(p[0] for p in cols.pairs)}
        if not all(held.values()):
            pair_held = np.array([held[loc] for loc, _ in cols.pairs], dtype=bool)
            keep = pair_held[cols.pair_index]
            at = np.flatnonzero(keep)
            rows = VirtualRows(
                cols.coords[at],
                cols.offsets[at],
                cols.lengths[at],
                cols.checksums[at],
                cols.pair_index[at],
                cols.pairs,
            )
            skipped = [tuple(c) for c in cols.coords[~keep].tolist()]
    await ws.put_virtual(node, rows)
    return skipped or None


def _held(resolver: VirtualResolver, location: str) -> bool:
    """Whether a declared container holds ``location`` (raising if it would escape it)."""
    try:
        resolver.container(location)
    except VirtualContainerNotFoundError:
        return False
    return True


def _one_by_one(
    node: NodeSnapshot, chunks: Sequence[VirtualChunkSpec], resolver: VirtualResolver | None
) -> tuple[list[tuple[Coords, ChunkRef]], list[tuple[int, ...]]]:
    """Check each spec in turn (raising the error of the first bad one); the refs to record
    and the indices skipped because no declared container holds their location."""
    info = parse_array_meta(node.meta)
    known: dict[str, bool] = {}
    items: list[tuple[Coords, ChunkRef]] = []
    skipped: list[tuple[int, ...]] = []
    for spec in chunks:
        if not isinstance(spec, VirtualChunkSpec):
            raise InvalidInputError(
                f"set_virtual_refs takes VirtualChunkSpec objects, not {type(spec).__name__}"
            )
        coords = tuple(spec.index)
        if info is None or not info.contains(coords) or not all(type(c) is int for c in coords):
            grid = info.describe_grid() if info is not None else "no usable chunk grid"
            raise InvalidInputError(
                f"chunk index {list(spec.index)} is not in array {node.path}: {grid}"
            )
        ref = checked_ref(
            spec.location,
            spec.offset,
            spec.length,
            spec.etag_checksum,
            spec.last_updated_at_checksum,
        )
        if resolver is not None:
            held = known.get(ref.location)
            if held is None:
                held = known[ref.location] = _held(resolver, ref.location)
            if not held:
                skipped.append(coords)
                continue
        items.append((coords, ref))
    return items, skipped


async def _array(ws: Workspace, path: str) -> NodeSnapshot:
    full = validate_node_path(path if path.startswith("/") else "/" + path)
    node = (await ws.nodes()).get(full)
    if node is None or node.kind != ARRAY:
        raise NodeNotFoundError(full)
    return node
