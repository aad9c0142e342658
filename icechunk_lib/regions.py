"""Manifest splitting applied at commit: an array's pieces cut by chunk-grid region.

For an array a splitting rule matches (or whose pieces were already cut by region), a commit
rewrites only the pieces whose boxes hold a changed chunk: their chunks and the changes are
merged, cut by the current split sizes and written as new pieces; every other piece is kept
as it is (shared with the parent snapshot). A change of split sizes thus reaches the pieces
rewritten afterwards, and all of them with ``Repository.rewrite_manifests``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from icechunk_lib.format.config import RepositoryConfig
from icechunk_lib.format.manifest import ChunkTable
from icechunk_lib.format.pieces import PieceIndex, cut_regions, uses_regions
from icechunk_lib.format.snapshot import ManifestRef, NodeSnapshot
from icechunk_lib.format.splitting import MAX_SPLIT_SIZE, split_applies, split_sizes_for
from icechunk_lib.objects import ObjectStore
from icechunk_lib.zarr_keys import ArrayInfo, read_zarr_json

__all__ = ["rebuild_regions", "region_sizes"]


def region_sizes(
    config: RepositoryConfig, node: NodeSnapshot, info: ArrayInfo, *, rewrite: bool = False
) -> tuple[int, ...] | None:
    """Chunks per piece along each axis if ``node`` is laid out by region, else None.

    By region when a splitting rule matches the array, or (``rewrite`` false) when its
    pieces already are: their boxes stay disjoint only if new pieces are cut by region too.
    A 0-d array has one chunk and is never split.
    """
    splitting = config.manifest.splitting
    applies = splitting is not None and split_applies(splitting, node.path)
    if not info.ndim or not (applies or (not rewrite and uses_regions(node.manifests))):
        return None
    # An unusable grid (no chunk can be written) leaves unsized axes whole, not 1 chunk.
    grid = info.grid if info.grid is not None else (MAX_SPLIT_SIZE,) * info.ndim
    names = read_zarr_json(node.meta).doc.get("dimension_names")
    if not isinstance(names, list) or len(names) != info.ndim:
        names = None
    else:
        names = [n if isinstance(n, str) else None for n in names]
    return split_sizes_for(splitting, node.path, grid, (1,) * info.ndim, names)


async def rebuild_regions(
    objects: ObjectStore,
    node: NodeSnapshot,
    ndim: int,
    sizes: tuple[int, ...] | None,
    writes: ChunkTable | None,
    deleted: np.ndarray[Any, Any] | None,
    *,
    limit: asyncio.Semaphore,
    max_refs: int,
    everything: bool = False,
) -> tuple[list[ManifestRef], list[ChunkTable]]:
    """The pieces of ``node`` to keep and the tables to write, after ``writes`` and
    ``deleted`` (coordinates): one per region of ``sizes``.

    ``everything`` rewrites every piece (a layout rewrite); ``sizes`` None then cuts the
    array into row-major ranges of ``max_refs`` refs, as for arrays splitting does not match.
    Only pieces whose boxes hold a changed chunk are read (at most ``limit`` at a time).
    """
    pieces = list(node.manifests)
    changed = [
        m for m in (writes.coords() if writes is not None else None, deleted) if m is not None
    ]
    if everything:
        touched = list(range(len(pieces)))
    else:
        coords = np.concatenate(changed) if changed else np.zeros((0, ndim), dtype=np.int64)
        touched = PieceIndex(pieces, ndim).touched(coords)
    kept = [p for i, p in enumerate(pieces) if i not in set(touched)]

    async def load(i: int) -> ChunkTable | None:
        async with limit:
            return (await objects.manifest(pieces[i].manifest_id)).tables.get(node.id)

    bases = [t for t in await asyncio.gather(*(load(i) for i in touched)) if t is not None]
    merged = ChunkTable.merge(node.id, ndim, bases, writes, deleted)
    if not len(merged):
        return kept, []
    return kept, cut_regions(merged, sizes) if sizes is not None else merged.split(max_refs)
