"""Snapshots: one immutable object per commit holding the node tree and manifest references.

Each snapshot also carries a short summary of its nearest ancestors, so walking the history
reads one snapshot per ``ANCESTRY_SUMMARY_LENGTH + 1`` commits instead of one per commit.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from icechunk_lib.errors import CorruptObjectError
from icechunk_lib.format._framing import ObjectKind, decode_object, encode_object

__all__ = [
    "ANCESTRY_SUMMARY_LENGTH",
    "ARRAY",
    "GROUP",
    "AncestorSummary",
    "ExtraObject",
    "ManifestFileInfo",
    "ManifestRef",
    "NodeSnapshot",
    "Snapshot",
    "SnapshotHeader",
    "decode_snapshot",
    "decode_snapshot_header",
    "encode_snapshot",
]

ANCESTRY_SUMMARY_LENGTH = 100
GROUP = 1
ARRAY = 2


class ManifestRef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A piece of an array's chunk table: which manifest holds it and its coordinate range."""

    manifest_id: str
    first: tuple[int, ...]
    last: tuple[int, ...]
    count: int


class NodeSnapshot(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A group or array: stable id, path (``/`` or ``/a/b``), raw ``zarr.json`` bytes."""

    id: str
    path: str
    kind: int
    meta: bytes
    manifests: tuple[ManifestRef, ...] = ()


class ExtraObject(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A store key that is neither node metadata nor a chunk of a known array."""

    key: str
    length: int
    checksum: int
    data: bytes = b""
    chunk_id: bytes = b""


class AncestorSummary(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What ``ancestry`` prints of a snapshot, carried by its descendants."""

    id: str
    parent_id: str | None
    written_at: int
    message: str
    metadata: dict[str, Any]


class ManifestFileInfo(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A manifest object this snapshot uses, with its size (for gc and stats)."""

    id: str
    size_bytes: int
    num_refs: int


class SnapshotHeader(msgspec.Struct, frozen=True, gc=False):
    """The history fields of a snapshot, decodable without the node tree."""

    id: str
    parent_id: str | None
    written_at: int
    """Microseconds since the Unix epoch, UTC."""
    message: str
    metadata: dict[str, Any]
    ancestry: tuple[AncestorSummary, ...] = ()


class Snapshot(SnapshotHeader, frozen=True, gc=False):
    """A full snapshot: the history fields, then nodes (sorted by path) and extra keys.

    Subclassing keeps the header's fields first and in the same order, so
    ``decode_snapshot_header`` reads the same file (a map: it skips what it does not name).
    """

    nodes: tuple[NodeSnapshot, ...] = ()
    manifest_files: tuple[ManifestFileInfo, ...] = ()
    extras: tuple[ExtraObject, ...] = ()

    def summary(self) -> AncestorSummary:
        return AncestorSummary(
            self.id, self.parent_id, self.written_at, self.message, self.metadata
        )


_S = TypeVar("_S", Snapshot, SnapshotHeader)


def encode_snapshot(snapshot: Snapshot, *, compression_level: int = 3) -> bytes:
    """Frame a snapshot under its own id (``snapshots/<id>``)."""
    return encode_object(
        ObjectKind.SNAPSHOT, snapshot, object_id=snapshot.id, compression_level=compression_level
    )


def _checked(snap: _S, snapshot_id: str, path: str) -> _S:
    # The header already proved the id; the payload's copy must agree with it.
    if snap.id != snapshot_id:
        raise CorruptObjectError(
            path, f"the header names snapshot {snapshot_id} but the payload {snap.id}"
        )
    return snap


def decode_snapshot(data: bytes, snapshot_id: str, *, path: str) -> Snapshot:
    """Check and decode ``snapshots/<snapshot_id>``; a file of another snapshot is refused."""
    snap = decode_object(data, ObjectKind.SNAPSHOT, Snapshot, object_id=snapshot_id, path=path)
    return _checked(snap, snapshot_id, path)


def decode_snapshot_header(data: bytes, snapshot_id: str, *, path: str) -> SnapshotHeader:
    """Decode only the history fields (the node tree is skipped, not materialised)."""
    header = decode_object(
        data, ObjectKind.SNAPSHOT, SnapshotHeader, object_id=snapshot_id, path=path
    )
    return _checked(header, snapshot_id, path)
