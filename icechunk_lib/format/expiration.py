"""Expiration records: how a snapshot expiration re-parented the snapshots it kept.

Snapshots are immutable and their ids never change, so expiring history cannot rewrite the
snapshots it keeps. Instead each expiration writes one immutable record
(``expirations/<id>``) naming, for every kept snapshot whose parent it released, the new
parent (the repository's root snapshot) and the snapshots skipped between them, newest
first, whose transaction logs carry what the gap changed (for ``diff`` and ``rebase``).
"""

from __future__ import annotations

import msgspec

from icechunk_lib.errors import CorruptObjectError
from icechunk_lib.format._framing import ObjectKind, decode_object, encode_object

__all__ = ["ExpirationRecord", "Reparent", "decode_expiration", "encode_expiration"]


class Reparent(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A kept snapshot's new parent, and the snapshots between the two, newest first."""

    snapshot_id: str
    parent_id: str
    skipped: tuple[str, ...]
    """Ids of the skipped ancestors (each also names its transaction log), composed with
    earlier records: an ancestor that an earlier record re-parented brings its own list."""


class ExpirationRecord(msgspec.Struct, frozen=True, gc=False):
    """One run of ``expire_snapshots``: when, with which cut-off, and what it re-parented."""

    id: str
    written_at: int
    """Microseconds since the Unix epoch, UTC."""
    older_than: int
    """The cut-off, microseconds since the Unix epoch, UTC."""
    reparented: tuple[Reparent, ...] = ()


def encode_expiration(record: ExpirationRecord, *, compression_level: int = 3) -> bytes:
    """Frame a record under its own id (``expirations/<id>``)."""
    return encode_object(
        ObjectKind.EXPIRATION, record, object_id=record.id, compression_level=compression_level
    )


def decode_expiration(data: bytes, record_id: str, *, path: str) -> ExpirationRecord:
    """Check and decode ``expirations/<record_id>``; another record's file is refused."""
    record = decode_object(
        data, ObjectKind.EXPIRATION, ExpirationRecord, object_id=record_id, path=path
    )
    if record.id != record_id:
        raise CorruptObjectError(
            path, f"the header names record {record_id} but the payload {record.id}"
        )
    return record
