"""gc records (``gc/<id>``): what one garbage collection saw, so the next can do less.

Id sets are sorted columns of raw 12-byte ids (``numpy`` ``S12``), not lists of strings: a
record of a repository with years of commits stays a few bytes per object, and the next run
loads it as arrays it can search. See "Maintenance design" in docs/architecture.md.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from icechunk_lib.errors import CorruptObjectError
from icechunk_lib.format._framing import ObjectKind, decode_object, encode_object
from icechunk_lib.format.ids import OBJECT_ID_BYTES

__all__ = ["GCRecord", "IdColumn", "decode_gc_record", "encode_gc_record"]

IdColumn = npt.NDArray[np.bytes_]
"""Sorted, unique raw ids (dtype ``S12``)."""


class GCRecord(msgspec.Struct, frozen=True, gc=False):
    """One gc run's view of the repository; immutable, named by its own id."""

    id: str
    written_at: int
    """Microseconds since the Unix epoch, UTC (the writer's clock)."""
    started_at: int
    """When the run read the refs it marked from (microseconds, the writer's clock)."""
    cut_off: int
    """The run's ``delete_object_older_than`` (microseconds)."""
    horizon: str
    """The next run lists only ids after this one (20 characters): every object at or
    before it was judged by this run or an earlier one."""
    full: bool
    """Whether this run marked and listed everything, or only what changed."""
    tips: tuple[tuple[str, str], ...]
    """``(ref label, snapshot id)`` of every ref the run marked from."""
    snapshots: bytes
    """Every snapshot the run found reachable (sorted raw ids)."""
    parents: bytes
    """For each snapshot (same order), the index of its parent (little-endian int32; -1 for
    a root or a parent not in the set): how the next run checks all of them are still
    reachable without reading any."""
    manifests: bytes
    """Every manifest the run found reachable (sorted raw ids)."""
    transaction_logs: bytes
    """Every transaction log the run found reachable (sorted raw ids)."""
    chunks: bytes
    """The reachable chunk ids after ``horizon`` (sorted raw ids): the next run lists only
    those keys, and knows which of them are live without reading old manifests."""
    expirations: tuple[str, ...] = ()
    """The expiration records the run marked under (sorted ids): a record not listed here
    released snapshots this run counted as reachable, so the next run must be full."""
    last_full_at: int = 0
    """When the latest full run in this chain of records started (microseconds): the next
    run is full once this is a week old, collecting what clock skew hid from listings."""


def column(raw: bytes, what: str, path: str) -> IdColumn:
    """A stored id column as a sorted ``S12`` array (checked: whole ids, sorted)."""
    if len(raw) % OBJECT_ID_BYTES:
        raise CorruptObjectError(path, f"the {what} column is not a whole number of ids")
    ids = np.frombuffer(raw, dtype=f"S{OBJECT_ID_BYTES}")
    if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        raise CorruptObjectError(path, f"the {what} column is not sorted")
    return ids


def encode_gc_record(record: GCRecord) -> bytes:
    """Frame a gc record under its own id (``gc/<id>``)."""
    return encode_object(ObjectKind.GC_RECORD, record, object_id=record.id)


def decode_gc_record(data: bytes, record_id: str, *, path: str) -> GCRecord:
    """Check and decode ``gc/<record_id>``; a file of another record is refused."""
    record = decode_object(data, ObjectKind.GC_RECORD, GCRecord, object_id=record_id, path=path)
    if record.id != record_id:
        raise CorruptObjectError(
            path, f"the header names gc record {record_id} but the payload {record.id}"
        )
    n = len(record.snapshots) // OBJECT_ID_BYTES
    if len(record.parents) != 4 * n:
        raise CorruptObjectError(path, "the parents column does not match the snapshots")
    for what in ("snapshots", "manifests", "transaction_logs", "chunks"):
        column(getattr(record, what), what, path)
    return record
