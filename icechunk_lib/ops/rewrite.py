"""``Repository.rewrite_manifests``: one commit that lays every array's manifests out anew.

The commit changes no chunk reference: each array's pieces are read, merged and cut again by
the config's current splitting (or into row-major ranges of ``max_refs_per_manifest`` for
arrays no rule matches). Like any commit it lands by one compare-and-swap of the branch; a
branch that moved meanwhile makes it start over from the new tip (it has no changes of its
own to lose), a bounded number of times.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from icechunk_lib.changeset import ChangeSet
from icechunk_lib.commit import check_commit_info, write_commit
from icechunk_lib.errors import ConflictError
from icechunk_lib.objects import ObjectStore
from icechunk_lib.refs import RefStore

__all__ = ["SPLITTING_CONFIG_KEY", "rewrite_manifests"]

SPLITTING_CONFIG_KEY = "splitting_config"
"""The commit metadata key recording the splitting config applied (as Icechunk names it)."""
_TRIES = 10


async def rewrite_manifests(
    objects: ObjectStore,
    refs: RefStore,
    branch: str,
    message: str,
    metadata: dict[str, Any] | None,
    *,
    tries: int = _TRIES,
) -> str:
    """Commit on ``branch`` a snapshot whose manifests follow the current layout; its id.

    Raises:
        BranchNotFoundError: no such branch.
        ConflictError: the branch moved ``tries`` times while the rewrite was written.
        SessionError: the message or metadata cannot be stored.
    """
    check_commit_info(message, {} if metadata is None else metadata)
    splitting = objects.config.manifest.splitting
    info = dict(metadata or {})
    # As JSON (lists, not tuples), the form the metadata reads back in.
    info[SPLITTING_CONFIG_KEY] = msgspec.json.decode(msgspec.json.encode(splitting))
    for attempt in range(tries):
        tip = await refs.lookup_branch(branch)
        base = await objects.snapshot(tip)
        new_id = await write_commit(
            objects,
            base,
            ChangeSet.from_snapshot(base),
            message,
            info,
            allow_empty=True,
            relayout=True,
        )
        try:
            await refs.update_branch(branch, new_id, base.id, action="commit", message=message)
            return new_id
        except ConflictError as exc:
            if exc.actual_parent == new_id:
                return new_id  # the swap landed but its reply was lost
            if attempt == tries - 1:
                raise ConflictError(
                    branch,
                    base.id,
                    exc.actual_parent,
                    next_step=f"it moved on each of {tries} tries; run rewrite_manifests again",
                ) from None
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover
