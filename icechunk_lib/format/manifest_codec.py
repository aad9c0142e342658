"""The bytes of a manifest object: its chunk tables as little-endian columns, checked on decode.

``ChunkTable`` (``manifest.py``) is the in-memory form; this module turns a ``ManifestFile``
into one framed object and back. A decoded table is checked row by row (vectorised), so a
damaged or hostile manifest is refused as corrupt instead of misreading chunks later.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
from msgspec.structs import asdict

from icechunk_lib.errors import CorruptObjectError
from icechunk_lib.format._framing import (
    ETAG_FORMAT_VERSION,
    FORMAT_VERSION,
    ObjectKind,
    decode_object,
    encode_object,
    peek_version,
)
from icechunk_lib.format.ids import OBJECT_ID_BYTES
from icechunk_lib.format.manifest import (
    INLINE,
    MAX_KEY,
    NATIVE,
    VIRTUAL,
    ChunkTable,
    ManifestFile,
)

__all__ = ["decode_manifest", "encode_manifest"]


class _EncodedTable(msgspec.Struct, array_like=True, gc=False):
    node_id: str
    key_shape: list[int]
    keys: bytes
    kinds: bytes
    chunk_ids: bytes
    offsets: bytes
    lengths: bytes
    checksums: bytes
    inline_data: bytes
    location_index: bytes
    locations: list[str]


class _EncodedManifest(msgspec.Struct, array_like=True, gc=False):
    tables: list[_EncodedTable]


class _EtagTable(_EncodedTable, array_like=True, gc=False):
    """A version 3 table: ``_EncodedTable`` and the ETag of each location."""

    location_etags: list[str] = []


class _EtagManifest(msgspec.Struct, array_like=True, gc=False):
    """A version 3 manifest: some virtual chunk carries its source's ETag. A version 2
    reader would drop the ETag and serve bytes of a changed source unchecked, so such a
    manifest is written as version 3, which it refuses; every other stays version 2."""

    tables: list[_EtagTable]


def encode_manifest(manifest: ManifestFile, *, compression_level: int = 3) -> bytes:
    """Encode a manifest file (framed, checksummed, compressed)."""
    tables = [_encode_table(t) for t in manifest.tables.values()]
    if any(type(t) is _EtagTable for t in tables):
        etagged = [t if type(t) is _EtagTable else _EtagTable(**asdict(t)) for t in tables]
        return encode_object(
            ObjectKind.MANIFEST,
            _EtagManifest(tables=etagged),
            object_id=manifest.id,
            compression_level=compression_level,
            version=ETAG_FORMAT_VERSION,
        )
    return encode_object(
        ObjectKind.MANIFEST,
        _EncodedManifest(tables=tables),
        object_id=manifest.id,
        compression_level=compression_level,
    )


def decode_manifest(data: bytes, manifest_id: str, *, path: str) -> ManifestFile:
    """Decode and check ``manifests/<manifest_id>`` (another manifest is refused); errors
    name ``path``."""
    enc: _EncodedManifest | _EtagManifest
    if peek_version(data) == ETAG_FORMAT_VERSION:
        enc = decode_object(
            data,
            ObjectKind.MANIFEST,
            _EtagManifest,
            object_id=manifest_id,
            path=path,
            versions=(FORMAT_VERSION, ETAG_FORMAT_VERSION),
        )
    else:
        enc = decode_object(
            data, ObjectKind.MANIFEST, _EncodedManifest, object_id=manifest_id, path=path
        )
    try:
        tables = {t.node_id: _decode_table(t) for t in enc.tables}
    except ValueError as exc:
        raise CorruptObjectError(path, str(exc)) from None
    return ManifestFile(id=manifest_id, tables=tables)


def _encode_table(table: ChunkTable) -> _EncodedTable:
    columns = _EncodedTable(
        node_id=table.node_id,
        key_shape=list(table.key_shape),
        keys=table.keys.astype("<i8", copy=False).tobytes(),
        kinds=table.kinds.tobytes(),
        chunk_ids=table.chunk_ids.tobytes(),
        offsets=table.offsets.astype("<u8", copy=False).tobytes(),
        lengths=table.lengths.astype("<u8", copy=False).tobytes(),
        checksums=table.checksums.astype("<u8", copy=False).tobytes(),
        inline_data=table.inline_data,
        location_index=table.location_index.astype("<i4", copy=False).tobytes(),
        locations=table.locations,
    )
    if table.location_etags:
        return _EtagTable(**asdict(columns), location_etags=table.location_etags)
    return columns


def _decode_table(enc: _EncodedTable) -> ChunkTable:
    n = len(enc.keys) // 8
    ids = np.frombuffer(enc.chunk_ids, dtype=np.uint8)
    table = ChunkTable(
        node_id=enc.node_id,
        key_shape=tuple(enc.key_shape),
        keys=np.frombuffer(enc.keys, dtype="<i8").astype(np.int64, copy=False),
        kinds=np.frombuffer(enc.kinds, dtype=np.uint8),
        chunk_ids=ids.reshape(n, OBJECT_ID_BYTES),
        offsets=np.frombuffer(enc.offsets, dtype="<u8").astype(np.uint64, copy=False),
        lengths=np.frombuffer(enc.lengths, dtype="<u8").astype(np.uint64, copy=False),
        checksums=np.frombuffer(enc.checksums, dtype="<u8").astype(np.uint64, copy=False),
        inline_data=enc.inline_data,
        location_index=np.frombuffer(enc.location_index, dtype="<i4").astype(np.int32, copy=False),
        locations=enc.locations,
        location_etags=enc.location_etags if isinstance(enc, _EtagTable) else [],
    )
    sizes = {
        len(table.kinds),
        len(table.chunk_ids),
        len(table.offsets),
        len(table.lengths),
        len(table.checksums),
        len(table.location_index),
    }
    if sizes != {n} or len(enc.keys) % 8 or len(enc.chunk_ids) != n * OBJECT_ID_BYTES:
        raise ValueError(f"columns of node {enc.node_id} have inconsistent lengths")
    if table.location_etags and len(table.location_etags) != len(table.locations):
        raise ValueError(f"node {enc.node_id}: location ETags do not match the locations")
    _check_rows(table)
    return table


def _check_rows(table: ChunkTable) -> None:
    """Reject rows a correct writer never produces (vectorised; runs on every decode)."""
    where = f"node {table.node_id}"
    if any(int(s) < 1 for s in table.key_shape) or math.prod(table.key_shape) > MAX_KEY:
        raise ValueError(f"{where}: invalid key shape {table.key_shape}")
    keys = table.keys
    if len(keys) and (int(keys[0]) < 0 or int(keys[-1]) >= math.prod(table.key_shape)):
        raise ValueError(f"{where}: chunk keys outside the key shape")
    if len(keys) > 1 and not bool((keys[1:] > keys[:-1]).all()):
        raise ValueError(f"{where}: chunk keys are not strictly increasing")
    kinds = table.kinds
    if not bool(np.isin(kinds, (NATIVE, INLINE, VIRTUAL)).all()):
        raise ValueError(f"{where}: unknown chunk reference kind")
    inline = kinds == INLINE
    if inline.any():
        ends = table.offsets[inline] + table.lengths[inline]
        if int(ends.max()) > len(table.inline_data):
            raise ValueError(f"{where}: inline chunk past the end of the inline data")
    virtual = kinds == VIRTUAL
    if virtual.any():
        idx = table.location_index[virtual]
        if int(idx.min()) < 0 or int(idx.max()) >= len(table.locations):
            raise ValueError(f"{where}: virtual chunk with an unknown location")
