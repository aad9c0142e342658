"""History records (``SnapshotInfo``, ``ReflogEntry``) and revision resolution.

A revision is a branch, a tag, a snapshot id or a unique id prefix of at least 4 characters,
optionally followed by ``~N`` (the N-th first parent), as in git. A branch or tag name takes
precedence over an id prefix it happens to spell (git's rule), so every name is addressable.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from icechunk_lib.errors import (
    AmbiguousRefError,
    BranchNotFoundError,
    InvalidNameError,
    MissingObjectError,
    RevisionNotFoundError,
    SnapshotNotFoundError,
    TagNotFoundError,
)
from icechunk_lib.format.ids import is_object_id
from icechunk_lib.format.refs import ReflogItem
from icechunk_lib.lineage import Lineage, load_lineage, with_lineage
from icechunk_lib.names import validate_ref_name
from icechunk_lib.objects import SNAPSHOTS, ObjectStore
from icechunk_lib.refs import RefStore

__all__ = [
    "MIN_PREFIX",
    "AncestryWalk",
    "ReflogEntry",
    "SnapshotInfo",
    "history_page",
    "lookup_info",
    "resolve_revision",
    "snapshot_as_of",
    "to_datetime",
]

MIN_PREFIX = 4
_MAX_STEP_DIGITS = 18
_REV = re.compile(r"^(?P<base>.*?)(?P<steps>(?:~[0-9]*)*)\Z", re.DOTALL)
_ID_CHARS = re.compile(r"[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]+")


def to_datetime(us: int) -> dt.datetime:
    """A UTC datetime from microseconds since the epoch."""
    return dt.datetime.fromtimestamp(us / 1_000_000, tz=dt.UTC)


@dataclass(frozen=True)
class SnapshotInfo:
    """One entry of the history: what ``ancestry`` yields and ``lookup_snapshot`` returns."""

    id: str
    parent_id: str | None
    written_at: dt.datetime
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _from(cls, s: Any) -> SnapshotInfo:
        # A deep copy: the header is cached, and a caller's change must not reach the cache.
        metadata = copy.deepcopy(s.metadata) if s.metadata else {}
        return cls(s.id, s.parent_id, to_datetime(s.written_at), s.message, metadata)


@dataclass(frozen=True)
class ReflogEntry:
    """One past move of a branch: to ``snapshot_id`` from ``previous_id``, when and why."""

    snapshot_id: str
    previous_id: str | None
    at: dt.datetime
    action: str
    """``create``, ``commit`` or ``reset``."""
    message: str

    @classmethod
    def _from(cls, item: ReflogItem) -> ReflogEntry:
        return cls(
            item.snapshot_id, item.previous_id, to_datetime(item.at), item.action, item.message
        )


async def history_page(
    objects: ObjectStore, snapshot_id: str, lineage: Lineage | None = None
) -> list[SnapshotInfo]:
    """A snapshot followed by the ancestors it summarises: one read for many entries.

    Parents are the effective ones of ``lineage`` (none given: the records now stored).
    """
    if lineage is None:
        lineage = await load_lineage(objects)
    header = await objects.snapshot_header(snapshot_id)
    return [SnapshotInfo._from(s) for s in lineage.chain(header)]


async def lookup_info(objects: ObjectStore, snapshot_id: str) -> SnapshotInfo:
    """One snapshot's history entry, its parent the effective one."""
    return (await history_page(objects, snapshot_id))[0]


class AncestryWalk:
    """A snapshot's history, newest first, a page (one snapshot read) at a time.

    The expiration records are listed once, at the first page. A snapshot found missing
    on the way is looked for once more with fresh records: an expiration and a gc that ran
    meanwhile may have released it, and the history then goes on from the new parent.
    """

    def __init__(self, objects: ObjectStore, start: str) -> None:
        self._objects = objects
        self._cursor: str | None = start
        self._lineage: Lineage | None = None
        self._last: str | None = None
        self._retried = False

    async def next_page(self) -> list[SnapshotInfo] | None:
        """The next entries, or None at the end of the history."""
        if self._cursor is None:
            return None
        if self._lineage is None:
            self._lineage = await load_lineage(self._objects)
        try:
            page = await history_page(self._objects, self._cursor, self._lineage)
        except MissingObjectError as exc:
            if self._retried or self._last is None or not exc.key.startswith(SNAPSHOTS):
                raise
            self._retried = True
            fresh = await load_lineage(self._objects)
            moved = fresh.override(self._last)
            if moved is None or moved.parent_id == self._cursor:
                raise
            self._lineage, self._cursor = fresh, moved.parent_id
            page = await history_page(self._objects, self._cursor, fresh)
        self._last = page[-1].id
        self._cursor = page[-1].parent_id
        return page


