"""``expire_snapshots``: release old snapshots from history, keeping ids and files intact.

Icechunk 1.1's rules: the root snapshot and the tip of ``main`` are never released and
``main`` is never deleted; other branch and tag tips are kept unless the matching flag is set,
in which case a ref whose tip is released is deleted; every other snapshot older than the
cut-off is released; every kept snapshot whose parent is released is re-parented onto the
root. Nothing is deleted (gc does that); the re-parenting is one immutable expiration record
(``format/expiration.py``), read through ``lineage``.

Against concurrent commits and ref changes: refs are read again after the record is written
and refs deleted; if a ref moved or appeared so that it reaches a snapshot this run released,
the run plans again from the new state (bounded, with backoff). A branch is deleted only if it
is still at the version read. The returned set never holds a snapshot a ref points at.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from icechunk_lib.errors import (
    BranchNotFoundError,
    MissingObjectError,
    TagNotFoundError,
)
from icechunk_lib.format.expiration import ExpirationRecord, Reparent, encode_expiration
from icechunk_lib.format.ids import new_object_id
from icechunk_lib.lineage import Lineage, load_lineage
from icechunk_lib.objects import EXPIRATIONS, SNAPSHOTS, ObjectStore
from icechunk_lib.refs import DEFAULT_BRANCH, RefStore, branch_key, now_us

__all__ = ["MAX_ATTEMPTS", "ExpiredSnapshots", "expire_snapshots"]

MAX_ATTEMPTS = 8
"""Plans tried before giving up on refs that keep moving (then only what is certainly
released is returned; nothing is ever left pointing at a released snapshot)."""
_BACKOFF = 0.05

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: phase ``snapshots`` (history read, total 0)."""


class ExpiredSnapshots(set[str]):
    """The ids of the released snapshots (a ``set``, as Icechunk returns), and what else the
    run did: refs deleted, snapshots re-parented, the record written."""

    deleted_branches: tuple[str, ...] = ()
    deleted_tags: tuple[str, ...] = ()
    reparented: tuple[str, ...] = ()
    """Kept snapshots whose parent is now the root."""
    record_id: str | None = None
    """The expiration record written (``expirations/<id>``; the last one if the run planned
    again); None if nothing was re-parented, or on a dry run."""
    dry_run: bool = False
    older_than: dt.datetime | None = None


