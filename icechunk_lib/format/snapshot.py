"""Snapshots: one immutable object per commit holding the node tree and manifest references.

Each snapshot also carries a short summary of its nearest ancestors, so walking the history
reads one snapshot per ``ANCESTRY_SUMMARY_LENGTH + 1`` commits instead of one per commit.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from icechunk_lib.errors import CorruptObjectError
from icechunk_lib.format._framing import (
    FORMAT_VERSION,
    REGION_FORMAT_VERSION,
    ObjectKind,
    decode_object,
    encode_object,
    peek_version,
)

__all__ = [
    "ANCESTRY_SUMMARY_LENGTH",
    "ARRAY",
    "GROUP",
    "AncestorSummary",
    "ExtraObject",
    "ManifestFileInfo",
    "ManifestRef",
    "NodeSnapshot",
    "RegionRef",
    "Snapshot",
    "SnapshotHeader",
    "decode_snapshot",
    "decode_snapshot_header",
    "encode_snapshot",
    "has_regions",
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


class RegionRef(ManifestRef, frozen=True, array_like=True, gc=False):
    """A piece cut by chunk-grid region (manifest splitting): it holds only chunks inside the
    box ``lower..upper`` (inclusive, the tight bounds of its chunks), and its row-major range
    ``first..last`` may overlap other pieces' ranges, so readers select it by the box."""

    lower: tuple[int, ...]
    upper: tuple[int, ...]


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
_VERSIONS = (FORMAT_VERSION, REGION_FORMAT_VERSION)


class _WireRef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """How a version 3 snapshot's pieces decode: a ``RegionRef`` has the two trailing fields."""

    manifest_id: str
    first: tuple[int, ...]
    last: tuple[int, ...]
    count: int
    lower: tuple[int, ...] | None = None
    upper: tuple[int, ...] | None = None


class _WireNode(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: str
    path: str
    kind: int
    meta: bytes
    manifests: tuple[_WireRef, ...] = ()


class _WireSnapshot(Snapshot, frozen=True, gc=False):
    """A ``Snapshot`` whose nodes decode with ``_WireRef`` pieces; every other field, present
    or added later, is inherited, so nothing of a version 3 snapshot is dropped."""

    nodes: tuple[_WireNode, ...] = ()  # type: ignore[assignment]  # decoded, then converted


def _piece(ref: _WireRef) -> ManifestRef:
    if ref.lower is None or ref.upper is None:
        return ManifestRef(ref.manifest_id, ref.first, ref.last, ref.count)
    return RegionRef(ref.manifest_id, ref.first, ref.last, ref.count, ref.lower, ref.upper)


def _from_wire(wire: _WireSnapshot) -> Snapshot:
    fields = {name: getattr(wire, name) for name in Snapshot.__struct_fields__}
    fields["nodes"] = tuple(
        NodeSnapshot(n.id, n.path, n.kind, n.meta, tuple(map(_piece, n.manifests)))
        for n in wire.nodes
    )
    return Snapshot(**fields)


def has_regions(snapshot: Snapshot) -> bool:
    """Whether any array of ``snapshot`` has a piece cut by region (written as version 3)."""
    return any(type(m) is RegionRef for n in snapshot.nodes for m in n.manifests)


def encode_snapshot(snapshot: Snapshot, *, compression_level: int = 3) -> bytes:
    """Frame a snapshot under its own id (``snapshots/<id>``); version 3 only if it holds a
    ``RegionRef``, so every other snapshot stays readable by version 2 readers."""
    return encode_object(
        ObjectKind.SNAPSHOT,
        snapshot,
        object_id=snapshot.id,
        compression_level=compression_level,
        version=REGION_FORMAT_VERSION if has_regions(snapshot) else FORMAT_VERSION,
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
    if peek_version(data) == REGION_FORMAT_VERSION:
        wire = decode_object(
            data,
            ObjectKind.SNAPSHOT,
            _WireSnapshot,
            object_id=snapshot_id,
            path=path,
            versions=_VERSIONS,
        )
        return _checked(_from_wire(wire), snapshot_id, path)
    snap = decode_object(data, ObjectKind.SNAPSHOT, Snapshot, object_id=snapshot_id, path=path)
    return _checked(snap, snapshot_id, path)


def decode_snapshot_header(data: bytes, snapshot_id: str, *, path: str) -> SnapshotHeader:
    """Decode only the history fields (the node tree is skipped, not materialised)."""
    header = decode_object(
        data,
        ObjectKind.SNAPSHOT,
        SnapshotHeader,
        object_id=snapshot_id,
        path=path,
        versions=_VERSIONS,
    )
    return _checked(header, snapshot_id, path)