async def snapshot_as_of(objects: ObjectStore, start: str, when: dt.datetime, name: str) -> str:
    """The newest snapshot from ``start`` back that was written at or before ``when``.

    Raises:
        ValueError: ``when`` is not a timezone-aware datetime.
        SnapshotNotFoundError: nothing was committed by then (``name`` names the start).
    """
    if not isinstance(when, dt.datetime) or when.utcoffset() is None:
        raise ValueError(
            f"as_of must be a timezone-aware datetime (for example datetime.now(UTC)), not {when!r}"
        )
    limit = int(when.timestamp() * 1_000_000)

    async def search(lineage: Lineage) -> str:
        cursor: str | None = start
        while cursor is not None:
            chain = lineage.chain(await objects.snapshot_header(cursor))
            for entry in chain:
                if entry.written_at <= limit:
                    return entry.id
            cursor = chain[-1].parent_id
        raise SnapshotNotFoundError(name, f"nothing was committed at or before {when.isoformat()}")

    return await with_lineage(objects, search)


def _parse(rev: str) -> tuple[str, int]:
    match = _REV.match(rev)
    assert match is not None
    steps = 0
    for part in match.group("steps").split("~")[1:]:
        # Past any history (and past int()'s 4300-digit limit): the walk says how far it got.
        steps += (
            (int(part) if len(part) <= _MAX_STEP_DIGITS else 10**_MAX_STEP_DIGITS) if part else 1
        )
    return match.group("base"), steps


async def _named(refs: RefStore, name: str) -> list[tuple[str, str]]:
    """(label, snapshot id) of the branch and/or tag called ``name``."""
    try:
        validate_ref_name(name)
    except InvalidNameError:
        return []
    found = []
    with contextlib.suppress(BranchNotFoundError):
        found.append((f"branch {name}", await refs.lookup_branch(name)))
    with contextlib.suppress(TagNotFoundError):
        found.append((f"tag {name}", await refs.lookup_tag(name)))
    return found


async def _by_id(objects: ObjectStore, text: str) -> list[str]:
    """Snapshot ids equal to, or starting with, ``text`` (case-insensitive)."""
    if len(text) < MIN_PREFIX or not _ID_CHARS.fullmatch(text):
        return []
    text = text.upper()
    if is_object_id(text):
        return [text] if await objects.storage.exists(SNAPSHOTS + text) else []
    return sorted(
        [info.key[len(SNAPSHOTS) :] async for info in objects.storage.list(SNAPSHOTS + text)]
    )


async def resolve_revision(objects: ObjectStore, refs: RefStore, rev: str) -> str:
    """The snapshot id a revision names; raises if nothing or more than one thing matches."""
    if not isinstance(rev, str) or not rev:
        raise RevisionNotFoundError(str(rev), "empty revision")
    base, steps = _parse(rev)
    # Names made before ``~`` endings were refused (``feat~``) are still found whole.
    whole = await _named(refs, rev) if steps else []
    named = await _named(refs, base)
    # A name wins over an id prefix it spells; a full id is never a new name.
    ids = [] if named and not is_object_id(base.upper()) else await _by_id(objects, base)
    candidates = [label for label, _ in named] + [
        f"snapshot {i}" for i in ids if all(sid != i for _, sid in named)
    ]
    if whole and (candidates or len(whole) > 1):
        raise AmbiguousRefError(
            rev, [label for label, _ in whole] + [f"{c}, {steps} back" for c in candidates]
        )
    if whole:
        return whole[0][1]
    if len(candidates) > 1:
        raise AmbiguousRefError(rev, candidates)
    if named:
        snapshot_id = named[0][1]
        # The ref's snapshot must exist: if its file is missing, MissingObjectError says
        # the repository is damaged (the header read is cached for the caller's next step).
        await objects.snapshot_header(snapshot_id)
    elif ids:
        snapshot_id = ids[0]
    else:
        raise RevisionNotFoundError(base)
    # Each snapshot summarises its nearest ancestors, so ~N costs about N/100 reads.
    if not steps:
        return snapshot_id
    start = snapshot_id

    async def back(lineage: Lineage) -> str:
        remaining, cursor = steps, start
        while True:
            chain = lineage.chain(await objects.snapshot_header(cursor))
            if remaining < len(chain):
                return chain[remaining].id
            parent = chain[-1].parent_id
            if parent is None:
                raise SnapshotNotFoundError(
                    rev, f"{base} has only {steps - remaining + len(chain) - 1} ancestor(s)"
                )
            remaining -= len(chain)
            cursor = parent

    return await with_lineage(objects, back)
