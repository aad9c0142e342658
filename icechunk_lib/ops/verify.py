"""``verify``: check that everything reachable from a ref exists, decodes and agrees.

Built on ``reachable.walk``: refs name existing snapshots, expiration records decode,
snapshots and manifests decode
under their own ids, manifests hold what their snapshots' manifest refs say, non-root
snapshots have a transaction log, and every native chunk exists with its recorded length
(with ``data=True``, its bytes also match the manifest's checksum). Damage becomes a
``Problem`` in the report; only storage failures raise.

Virtual chunks are byte ranges of objects outside the repository: they are never looked up
in ``chunks/`` (their checksum is the source's ``last_updated_at``, not a content checksum).
What can be known without reading a source is checked: each location is a well-formed URL
that a declared container holds without escaping it, and each range ends before byte 2**64.
A location is checked once however many chunks name it, and reported once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from icechunk_lib.errors import (
    InvalidVirtualLocationError,
    MissingObjectError,
    ObjectNotFoundError,
    VirtualContainerNotFoundError,
)
from icechunk_lib.format import content_checksum
from icechunk_lib.format.containers import VirtualChunkContainer
from icechunk_lib.format.manifest import NATIVE, VIRTUAL, ChunkTable, ManifestFile
from icechunk_lib.format.snapshot import ManifestRef, RegionRef, Snapshot
from icechunk_lib.objects import MANIFESTS, chunk_key
from icechunk_lib.ops.reachable import (
    DEFAULT_CONCURRENCY,
    ExpirationRecordFound,
    ManifestFound,
    RefFound,
    SnapshotFound,
    TransactionLogFound,
    walk,
)
from icechunk_lib.storage import Storage
from icechunk_lib.virtual import VirtualAccess, VirtualResolver

__all__ = ["Problem", "ProgressCallback", "VerifyReport", "verify_repository"]

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``, phases ``refs``, ``snapshots``, ``manifests`` and
``chunks``; ``total`` is 0: how much is reachable is known only at the end."""

_Piece = tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]
"""What a manifest holds of one array: count, first and last chunk, least and greatest
coordinates (compared with what snapshots record of the piece)."""
_CHUNKS_IN_FLIGHT = 64
_CHUNK_BATCH = 4096


