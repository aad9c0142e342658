"""Transaction logs: what one commit changed, for diffs and conflict detection on rebase."""

from __future__ import annotations

import msgspec

from icechunk_lib.errors import CorruptObjectError
from icechunk_lib.format._framing import ObjectKind, decode_object, encode_object

__all__ = ["NodeChange", "TransactionLog", "UpdatedChunks", "decode_txlog", "encode_txlog"]


class NodeChange(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: str
    path: str


class UpdatedChunks(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Coordinates (little-endian int64, n x ndim) of chunks written or deleted in a node.

    (The session's record of chunk changes is ``chunk_changes.ChunkChanges``; this is what a
    transaction log keeps of it.)
    """

    node_id: str
    path: str
    ndim: int
    coords: bytes


class TransactionLog(msgspec.Struct, frozen=True, gc=False):
    snapshot_id: str
    new_groups: tuple[NodeChange, ...] = ()
    new_arrays: tuple[NodeChange, ...] = ()
    deleted_groups: tuple[NodeChange, ...] = ()
    deleted_arrays: tuple[NodeChange, ...] = ()
    updated_groups: tuple[NodeChange, ...] = ()
    updated_arrays: tuple[NodeChange, ...] = ()
    moved: tuple[tuple[str, str, str], ...] = ()
    """(node id, from path, to path)."""
    updated_chunks: tuple[UpdatedChunks, ...] = ()
    extra_keys: tuple[str, ...] = ()


def encode_txlog(log: TransactionLog, *, compression_level: int = 3) -> bytes:
    """Frame a transaction log under its snapshot's id (``transactions/<snapshot id>``)."""
    return encode_object(
        ObjectKind.TRANSACTION_LOG,
        log,
        object_id=log.snapshot_id,
        compression_level=compression_level,
    )


def decode_txlog(data: bytes, snapshot_id: str, *, path: str) -> TransactionLog:
    """Check and decode ``transactions/<snapshot_id>``; another commit's log is refused."""
    log = decode_object(
        data, ObjectKind.TRANSACTION_LOG, TransactionLog, object_id=snapshot_id, path=path
    )
    if log.snapshot_id != snapshot_id:
        raise CorruptObjectError(
            path, f"the header names snapshot {snapshot_id} but the payload {log.snapshot_id}"
        )
    return log
