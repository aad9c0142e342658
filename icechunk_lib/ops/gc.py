"""``garbage_collect``: delete what no branch or tag reaches and the storage says is old.

A run marks (``gc_marks``), makes sure the refs did not move to anything it did not mark,
then lists ``snapshots/``, ``transactions/``, ``manifests/`` and ``chunks/`` in that order
and deletes each object that is unmarked *and* whose storage ``last_modified`` is older than
the cut-off. A dry run takes the same path and only skips the deletes. A real run ends by
writing a gc record (``gc/<id>``); the next run starts from it, reads only what was written
since and lists only the manifests and chunks written since (snapshots and logs, one per
commit, are listed whole), unless something it kept was released (see "Maintenance design" in
docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from icechunk_lib.errors import IntegrityError, ObjectNotFoundError, RefsKeptMovingError
from icechunk_lib.format.gc_record import GCRecord, decode_gc_record, encode_gc_record
from icechunk_lib.format.ids import (
    OBJECT_ID_BYTES,
    decode_id,
    is_object_id,
    last_id_before,
    new_object_id,
)
from icechunk_lib.lineage import record_ids
from icechunk_lib.objects import CHUNKS, MANIFESTS, SNAPSHOTS, TRANSACTIONS
from icechunk_lib.ops.gc_marks import Marks, mark
from icechunk_lib.ops.reachable import DEFAULT_CONCURRENCY, read_refs
from icechunk_lib.storage import ObjectInfo, Storage

__all__ = [
    "FULL_EVERY",
    "GC_RECORDS",
    "SKEW_MARGIN",
    "GCSummary",
    "ProgressCallback",
    "garbage_collect",
]

GC_RECORDS = "gc/"
SKEW_MARGIN = timedelta(minutes=5)
"""How far a writer's clock may run behind the gc's before an incremental listing could miss
one of its objects. Such an object is only kept too long, never deleted wrongly (deletion
judges age by the storage's own time): the weekly full run (``FULL_EVERY``) collects it."""
FULL_EVERY = timedelta(days=7)
"""An incremental run is full instead once the chain's last full run is this old."""
MAX_ATTEMPTS = 10
"""Mark rounds before giving up on refs that keep moving to unmarked snapshots."""
KEEP_RECORDS = 3
"""gc records kept; older ones are superseded and deleted by the run that writes a new one."""
_PAGE = 4096
_DELETES_IN_FLIGHT = 2
"""Pages being deleted while the listing goes on."""

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``, phases ``mark`` (snapshots and manifests read),
``list`` (keys listed) and ``delete`` (objects deleted, or found deletable by a dry run);
``total`` is 0: how many there are is known only at the end."""


@dataclass(frozen=True, slots=True)
class GCSummary:
    """What a garbage collection deleted (a dry run: would delete), with Icechunk's fields."""

    bytes_deleted: int = 0
    chunks_deleted: int = 0
    manifests_deleted: int = 0
    snapshots_deleted: int = 0
    attributes_deleted: int = 0
    """Always 0: ick keeps no separate attribute files."""
    transaction_logs_deleted: int = 0
    dry_run: bool = False
    full: bool = True
    """Whether the run marked from every ref and listed everything, or started from the
    last gc record and looked only at what was written since."""
    snapshots_read: int = 0
    manifests_read: int = 0
    objects_listed: int = 0


@dataclass
class _Counts:
    deleted: dict[str, int]
    bytes: int = 0
    listed: int = 0
    done: int = 0


_PREFIX_FIELD = {
    SNAPSHOTS: "snapshots_deleted",
    TRANSACTIONS: "transaction_logs_deleted",
    MANIFESTS: "manifests_deleted",
    CHUNKS: "chunks_deleted",
}


async def garbage_collect(
    storage: Storage,
    delete_object_older_than: datetime,
    *,
    dry_run: bool = False,
    full: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
    skew_margin: timedelta = SKEW_MARGIN,
) -> GCSummary:
    """Delete every object unreachable from all refs and older than the cut-off.

    ``delete_object_older_than`` is compared with the storage's own modification times; a
    naive datetime is local time, and a cut-off after the run started is taken as the start
    (what a concurrent session writes meanwhile is never deleted). ``full=True`` ignores
    the last gc record. ``skew_margin`` is how far before its cut-off this run's record
    tells the next run to start listing. See the module docstring for the order of work.
    """
    started = datetime.now(UTC)
    cut_off = min(delete_object_older_than.astimezone(UTC), started)
    ticks = [0]

    def tick() -> None:
        ticks[0] += 1
        if progress is not None:
            progress("mark", ticks[0], 0)

    old_records = await _list_records(storage)
    # The records marked under: one not listed in this run's record makes the next run full.
    expirations = tuple(await record_ids(storage))
    last = None if full else await _usable_record(storage, old_records, expirations, started)
    marks = Marks.from_record(last, GC_RECORDS + last.id) if last is not None else Marks()
    await mark(storage, marks, concurrency=concurrency, tick=tick)
    if last is not None and not marks.all_old_reachable():
        last = None  # something the last run kept was released: judge everything again
        marks = Marks()
        await mark(storage, marks, concurrency=concurrency, tick=tick)
    await _settle(storage, marks, concurrency, tick)

    counts = _Counts(deleted=dict.fromkeys(_PREFIX_FIELD.values(), 0))
    horizon = last.horizon if last is not None else None
    sweep = _Sweep(storage, cut_off, dry_run, counts, progress)
    # Snapshot ids (and so log keys) are random, not time-ordered: these two are listed
    # whole, one key per commit; the incremental run knows every live snapshot and log.
    await sweep.metadata(SNAPSHOTS, None, marks.live_snapshot())
    await sweep.metadata(TRANSACTIONS, None, marks.live_log())
    await sweep.metadata(MANIFESTS, horizon, marks.live_manifest())
    await sweep.chunks(horizon, marks)
    if not dry_run:
        # Temporary files of writes killed mid-way (a local repository's ``.ick-tmp-*``):
        # only refs, config and records are written through them, never chunks or manifests.
        await storage.remove_leftovers(cut_off, skip=("chunks", "manifests"))
        horizon_at = cut_off - skew_margin
        await _write_record(
            storage, marks, last, started, horizon_at, cut_off, old_records, expirations
        )
    return GCSummary(
        bytes_deleted=counts.bytes,
        dry_run=dry_run,
        full=last is None,
        snapshots_read=marks.snapshots_read,
        manifests_read=marks.manifests_read,
        objects_listed=counts.listed,
        **counts.deleted,
    )


async def _settle(
    storage: Storage, marks: Marks, concurrency: int, tick: Callable[[], None]
) -> None:
    """Re-read the refs until each names a marked snapshot, marking what they moved to.

    A commit that lands meanwhile adds only young objects and names marked ones, but a ref
    reset (or a branch or tag created) on a snapshot nobody reached would lose its objects:
    each round marks from the refs again, reading only what is new.
    """
    for attempt in range(MAX_ATTEMPTS + 1):
        refs = await read_refs(storage)
        for ref in refs:
            if ref.error is not None:
                raise ref.error
        if all(r.snapshot_id is None or marks.has_snapshot(r.snapshot_id) for r in refs):
            return
        if attempt == MAX_ATTEMPTS:
            break
        await asyncio.sleep(min(0.01 * 2**attempt, 1.0))
        await mark(storage, marks, concurrency=concurrency, tick=tick)
    raise RefsKeptMovingError(MAX_ATTEMPTS)


class _Sweep:
    """Listing and deleting one prefix at a time, counting what goes."""

    def __init__(
        self,
        storage: Storage,
        cut_off: datetime,
        dry_run: bool,
        counts: _Counts,
        progress: ProgressCallback | None,
    ) -> None:
        self.storage = storage
        self.cut_off = cut_off
        self.dry_run = dry_run
        self.counts = counts
        self.progress = progress
        self.deleting: set[asyncio.Task[None]] = set()
        """Pages being deleted: the listing goes on meanwhile."""

    async def _pages(self, prefix: str, horizon: str | None) -> AsyncIterator[list[ObjectInfo]]:
        """The listing of ``prefix`` (after ``horizon`` if given) in pages."""
        start_after = None if horizon is None else prefix + horizon
        page: list[ObjectInfo] = []
        async for info in self.storage.list(prefix, start_after=start_after):
            page.append(info)
            if len(page) >= _PAGE:
                self.listed(len(page))
                yield page
                page = []
        if page:
            self.listed(len(page))
            yield page

    async def metadata(self, prefix: str, horizon: str | None, live: Callable[[str], bool]) -> None:
        n = len(prefix)
        async for page in self._pages(prefix, horizon):
            doomed = [
                info
                for info in page
                if info.last_modified < self.cut_off
                and is_object_id(info.key[n:])
                and not live(info.key[n:])
            ]
            await self._delete(prefix, doomed)
        await self._drain()

    async def chunks(self, horizon: str | None, marks: Marks) -> None:
        n = len(CHUNKS)
        async for page in self._pages(CHUNKS, horizon):
            old = [i for i in page if i.last_modified < self.cut_off and is_object_id(i.key[n:])]
            if not old:
                continue
            raw, canonical = decode_printed([i.key[n:] for i in old])
            unmarked = canonical & ~marks.chunks.contains(raw)
            await self._delete(CHUNKS, [old[i] for i in np.flatnonzero(unmarked).tolist()])
        await self._drain()

    def listed(self, count: int) -> None:
        self.counts.listed += count
        if self.progress is not None:
            self.progress("list", self.counts.listed, 0)

    async def _delete(self, prefix: str, doomed: list[ObjectInfo]) -> None:
        """Delete a page in the background (a dry run only counts it), waiting first while
        ``_DELETES_IN_FLIGHT`` pages are being deleted."""
        if not doomed:
            return
        if self.dry_run:
            self._count(prefix, doomed)
            return
        while len(self.deleting) >= _DELETES_IN_FLIGHT:
            done, self.deleting = await asyncio.wait(
                self.deleting, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()  # a failed delete stops the run here
        self.deleting.add(asyncio.ensure_future(self._delete_page(prefix, doomed)))

    async def _delete_page(self, prefix: str, doomed: list[ObjectInfo]) -> None:
        await self.storage.delete_many([info.key for info in doomed])
        self._count(prefix, doomed)

    def _count(self, prefix: str, doomed: list[ObjectInfo]) -> None:
        self.counts.deleted[_PREFIX_FIELD[prefix]] += len(doomed)
        self.counts.bytes += sum(info.size for info in doomed)
        self.counts.done += len(doomed)
        if self.progress is not None:
            self.progress("delete", self.counts.done, 0)

    async def _drain(self) -> None:
        """Wait for every page being deleted: a prefix is gone before the next is swept (the
        order that keeps a crash from leaving an object that names a deleted one)."""
        pending, self.deleting = self.deleting, set()
        try:
            for task in asyncio.as_completed(pending):
                await task
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


_VALUES = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"):
    _VALUES[_c] = _i
_SHIFTS = np.arange(4, -1, -1, dtype=np.uint8)


def decode_printed(printed: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Printed 20-character ids as raw ``S12`` ids, all at once, and which are canonical
    (the 4 padding bits zero). Every string must match ``is_object_id``."""
    chars = np.frombuffer("".join(printed).encode("ascii"), dtype=np.uint8).reshape(-1, 20)
    values = _VALUES[chars]
    bits = ((values[:, :, None] >> _SHIFTS) & 1).reshape(len(printed), 100)
    raw = np.packbits(bits[:, :96], axis=1)
    canonical = np.asarray(~bits[:, 96:].any(axis=1), dtype=bool)
    return np.ascontiguousarray(raw).view(f"S{OBJECT_ID_BYTES}").reshape(-1), canonical


# --- gc records ------------------------------------------------------------------------------


async def _list_records(storage: Storage) -> list[ObjectInfo]:
    """The gc records, oldest first (ids are time-ordered)."""
    infos = [i async for i in storage.list(GC_RECORDS)]
    n = len(GC_RECORDS)
    return sorted((i for i in infos if is_object_id(i.key[n:])), key=lambda i: i.key)


async def _usable_record(
    storage: Storage, records: list[ObjectInfo], expirations: tuple[str, ...], now: datetime
) -> GCRecord | None:
    """The newest gc record, if an incremental run may start from it: it decodes, it marked
    under every expiration record there is now (expiration releases snapshots the record
    still counts as reachable), and the chain's last full run is less than ``FULL_EVERY``
    old."""
    if not records:
        return None
    key = records[-1].key
    try:
        record = decode_gc_record(
            await storage.get(key), key[len(GC_RECORDS) :], path=f"{key} in {storage.url}"
        )
    except (IntegrityError, ObjectNotFoundError):
        return None  # unreadable or deleted meanwhile: a full run needs no record
    if not set(expirations) <= set(record.expirations):
        return None
    if datetime.fromtimestamp(record.last_full_at / 1e6, UTC) < now - FULL_EVERY:
        return None
    return record


async def _write_record(
    storage: Storage,
    marks: Marks,
    last: GCRecord | None,
    started: datetime,
    horizon_at: datetime,
    cut_off: datetime,
    old_records: list[ObjectInfo],
    expirations: tuple[str, ...],
) -> None:
    """Write this run's record, then delete the records it supersedes."""
    horizon = last_id_before(horizon_at)
    if last is not None and last.horizon > horizon:
        horizon = last.horizon  # an older cut-off than last time: keep judging from there
    bound = np.frombuffer(decode_id(horizon), dtype=f"S{OBJECT_ID_BYTES}")[0]
    chunks = marks.chunks.column()
    snapshots, parents = marks.snapshot_columns()
    record = GCRecord(
        id=new_object_id(),
        written_at=time.time_ns() // 1000,
        started_at=int(started.timestamp() * 1e6),
        cut_off=int(cut_off.timestamp() * 1e6),
        horizon=horizon,
        full=last is None,
        tips=tuple(sorted(marks.tips.items())),
        snapshots=snapshots.tobytes(),
        parents=parents.tobytes(),
        manifests=marks.manifest_column().tobytes(),
        transaction_logs=marks.log_column().tobytes(),
        chunks=chunks[chunks > bound].tobytes(),
        expirations=expirations,
        last_full_at=last.last_full_at if last is not None else int(started.timestamp() * 1e6),
    )
    await storage.put_if_absent(GC_RECORDS + record.id, encode_gc_record(record))
    stale = old_records[: max(len(old_records) - (KEEP_RECORDS - 1), 0)]
    if stale:
        await storage.delete_many([info.key for info in stale])
