"""Manifest preload at session open (Icechunk's ``ManifestPreloadConfig``): the manifests of
small arrays a reader needs whole (coordinates) are read into the shared cache at once.

Arrays are visited in path order and each manifest is taken while the running total of
references stays within ``max_total_refs`` (one that would exceed it is skipped, later
smaller ones may still fit), as Icechunk does. A manifest that fails to load is left for the
read that needs it to report.
"""

from __future__ import annotations

import asyncio
import contextlib

from icechunk_lib.errors import IcechunkError
from icechunk_lib.format.preload import preload_matches
from icechunk_lib.format.snapshot import ARRAY, Snapshot
from icechunk_lib.objects import ObjectStore

__all__ = ["DEFAULT_MAX_TOTAL_REFS", "preload_manifests", "preload_plan"]

DEFAULT_MAX_TOTAL_REFS = 10_000
"""The reference budget when ``max_total_refs`` is unset (Icechunk's default)."""
_IN_FLIGHT = 16


def preload_plan(objects: ObjectStore, snapshot: Snapshot) -> list[str]:
    """The ids of the manifests to preload for ``snapshot`` under the repository's config."""
    config = objects.config.manifest.preload
    if config is None or config.preload_if is None:
        return []
    budget = config.max_total_refs
    budget = DEFAULT_MAX_TOTAL_REFS if budget is None else budget
    refs_of = {m.id: m.num_refs for m in snapshot.manifest_files}
    chosen: dict[str, None] = {}
    total = 0
    for node in snapshot.nodes:
        if node.kind != ARRAY:
            continue
        for piece in node.manifests:
            mid = piece.manifest_id
            if mid in chosen:
                continue
            num_refs = refs_of.get(mid) or piece.count  # the whole file is what is read
            if total + num_refs <= budget and preload_matches(config, node.path, num_refs):
                chosen[mid] = None
                total += num_refs
    return list(chosen)


async def preload_manifests(objects: ObjectStore, snapshot: Snapshot) -> int:
    """Read the manifests ``preload_plan`` picks, concurrently; how many were asked for."""
    plan = preload_plan(objects, snapshot)
    limit = asyncio.Semaphore(_IN_FLIGHT)

    async def load(manifest_id: str) -> None:
        async with limit:
            with contextlib.suppress(IcechunkError):
                await objects.manifest(manifest_id)

    await asyncio.gather(*(load(m) for m in plan))
    return len(plan)
