"""What every branch and tag reaches: refs, snapshots, transaction logs and manifests.

Parents are the effective ones (``lineage``): a snapshot an expiration released is not
reached through the kept snapshots it re-parented, but the transaction logs the records
name for the gap are (diff and rebase across it need them), and so are the records.

``walk`` streams the repository's reachable objects as events, each object once, reading
them straight from storage (no cache, so what it reports is what storage holds now) with a
bounded number of reads in flight. Manifests are yielded one at a time and not kept, so a
consumer (verify, gc's mark phase) holds only those it is looking at. Damage is an event
too (``error`` set), never an exception: the walk goes on past it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Container
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from icechunk_lib.errors import (
    IntegrityError,
    RefNotFoundError,
    UnsupportedError,
)
from icechunk_lib.format.manifest_codec import decode_manifest
from icechunk_lib.format.snapshot import Snapshot, decode_snapshot
from icechunk_lib.format.txlog import decode_txlog
from icechunk_lib.lineage import Lineage, read_records
from icechunk_lib.objects import (
    EXPIRATIONS,
    MANIFESTS,
    SNAPSHOTS,
    TRANSACTIONS,
    fetch_referenced,
)
from icechunk_lib.refs import BRANCHES, TAGS, RefStore

if TYPE_CHECKING:
    from icechunk_lib.format.manifest import ManifestFile
    from icechunk_lib.storage import Storage

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ExpirationRecordFound",
    "Found",
    "KnownSnapshot",
    "ManifestFound",
    "RefFound",
    "SnapshotFound",
    "TransactionLogFound",
    "walk",
]

DEFAULT_CONCURRENCY = 16
"""Objects read at once by a walk: enough to hide storage latency, few enough that the
manifests in flight stay a small, fixed amount of memory."""

DAMAGE = (IntegrityError, UnsupportedError)
"""What a read of a named object raises when the object is missing, corrupt or unreadable;
anything else (a storage failure) propagates."""


@dataclass(frozen=True, slots=True)
class RefFound:
    """A branch or tag, and the snapshot it names (``None`` with ``error`` if undecodable)."""

    kind: str
    """``"branch"`` or ``"tag"``."""
    name: str
    key: str
    snapshot_id: str | None
    error: Exception | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class SnapshotFound:
    """A reachable snapshot, decoded (``snapshot``) or not (``error``)."""

    snapshot_id: str
    via: str
    """What named it first: ``"branch main"``, ``"tag v1"`` or ``"snapshot <child id>"``."""
    snapshot: Snapshot | None
    error: Exception | None = None
    parent_id: str | None = None
    """The parent history gives it (expiration records applied), which the walk followed;
    the file's own ``snapshot.parent_id`` may name a released snapshot."""

    @property
    def key(self) -> str:
        return SNAPSHOTS + self.snapshot_id

    @property
    def from_ref(self) -> bool:
        return not self.via.startswith("snapshot ")


@dataclass(frozen=True, slots=True)
class ExpirationRecordFound:
    """An expiration record (every one is live: records say how history was shortened)."""

    record_id: str
    error: Exception | None = None

    @property
    def key(self) -> str:
        return EXPIRATIONS + self.record_id


@dataclass(frozen=True, slots=True)
class TransactionLogFound:
    """The transaction log of a reachable non-root snapshot, or of one a reachable
    snapshot's expiration record skips (``error`` if damaged)."""

    snapshot_id: str
    error: Exception | None = None

    @property
    def key(self) -> str:
        return TRANSACTIONS + self.snapshot_id


@dataclass(frozen=True, slots=True)
class ManifestFound:
    """A manifest a reachable snapshot names, decoded (``manifest``) or not (``error``)."""

    manifest_id: str
    via: str
    """The first snapshot that named it: ``"snapshot <id>"``."""
    manifest: ManifestFile | None
    error: Exception | None = None

    @property
    def key(self) -> str:
        return MANIFESTS + self.manifest_id


@dataclass(frozen=True, slots=True)
class KnownSnapshot:
    """A reachable snapshot the caller said it knows (``walk(known_snapshots=...)``): not
    read, and neither are its ancestors, manifests or log. Yielded once."""

    snapshot_id: str
    via: str


Found = (
    RefFound
    | ExpirationRecordFound
    | SnapshotFound
    | TransactionLogFound
    | ManifestFound
    | KnownSnapshot
)


async def read_refs(storage: Storage) -> list[RefFound]:
    """Every branch and live tag with the snapshot it names, sorted by kind and name."""
    refs = RefStore(storage)
    found: list[RefFound] = []
    for kind, prefix, names, lookup in (
        ("branch", BRANCHES, await refs.list_branches(), refs.lookup_branch),
        ("tag", TAGS, await refs.list_tags(), refs.lookup_tag),
    ):
        for name in sorted(names):
            key = f"{prefix}{name}/ref"
            try:
                found.append(RefFound(kind, name, key, await lookup(name)))
            except RefNotFoundError:
                continue  # deleted since it was listed
            except DAMAGE as exc:
                found.append(RefFound(kind, name, key, None, exc))
    return found


async def walk(
    storage: Storage,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    transaction_logs: bool = True,
    known_snapshots: Container[str] = frozenset(),
    known_manifests: Container[str] = frozenset(),
) -> AsyncIterator[Found]:
    """Yield every ref and expiration record, then every object reachable from a ref, each
    once, as it is read.

    Snapshots are followed through their effective parents (an undecodable record is
    reported and not applied, so the walk reaches more, never less); each snapshot's
    manifests (and, with ``transaction_logs``, its log unless it is a root, and the logs its
    record skips) are read after it. At most
    ``concurrency`` reads are in flight, and a manifest is yielded as soon as it is read,
    so memory holds at most that many manifests besides the sets of ids already seen.
    Snapshots are read before manifests, so a consumer learns what each manifest should
    hold before it sees it. Stopping the iteration cancels the reads in flight.

    A snapshot in ``known_snapshots`` is yielded as ``KnownSnapshot`` when first reached and
    the walk goes no further along it; a manifest in ``known_manifests`` is skipped. gc's
    incremental run passes what its last run saw, so only the new commits are read.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    refs = await read_refs(storage)
    for ref in refs:
        yield ref
    records, failed = await read_records(storage)
    for record_id in sorted({*records, *failed}):
        yield ExpirationRecordFound(record_id, failed.get(record_id))
    lineage = Lineage(records)
    seen_snapshots: set[str] = set()
    seen_logs: set[str] = set()
    seen_manifests: set[str] = set()
    # Two queues of reads not started yet; snapshots (and their logs) go first.
    urgent: deque[Callable[[], Awaitable[Found]]] = deque()
    later: deque[Callable[[], Awaitable[Found]]] = deque()

    def reach_log(snapshot_id: str) -> None:
        if transaction_logs and snapshot_id not in seen_logs:
            seen_logs.add(snapshot_id)
            urgent.append(partial(_read_log, storage, snapshot_id))

    known: list[KnownSnapshot] = []

    def reach_snapshot(snapshot_id: str, via: str) -> None:
        if snapshot_id not in seen_snapshots:
            seen_snapshots.add(snapshot_id)
            if snapshot_id in known_snapshots:
                known.append(KnownSnapshot(snapshot_id, via))
            else:
                urgent.append(partial(_read_snapshot, storage, snapshot_id, via))

    for ref in refs:
        if ref.snapshot_id is not None:
            reach_snapshot(ref.snapshot_id, ref.label)

    running: set[asyncio.Task[Found]] = set()
    try:
        while known:
            yield known.pop()
        while urgent or later or running:
            while (urgent or later) and len(running) < concurrency:
                read = (urgent or later).popleft()
                running.add(asyncio.ensure_future(read()))
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                found = task.result()
                if isinstance(found, SnapshotFound) and found.snapshot is not None:
                    snap = found.snapshot
                    via = f"snapshot {snap.id}"
                    parent = lineage.parent(snap.id, snap.parent_id)
                    found = dataclasses.replace(found, parent_id=parent)
                    if parent is not None:
                        reach_snapshot(parent, via)
                    if snap.parent_id is not None:
                        reach_log(snap.id)
                    moved = lineage.override(snap.id)
                    for skipped in moved.skipped if moved is not None else ():
                        reach_log(skipped)
                    for mid in sorted({m.manifest_id for n in snap.nodes for m in n.manifests}):
                        if mid not in seen_manifests and mid not in known_manifests:
                            seen_manifests.add(mid)
                            later.append(partial(_read_manifest, storage, mid, via))
                yield found
                while known:
                    yield known.pop()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _read_snapshot(storage: Storage, snapshot_id: str, via: str) -> SnapshotFound:
    key = SNAPSHOTS + snapshot_id
    try:
        data = await fetch_referenced(storage, key)
        snap = decode_snapshot(data, snapshot_id, path=f"{key} in {storage.url}")
    except DAMAGE as exc:
        return SnapshotFound(snapshot_id, via, None, exc)
    return SnapshotFound(snapshot_id, via, snap)


async def _read_log(storage: Storage, snapshot_id: str) -> TransactionLogFound:
    key = TRANSACTIONS + snapshot_id
    try:
        data = await fetch_referenced(storage, key)
        decode_txlog(data, snapshot_id, path=f"{key} in {storage.url}")
    except DAMAGE as exc:
        return TransactionLogFound(snapshot_id, exc)
    return TransactionLogFound(snapshot_id)


async def _read_manifest(storage: Storage, manifest_id: str, via: str) -> ManifestFound:
    key = MANIFESTS + manifest_id
    try:
        data = await fetch_referenced(storage, key)
        manifest = decode_manifest(data, manifest_id, path=f"{key} in {storage.url}")
    except DAMAGE as exc:
        return ManifestFound(manifest_id, via, None, exc)
    return ManifestFound(manifest_id, via, manifest)