@dataclass(frozen=True, slots=True)
class Problem:
    """One damaged object: what it is, where, what led to it, and what is wrong."""

    kind: str
    """``"ref"``, ``"snapshot"``, ``"manifest"``, ``"transaction_log"``, ``"chunk"``,
    ``"expiration_record"`` or ``"virtual_chunk"``."""
    key: str
    """The object's storage key (``refs/branch/main/ref``, ``chunks/<id>``, ...); for a
    virtual chunk, its location (a URL outside the repository)."""
    reached_from: str
    """The ref, snapshot or manifest that names it (``"branch main"``, ``"snapshot <id>"``)."""
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.key} (from {self.reached_from}): {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``Repository.verify`` found: the problems, and how many objects it checked."""

    problems: tuple[Problem, ...]
    refs: int
    snapshots: int
    transaction_logs: int
    manifests: int
    chunks: int
    """Distinct objects in ``chunks/`` checked: native chunks, and extra keys kept there
    (inline chunks are checked with their manifest)."""
    data: bool
    """Whether chunk contents were read and checksummed, not only their sizes."""
    expiration_records: int = 0
    """Expiration records read (each must decode: history is read through them)."""
    virtual_chunks: int = 0
    """Virtual chunk references checked (one per manifest row; their sources are not read)."""
    virtual_locations: int = 0
    """Distinct locations those references name."""

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


class _Verifier:
    """The state of one verification: counts, problems, and what manifests should hold."""

    def __init__(
        self,
        storage: Storage,
        data: bool,
        progress: ProgressCallback | None,
        containers: Mapping[str, VirtualChunkContainer] | None = None,
    ) -> None:
        self.storage = storage
        self.data = data
        self.progress = progress
        # Containers only: whether the user authorised one is a reader's concern.
        self.resolver = VirtualResolver(containers, VirtualAccess())
        self.declared = sorted(c.url_prefix for c in (containers or {}).values())
        self.virtual_chunks = 0
        self.locations: dict[str, str | None] = {}
        """Each virtual location checked: what is wrong with it, or None."""
        self.reported: set[tuple[str, str]] = set()
        """(location, what) already reported: a location is reported once per kind of fault."""
        self.chunks_checked = 0
        self.problems: list[Problem] = []
        self.counts = {
            "refs": 0,
            "snapshots": 0,
            "transaction_logs": 0,
            "manifests": 0,
            "expiration_records": 0,
        }
        self.chunks_seen: set[bytes] = set()
        # What snapshots say a manifest holds (node id, manifest ref, snapshot), kept until
        # the manifest is read; then only its pieces' (count, first, last) are kept.
        self.claims: dict[str, list[tuple[str, ManifestRef, str]]] = {}
        self.pieces: dict[tuple[str, str], _Piece] = {}
        self.manifests_read: set[str] = set()
        self.manifests_failed: set[str] = set()
        self.limit = asyncio.Semaphore(_CHUNKS_IN_FLIGHT)
        self.refs: list[RefFound] = []
        self.disagreed: set[tuple[str, str, ManifestRef]] = set()
        self.dangling: set[str] = set()
        """Missing snapshots a ref names: the ref itself is damaged."""

    def problem(self, kind: str, key: str, reached_from: str, message: str) -> None:
        self.problems.append(Problem(kind, key, reached_from, message))

    # --- events ------------------------------------------------------------------------------

    def ref(self, found: RefFound) -> None:
        self.counts["refs"] += 1
        if found.error is not None:
            self.problem("ref", found.key, found.label, f"cannot be read: {found.error}")
        else:
            self.refs.append(found)

    async def snapshot(self, found: SnapshotFound) -> None:
        self.counts["snapshots"] += 1
        if found.snapshot is not None:
            self._claim(found.snapshot)
            await self._extras(found.snapshot)
        elif not _missing(found.error):
            self.problem("snapshot", found.key, found.via, f"cannot be read: {found.error}")
        elif found.from_ref:
            self.dangling.add(found.snapshot_id)  # each ref naming it is reported at the end
        else:
            self.problem("snapshot", found.key, found.via, "missing")

    def expiration_record(self, found: ExpirationRecordFound) -> None:
        self.counts["expiration_records"] += 1
        if found.error is not None:
            what = "missing" if _missing(found.error) else f"cannot be read: {found.error}"
            self.problem("expiration_record", found.key, "the repository", what)

    def transaction_log(self, found: TransactionLogFound) -> None:
        self.counts["transaction_logs"] += 1
        if found.error is not None:
            what = "missing" if _missing(found.error) else f"cannot be read: {found.error}"
            self.problem("transaction_log", found.key, f"snapshot {found.snapshot_id}", what)

    async def manifest(self, found: ManifestFound) -> None:
        self.counts["manifests"] += 1
        claims = self.claims.pop(found.manifest_id, [])
        if found.manifest is None:
            self.manifests_failed.add(found.manifest_id)
            what = "missing" if _missing(found.error) else f"cannot be read: {found.error}"
            self.problem("manifest", found.key, found.via, what)
            return
        manifest = found.manifest
        self.manifests_read.add(manifest.id)
        for node_id, table in manifest.tables.items():
            if len(table):
                coords = table.coords()
                box = (tuple(coords.min(axis=0).tolist()), tuple(coords.max(axis=0).tolist()))
                piece = (len(table), table.first_coords(), table.last_coords(), *box)
                self.pieces[(manifest.id, node_id)] = piece
        for node_id, mref, via in claims:
            self._agree(manifest.id, node_id, mref, via)
        self._virtual(manifest)
        await self._chunks(manifest)

    # --- checks ------------------------------------------------------------------------------

    def _claim(self, snap: Snapshot) -> None:
        via = f"snapshot {snap.id}"
        for node in snap.nodes:
            for mref in node.manifests:
                if mref.manifest_id in self.manifests_failed:
                    continue  # reported once already
                if mref.manifest_id in self.manifests_read:
                    self._agree(mref.manifest_id, node.id, mref, via)
                else:
                    self.claims.setdefault(mref.manifest_id, []).append((node.id, mref, via))

    def _agree(self, manifest_id: str, node_id: str, mref: ManifestRef, via: str) -> None:
        """Report a manifest whose piece of array ``node_id`` is not what ``via`` says; once
        per different claim, not once per snapshot sharing the manifest."""
        found = self.pieces.get((manifest_id, node_id))
        expected: tuple[Any, ...] = (mref.count, tuple(mref.first), tuple(mref.last))
        # A region piece also records the box of its chunks; a row-major one has none.
        region = isinstance(mref, RegionRef)
        if isinstance(mref, RegionRef):
            expected += (tuple(mref.lower), tuple(mref.upper))
        piece: tuple[Any, ...] | None = found if found is None or region else found[:3]
        if piece == expected or (manifest_id, node_id, mref) in self.disagreed:
            return
        self.disagreed.add((manifest_id, node_id, mref))
        if piece is None:
            message = f"holds no chunks of array node {node_id}"
        else:
            message = (
                f"array node {node_id}: holds {piece[0]} chunks from {piece[1]} to {piece[2]}, "
                f"the snapshot records {expected[0]} from {expected[1]} to {expected[2]}"
            )
            if region and piece is not None:
                message += (
                    f" in the box {expected[3]}..{expected[4]} (they lie in {piece[3]}..{piece[4]})"
                )
        self.problem("manifest", MANIFESTS + manifest_id, via, message)

    def _virtual(self, manifest: ManifestFile) -> None:
        """Check the virtual rows of ``manifest`` without reading their sources: per distinct
        location, that it is well formed and declared; per row, that its range is sane."""
        via = f"manifest {manifest.id}"
        for node_id, table in manifest.tables.items():
            rows = np.flatnonzero(table.kinds == VIRTUAL)
            if not len(rows):
                continue
            self.virtual_chunks += len(rows)
            # Every index names a location: decoding refuses a manifest where one does not.
            at = table.location_index[rows].astype(np.int64)
            # Offsets and lengths are uint64: a range ends past 2**64-1 exactly when the
            # length exceeds what is left after the offset.
            past = table.lengths[rows] > np.uint64(2**64 - 1) - table.offsets[rows]
            where, counts = np.unique(at, return_counts=True)
            bad_ranges = dict(zip(*np.unique(at[past], return_counts=True), strict=True))
            for index, count in zip(where.tolist(), counts.tolist(), strict=True):
                location = table.locations[index]
                problem = self._location_problem(location)
                if problem is not None and (location, "location") not in self.reported:
                    self.reported.add((location, "location"))
                    self.problem(
                        "virtual_chunk",
                        location,
                        via,
                        f"{count} chunk(s) of array node {node_id}: {problem}",
                    )
                bad = int(bad_ranges.get(index, 0))
                if bad and (location, "range") not in self.reported:
                    self.reported.add((location, "range"))
                    self.problem(
                        "virtual_chunk",
                        location,
                        via,
                        f"{bad} chunk(s) of array node {node_id} end past byte 2**64-1 "
                        "(offset plus length)",
                    )

    def _location_problem(self, location: str) -> str | None:
        """What keeps ``location`` from ever being read, or None (checked once each)."""
        if location in self.locations:
            return self.locations[location]
        problem: str | None = None
        try:
            self.resolver.container(location)
        except InvalidVirtualLocationError as e:
            problem = f"not a usable location: {e.reason}"
        except VirtualContainerNotFoundError:
            declared = ", ".join(self.declared) or "none"
            problem = (
                f"no virtual chunk container declared in the repository config holds it "
                f"(declared: {declared}); declare one with "
                "config.set_virtual_chunk_container(...) and save the config"
            )
        self.locations[location] = problem
        return problem

    async def _extras(self, snap: Snapshot) -> None:
        """Extra keys kept in ``chunks/`` are checked like chunks."""
        rows = [
            (e.chunk_id, 0, e.length, e.checksum)
            for e in snap.extras
            if e.chunk_id and e.chunk_id not in self.chunks_seen
        ]
        self.chunks_seen.update(row[0] for row in rows)
        await self._check_chunks(rows, f"snapshot {snap.id}")

    async def _chunks(self, manifest: ManifestFile) -> None:
        via = f"manifest {manifest.id}"
        batch: list[tuple[bytes, int, int, int]] = []
        for table in manifest.tables.values():
            for row in _native_rows(table):
                if row[0] in self.chunks_seen:
                    continue
                self.chunks_seen.add(row[0])
                batch.append(row)
                if len(batch) >= _CHUNK_BATCH:
                    await self._check_chunks(batch, via)
                    batch = []
        await self._check_chunks(batch, via)

    async def _check_chunks(self, rows: list[tuple[bytes, int, int, int]], via: str) -> None:
        found = await asyncio.gather(*(self._check_chunk(*row) for row in rows))
        for (chunk_id, _, _, _), message in zip(rows, found, strict=True):
            if message is not None:
                self.problem("chunk", chunk_key(chunk_id), via, message)
        if rows and self.progress is not None:
            self.chunks_checked += len(rows)
            self.progress("chunks", self.chunks_checked, 0)

    def tick(self, phase: str) -> None:
        """Tell the progress callback how many objects of ``phase`` were checked."""
        if self.progress is not None:
            self.progress(phase, self.counts[phase], 0)

    async def _check_chunk(
        self, chunk_id: bytes, offset: int, length: int, checksum: int
    ) -> str | None:
        """What is wrong with one native chunk, or None."""
        key = chunk_key(chunk_id)
        async with self.limit:
            try:
                if not self.data:
                    size = await self.storage.size(key)
                    # ick writes one chunk per file; a packed file need only be long enough.
                    if size != length if offset == 0 else size < offset + length:
                        return f"has {size} bytes, the manifest records {length} at {offset}"
                    return None
                rng = None if offset == 0 else (offset, offset + length)
                data = await self.storage.get(key, rng)
            except ObjectNotFoundError:
                return "missing"
        if len(data) != length:
            return f"has {len(data)} bytes, the manifest records {length} at {offset}"
        if checksum and (found := content_checksum(data)) != checksum:
            return f"content checksum {found:016x} differs from the manifest's {checksum:016x}"
        return None

    def report(self) -> VerifyReport:
        for ref in self.refs:
            if ref.snapshot_id in self.dangling:
                message = f"names snapshot {ref.snapshot_id}, which does not exist"
                self.problem("ref", ref.key, ref.label, message)
        return VerifyReport(
            problems=tuple(self.problems),
            chunks=len(self.chunks_seen),
            data=self.data,
            virtual_chunks=self.virtual_chunks,
            virtual_locations=len(self.locations),
            **self.counts,
        )


def _missing(error: Exception | None) -> bool:
    return isinstance(error, MissingObjectError)


def _native_rows(table: ChunkTable) -> Iterator[tuple[bytes, int, int, int]]:
    """(chunk id, offset, length, checksum) of each native row of ``table``."""
    rows = np.flatnonzero(table.kinds == NATIVE)
    if not len(rows):
        return
    ids = table.chunk_ids[rows]
    yield from zip(
        map(bytes, ids),
        table.offsets[rows].tolist(),
        table.lengths[rows].tolist(),
        table.checksums[rows].tolist(),
        strict=True,
    )


async def verify_repository(
    storage: Storage,
    *,
    data: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
    containers: Mapping[str, VirtualChunkContainer] | None = None,
) -> VerifyReport:
    """Check every object reachable from the repository's refs; see the module docstring.
    ``containers``: the virtual chunk containers of the config in effect (None: none)."""
    verifier = _Verifier(storage, data, progress, containers)
    async for found in walk(storage, concurrency=concurrency):
        if isinstance(found, RefFound):
            verifier.ref(found)
            verifier.tick("refs")
        elif isinstance(found, SnapshotFound):
            await verifier.snapshot(found)
            verifier.tick("snapshots")
        elif isinstance(found, TransactionLogFound):
            verifier.transaction_log(found)
        elif isinstance(found, ExpirationRecordFound):
            verifier.expiration_record(found)
        elif isinstance(found, ManifestFound):
            await verifier.manifest(found)
            verifier.tick("manifests")
    return verifier.report()
