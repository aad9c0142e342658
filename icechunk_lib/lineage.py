"""Effective parents: the parents snapshots record, as expiration records override them.

Expiration never rewrites a snapshot; it writes a record saying that a kept snapshot's
parent is now the root, and which snapshots (and so transaction logs) the gap skips. Every
walk over history (ancestry, ``~N``, ``as_of``, rebase, the reachability walk) asks a
``Lineage`` for parents instead of reading ``parent_id`` itself. Records are listed once per
walk (one listing, nothing per snapshot read) and read once per process (they never change).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import msgspec

from icechunk_lib.errors import IntegrityError, MissingObjectError, UnsupportedError
from icechunk_lib.format.expiration import ExpirationRecord, Reparent, decode_expiration
from icechunk_lib.format.ids import is_object_id
from icechunk_lib.format.snapshot import AncestorSummary, SnapshotHeader
from icechunk_lib.objects import EXPIRATIONS, SNAPSHOTS, ObjectStore, fetch_referenced
from icechunk_lib.storage import Storage

__all__ = ["Lineage", "load_lineage", "read_records", "record_ids", "with_lineage"]

T = TypeVar("T")


def summary_of(header: SnapshotHeader) -> AncestorSummary:
    """The summary a snapshot's descendants would carry of it."""
    return AncestorSummary(
        header.id, header.parent_id, header.written_at, header.message, header.metadata
    )


class Lineage:
    """The parent overrides of a set of expiration records (empty: recorded parents)."""

    def __init__(self, records: Mapping[str, ExpirationRecord] | None = None) -> None:
        self.records: dict[str, ExpirationRecord] = dict(records or {})
        self._overrides: dict[str, Reparent] = {}
        for record in self.records.values():
            self._add(record)

    def _add(self, record: ExpirationRecord) -> None:
        for item in record.reparented:
            # Two runs at once may both re-parent a snapshot (onto the same root); the
            # longer list of skipped ancestors is the one composed with more history.
            known = self._overrides.get(item.snapshot_id)
            if known is None or len(item.skipped) > len(known.skipped):
                self._overrides[item.snapshot_id] = item

    @property
    def record_ids(self) -> frozenset[str]:
        return frozenset(self.records)

    def with_record(self, record: ExpirationRecord) -> Lineage:
        """This lineage with one more record (one about to be, or just, written)."""
        return Lineage({**self.records, record.id: record})

    def override(self, snapshot_id: str) -> Reparent | None:
        """How a record re-parented ``snapshot_id``, or None."""
        return self._overrides.get(snapshot_id) if self._overrides else None

    def parent(self, snapshot_id: str, recorded: str | None) -> str | None:
        """The effective parent of a snapshot whose file records ``recorded``."""
        if not self._overrides:
            return recorded
        found = self._overrides.get(snapshot_id)
        return recorded if found is None else found.parent_id

    def chain(self, header: SnapshotHeader) -> list[AncestorSummary]:
        """The snapshot and the ancestors its header summarises, with effective parents.

        The summaries are cut after the first re-parented snapshot (the ones after it are
        its recorded ancestors, no longer its history); the walk goes on from its new parent.
        """
        first = summary_of(header)
        if not self._overrides:
            return [first, *header.ancestry]
        out: list[AncestorSummary] = []
        for entry in (first, *header.ancestry):
            found = self._overrides.get(entry.id)
            if found is None:
                out.append(entry)
                continue
            out.append(msgspec.structs.replace(entry, parent_id=found.parent_id))
            break
        return out


async def record_ids(storage: Storage) -> list[str]:
    """The ids of every expiration record in ``storage`` (one listing), sorted; a file under
    ``expirations/`` whose name is not an id is not ick's (a stray file), never a record."""
    n = len(EXPIRATIONS)
    found = [info.key[n:] async for info in storage.list(EXPIRATIONS)]
    return sorted(i for i in found if is_object_id(i))


async def read_records(
    storage: Storage, cache: dict[str, ExpirationRecord] | None = None
) -> tuple[dict[str, ExpirationRecord], dict[str, Exception]]:
    """Every expiration record in ``storage`` (one listing), and those that failed to read.

    ``cache`` holds records read before (they are immutable) and receives the new ones.
    """
    cache = {} if cache is None else cache
    records: dict[str, ExpirationRecord] = {}
    failed: dict[str, Exception] = {}
    for record_id in await record_ids(storage):
        record = cache.get(record_id)
        if record is None:
            try:
                key = EXPIRATIONS + record_id
                data = await fetch_referenced(storage, key)
                record = decode_expiration(data, record_id, path=f"{key} in {storage.url}")
            except (IntegrityError, UnsupportedError) as exc:
                failed[record_id] = exc
                continue
            cache[record_id] = record
        records[record_id] = record
    return records, failed


async def load_lineage(objects: ObjectStore) -> Lineage:
    """The lineage of every record now in the repository; a damaged record raises."""
    records, failed = await read_records(objects.storage, objects.expiration_records)
    for exc in failed.values():
        raise exc
    return Lineage(records)


async def with_lineage(objects: ObjectStore, run: Callable[[Lineage], Awaitable[T]]) -> T:
    """``run(lineage)``, run again once with fresh records if it meets a missing snapshot
    and an expiration was recorded meanwhile (the snapshot was released and collected)."""
    lineage = await load_lineage(objects)
    try:
        return await run(lineage)
    except MissingObjectError as exc:
        if not exc.key.startswith(SNAPSHOTS):
            raise
        fresh = await load_lineage(objects)
        if fresh.record_ids == lineage.record_ids:
            raise
        return await run(fresh)