@dataclass
class _Refs:
    """Branch and tag tips as read at one moment; branches with their version tokens."""

    branches: dict[str, tuple[str, str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def tips(self) -> dict[tuple[str, str], str]:
        out = {("branch", n): sid for n, (sid, _) in self.branches.items()}
        out.update({("tag", n): sid for n, sid in self.tags.items()})
        return out


@dataclass
class _Plan:
    lineage: Lineage
    refs: _Refs
    reachable: set[str]
    released: set[str]
    delete_branches: list[str]
    delete_tags: list[str]
    reparent: list[Reparent]


async def _read_refs(refs: RefStore) -> _Refs:
    state = _Refs()
    for name in sorted(await refs.list_branches()):
        try:
            rec, version = await refs.branch_record(name)
        except BranchNotFoundError:
            continue  # deleted since listed
        state.branches[name] = (rec.snapshot_id, version)
    for name in sorted(await refs.list_tags()):
        try:
            state.tags[name] = await refs.lookup_tag(name)
        except TagNotFoundError:
            continue
    return state


async def _history(
    objects: ObjectStore,
    lineage: Lineage,
    tips: list[str],
    progress: ProgressCallback | None,
) -> dict[str, tuple[str | None, int]]:
    """Effective parent and write time of every snapshot the tips reach (~1 read per 100)."""
    info: dict[str, tuple[str | None, int]] = {}
    for tip in tips:
        cursor: str | None = tip
        while cursor is not None and cursor not in info:
            chain = lineage.chain(await objects.snapshot_header(cursor))
            for entry in chain:
                if entry.id in info:
                    cursor = None
                    break
                info[entry.id] = (entry.parent_id, entry.written_at)
            else:
                cursor = chain[-1].parent_id
            if progress is not None:
                progress("snapshots", len(info), 0)
    return info


def _skipped(
    info: dict[str, tuple[str | None, int]], lineage: Lineage, start: str | None, root: str
) -> tuple[str, ...]:
    """The snapshots from ``start`` back to the root (exclusive), newest first, with the
    ones earlier records skipped behind each re-parented one."""
    out: list[str] = []
    cursor = start
    while cursor is not None and cursor != root:
        out.append(cursor)
        moved = lineage.override(cursor)
        if moved is not None:
            out.extend(moved.skipped)
        cursor = info[cursor][0]
    return tuple(out)


async def _plan(
    objects: ObjectStore,
    refs: RefStore,
    cutoff: int,
    delete_expired_branches: bool,
    delete_expired_tags: bool,
    progress: ProgressCallback | None,
) -> _Plan:
    lineage = await load_lineage(objects)
    state = await _read_refs(refs)
    tips = state.tips()
    info = await _history(objects, lineage, sorted(set(tips.values())), progress)
    roots = [sid for sid, (parent, _) in info.items() if parent is None]
    root = roots[0] if roots else None
    main_tip = state.branches.get(DEFAULT_BRANCH, (None, ""))[0]

    def fixed(sid: str) -> bool:
        return sid in (root, main_tip) or info[sid][1] >= cutoff

    # Tips kept by a ref that stays; then refs whose tip is not kept go, with the flags.
    held = {
        sid
        for (kind, name), sid in tips.items()
        if not (kind == "branch" and delete_expired_branches and name != DEFAULT_BRANCH)
        and not (kind == "tag" and delete_expired_tags)
    }
    delete_branches = [
        name
        for name, (sid, _) in state.branches.items()
        if name != DEFAULT_BRANCH and sid not in held and not fixed(sid)
    ]
    delete_tags = [n for n, sid in state.tags.items() if sid not in held and not fixed(sid)]
    gone = {("branch", n) for n in delete_branches} | {("tag", n) for n in delete_tags}
    surviving = {sid for key, sid in tips.items() if key not in gone}

    def kept(sid: str) -> bool:
        return fixed(sid) or sid in surviving

    # What the surviving tips reach once every kept snapshot with a released parent jumps
    # to the root: only kept snapshots (the tips are kept).
    reachable_after: set[str] = set()
    reparent: list[Reparent] = []
    for tip in sorted(surviving):
        cursor: str | None = tip
        while cursor is not None and cursor not in reachable_after:
            reachable_after.add(cursor)
            parent = info[cursor][0]
            if parent is not None and not kept(parent):
                assert root is not None
                skipped = _skipped(info, lineage, parent, root)
                reparent.append(Reparent(cursor, root, skipped))
                parent = root
            cursor = parent
    released = set(info) - reachable_after
    return _Plan(
        lineage,
        state,
        set(info),
        released,
        sorted(delete_branches),
        sorted(delete_tags),
        sorted(reparent, key=lambda r: r.snapshot_id),
    )


async def _reaches_released(
    objects: ObjectStore, lineage: Lineage, kept: set[str], released: set[str], tips: list[str]
) -> bool:
    """Whether any of ``tips`` reaches a ``released`` snapshot (under ``lineage``), stopping
    at ``kept`` ones (what the refs as planned still reach)."""
    for tip in tips:
        cursor: str | None = tip
        while cursor is not None:
            chain = lineage.chain(await objects.snapshot_header(cursor))
            for entry in chain:
                if entry.id in released:
                    return True
                if entry.id in kept:
                    cursor = None
                    break
            else:
                cursor = chain[-1].parent_id
    return False


async def _delete_refs(refs: RefStore, plan: _Plan, branches: list[str], tags: list[str]) -> bool:
    """Delete the planned refs, adding the names deleted to ``branches`` and ``tags``; False
    if a branch moved since it was read (nothing more is deleted; the caller plans again)."""
    for name in plan.delete_branches:
        _, version = plan.refs.branches[name]
        try:
            _, now = await refs.branch_record(name)
        except BranchNotFoundError:
            continue
        if now != version:
            return False
        # The storage has no conditional delete: the version is checked just before.
        await refs.storage.delete(branch_key(name))
        branches.append(name)
    for name in plan.delete_tags:
        try:
            await refs.delete_tag(name)  # tags never move: the tip read is still the tip
        except TagNotFoundError:
            continue
        tags.append(name)
    return True


async def expire_snapshots(
    objects: ObjectStore,
    refs: RefStore,
    older_than: dt.datetime,
    *,
    delete_expired_branches: bool = False,
    delete_expired_tags: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ExpiredSnapshots:
    """Release snapshots older than ``older_than``; see the module docstring.

    ``dry_run`` plans exactly as a run would and changes nothing.

    Raises:
        ValueError: ``older_than`` is not a timezone-aware datetime.
        IntegrityError: a snapshot of the history or an expiration record is damaged
            (nothing is changed then).
    """
    if not isinstance(older_than, dt.datetime) or older_than.utcoffset() is None:
        raise ValueError(
            "older_than must be a timezone-aware datetime (for example "
            f"datetime.now(UTC) - timedelta(days=30)), not {older_than!r}"
        )
    cutoff = int(older_than.timestamp() * 1_000_000)
    released: set[str] = set()
    branches: list[str] = []
    tags: list[str] = []
    reparented: set[str] = set()
    record_id: str | None = None
    still: set[str] = set()
    """What the refs reach once the run ends: never returned as released."""
    for attempt in range(MAX_ATTEMPTS + 1):
        if attempt:
            await asyncio.sleep(_BACKOFF * 2 ** min(attempt, 5) * (0.5 + random.random()))
        try:
            plan = await _plan(
                objects, refs, cutoff, delete_expired_branches, delete_expired_tags, progress
            )
        except MissingObjectError as exc:
            # A snapshot released and collected while this run read history: look again.
            if not exc.key.startswith(SNAPSHOTS) or attempt == MAX_ATTEMPTS:
                raise
            continue
        if dry_run or attempt == MAX_ATTEMPTS:
            # A dry run; or refs kept moving: what they reach now stays, and no more is done.
            if dry_run:
                released = plan.released
                branches, tags = plan.delete_branches, plan.delete_tags
                reparented = {r.snapshot_id for r in plan.reparent}
                still = plan.reachable - plan.released
            else:
                still = plan.reachable
            break
        lineage = plan.lineage
        if plan.reparent:
            record = ExpirationRecord(
                id=new_object_id(),
                written_at=now_us(),
                older_than=cutoff,
                reparented=tuple(plan.reparent),
            )
            data = encode_expiration(record, compression_level=objects.config.compression.level)
            await objects.storage.put_if_absent(EXPIRATIONS + record.id, data)
            objects.expiration_records[record.id] = record
            lineage = lineage.with_record(record)
            record_id = record.id
            reparented.update(r.snapshot_id for r in plan.reparent)
        released |= plan.released
        if not await _delete_refs(refs, plan, branches, tags):
            continue
        # Refs now, against the plan: anything new or moved must not reach what went.
        now = (await _read_refs(refs)).tips()
        expected = plan.refs.tips()
        for name in plan.delete_branches:
            expected.pop(("branch", name), None)
        for name in plan.delete_tags:
            expected.pop(("tag", name), None)
        changed = sorted({sid for key, sid in now.items() if expected.get(key) != sid})
        still = plan.reachable - plan.released
        try:
            clash = await _reaches_released(objects, lineage, still, released, changed)
        except MissingObjectError:
            clash = True
        if not clash:
            break
    released -= still
    result = ExpiredSnapshots(released)
    result.deleted_branches = tuple(sorted(set(branches)))
    result.deleted_tags = tuple(sorted(set(tags)))
    result.reparented = tuple(sorted(reparented))
    result.record_id = record_id
    result.dry_run = dry_run
    result.older_than = older_than
    return result
