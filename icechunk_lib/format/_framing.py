"""The envelope of every metadata file: header, checksum and zstd-compressed msgpack.

Layout (little-endian, 36 bytes, then the payload)::

    magic     4 bytes   b"\\x89ICK"
    version   uint16    format version (2; 3 for a snapshot with region pieces or a
                        manifest with source ETags)
    kind      uint8     ObjectKind
    codec     uint8     0 = raw msgpack, 1 = zstd(msgpack)
    object_id 12 bytes  the id in the object's key; zeros for refs and config (no id)
    length    uint64    payload length in bytes
    checksum  uint64    xxh3-64 of the header's first 28 bytes followed by the payload

An immutable object proves it is the object its key names: the decoder takes the id from
the key and refuses a file that carries another one (a file copied or restored under the
wrong name), so a valid object is never served as a different one.
"""

from __future__ import annotations

import enum
import struct
import threading
from typing import Any, TypeVar

import msgspec
import xxhash
import zstandard

from icechunk_lib.errors import (
    CorruptObjectError,
    ObjectIdMismatchError,
    RetiredFormatError,
    UnsupportedFormatError,
)
from icechunk_lib.format.ids import OBJECT_ID_BYTES, decode_id, encode_id

__all__ = [
    "ETAG_FORMAT_VERSION",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "REGION_FORMAT_VERSION",
    "ObjectKind",
    "content_checksum",
    "decode_object",
    "encode_object",
    "peek_version",
]

MAGIC = b"\x89ICK"
FORMAT_VERSION = 2
REGION_FORMAT_VERSION = 3
"""The version of a snapshot holding a manifest piece cut by region (``RegionRef``): a
version 2 reader would look such a piece up by row-major range and miss chunks, so it must
refuse the file. Every other file stays version 2."""
ETAG_FORMAT_VERSION = 3
"""The version of a manifest in which a virtual chunk carries its source's ETag: a version
2 reader would drop the ETag and serve a changed source unchecked, so it must refuse it."""
_KNOWN = (FORMAT_VERSION, REGION_FORMAT_VERSION, ETAG_FORMAT_VERSION)
_HEADER = struct.Struct("<4sHBB12sQQ")
HEADER_SIZE = _HEADER.size
_PREFIX = struct.Struct("<4sH")
_CHECKED = HEADER_SIZE - 8  # the checksum covers the header up to itself, then the payload
_NO_ID = bytes(OBJECT_ID_BYTES)

T = TypeVar("T")


class ObjectKind(enum.IntEnum):
    """What a metadata file holds; a decoder refuses a file of the wrong kind."""

    SNAPSHOT = 1
    MANIFEST = 2
    TRANSACTION_LOG = 3
    BRANCH = 4
    TAG = 5
    TAG_TOMBSTONE = 6
    CONFIG = 7
    REFLOG = 8
    GC_RECORD = 9
    EXPIRATION = 10

    @property
    def has_id(self) -> bool:
        """Whether files of this kind are immutable and named by the id in their header."""
        return self in _IDENTIFIED

    @property
    def label(self) -> str:
        """How messages name the kind (``transaction log``, ``reflog page``)."""
        if self is ObjectKind.REFLOG:
            return "reflog page"
        if self is ObjectKind.EXPIRATION:
            return "expiration record"
        if self is ObjectKind.GC_RECORD:
            return "gc record"
        return self.name.lower().replace("_", " ")


_IDENTIFIED = frozenset(
    {
        ObjectKind.SNAPSHOT,
        ObjectKind.MANIFEST,
        ObjectKind.TRANSACTION_LOG,
        ObjectKind.REFLOG,
        ObjectKind.EXPIRATION,
        ObjectKind.GC_RECORD,
    }
)


class _Codec(enum.IntEnum):
    RAW = 0
    ZSTD = 1


_local = threading.local()
_encoder = msgspec.msgpack.Encoder()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # zstd contexts are not safe for simultaneous use; keep one per thread and level.
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    comp = cache.get(level)
    if comp is None:
        comp = cache[level] = zstandard.ZstdCompressor(level=level)
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    dec: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if dec is None:
        dec = _local.decompressor = zstandard.ZstdDecompressor()
    return dec


MIN_COMPRESSED_SIZE = 16 * 1024
"""Payloads smaller than this (in msgpack bytes) are stored raw whatever the level."""


def content_checksum(data: bytes | bytearray | memoryview) -> int:
    """The 64-bit content checksum recorded for every chunk (xxh3-64)."""
    return int(xxhash.xxh3_64_intdigest(data))


def _checksum(head: bytes | bytearray | memoryview, payload: bytes | memoryview) -> int:
    hasher = xxhash.xxh3_64(head)
    hasher.update(payload)
    return int(hasher.intdigest())


def _raw_id(kind: ObjectKind, object_id: str | None) -> bytes | None:
    """The 12 header bytes naming an object of ``kind``, or None if ``object_id`` is no id.

    Passing an id for a kind without one, or none for a kind with one, is a caller error.
    """
    if not kind.has_id:
        if object_id is not None:
            raise ValueError(f"a {kind.label} has no object id, got {object_id!r}")
        return _NO_ID
    if object_id is None:
        raise ValueError(f"a {kind.label} must be named by its object id")
    try:
        raw = decode_id(object_id)
    except ValueError:
        return None
    return raw if len(raw) == OBJECT_ID_BYTES else None


def encode_object(
    kind: ObjectKind,
    obj: Any,
    *,
    object_id: str | None,
    compression_level: int | None = 3,
    version: int = FORMAT_VERSION,
) -> bytes:
    """Frame ``obj`` (a msgspec-encodable value) as a metadata file of ``kind``.

    ``object_id`` is the id in the file's key for immutable kinds (``ObjectKind.has_id``)
    and ``None`` for refs and config. ``compression_level=None`` stores raw msgpack (used
    for tiny objects such as refs); so does any payload under ``MIN_COMPRESSED_SIZE``, where
    zstd's fixed cost per call buys almost nothing.
    """
    raw_id = _raw_id(kind, object_id)
    if raw_id is None:
        raise ValueError(f"not a {OBJECT_ID_BYTES}-byte object id: {object_id!r}")
    raw = _encoder.encode(obj)
    if compression_level is None or len(raw) < MIN_COMPRESSED_SIZE:
        codec, payload = _Codec.RAW, raw
    else:
        codec, payload = _Codec.ZSTD, _compressor(compression_level).compress(raw)
    head = _HEADER.pack(MAGIC, version, int(kind), int(codec), raw_id, len(payload), 0)
    head = head[:_CHECKED]
    return head + _checksum(head, payload).to_bytes(8, "little") + payload


def _version_damaged(data: bytes) -> int | None:
    """The known version a whole file was written with if its version field alone was damaged.

    The checksum covers the version: if it matches once the field is set back to a known
    version, the file was written by this format and then damaged, not by another.
    """
    if len(data) < HEADER_SIZE:
        return None
    stored = int.from_bytes(data[_CHECKED:HEADER_SIZE], "little")
    for known in _KNOWN:
        head = bytearray(data[:_CHECKED])
        struct.pack_into("<H", head, 4, known)
        if _checksum(head, memoryview(data)[HEADER_SIZE:]) == stored:
            return known
    return None


def peek_version(data: bytes) -> int | None:
    """The version field of a metadata file (None if too short to have one); not checked."""
    if len(data) < _PREFIX.size:
        return None
    return int(_PREFIX.unpack_from(data)[1])


def _check_version(version: int, data: bytes, path: str, versions: tuple[int, ...]) -> None:
    if version in versions:
        return
    damaged = _version_damaged(data)
    if damaged is not None and damaged != version:
        raise CorruptObjectError(
            path,
            f"the format version field is damaged (it reads {version}, the checksum shows a "
            f"version {damaged} file)",
        )
    if version == 1:
        raise RetiredFormatError(
            path,
            "written by a pre-release ick (format version 1), which this ick no longer "
            f"reads: format {FORMAT_VERSION} files carry their own id so that a file stored "
            "under the wrong name is refused",
        )
    raise UnsupportedFormatError(
        path,
        f"format version {version} is not supported here (this ick reads "
        f"{' and '.join(map(str, versions))}); upgrade ick",
    )


def decode_object(
    data: bytes,
    kind: ObjectKind,
    type_: type[T],
    *,
    object_id: str | None,
    path: str,
    versions: tuple[int, ...] = (FORMAT_VERSION,),
) -> T:
    """Check and decode a metadata file; ``path`` names it in any error.

    ``object_id`` is the id in the key the file was read from (``None`` for refs and
    config): a file that carries another id is refused with ``ObjectIdMismatchError``.
    ``versions`` are the format versions a file of this kind may have.
    """
    expected_id = _raw_id(kind, object_id)
    if expected_id is None:
        raise CorruptObjectError(path, f"the key names no valid object id: {object_id!r}")
    # Magic and version first: they are where every format version starts.
    if len(data) >= _PREFIX.size:
        magic, version = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise CorruptObjectError(path, "not an ick metadata file (bad magic bytes)")
        _check_version(version, data, path, versions)
    if len(data) < HEADER_SIZE:
        raise CorruptObjectError(path, f"truncated: {len(data)} bytes is shorter than the header")
    _, _, got_kind, codec, found_id, length, checksum = _HEADER.unpack_from(data)
    if got_kind != kind:
        try:
            got_name = ObjectKind(got_kind).label
        except ValueError:
            got_name = f"unknown kind {got_kind}"
        raise CorruptObjectError(path, f"expected a {kind.label}, found a {got_name}")
    view = memoryview(data)
    payload = view[HEADER_SIZE:]
    if len(payload) != length:
        raise CorruptObjectError(
            path, f"truncated or padded: header says {length} payload bytes, found {len(payload)}"
        )
    if _checksum(view[:_CHECKED], payload) != checksum:
        raise CorruptObjectError(path, "checksum mismatch (the file was modified or damaged)")
    # The checksum vouches for the id, so a mismatch is a whole, valid file in the wrong place.
    if found_id != expected_id:
        if not kind.has_id:
            raise CorruptObjectError(
                path, f"a {kind.label} carries no object id, found {encode_id(found_id)}"
            )
        assert object_id is not None
        raise ObjectIdMismatchError(path, kind.label, object_id, encode_id(found_id))
    try:
        if codec == _Codec.ZSTD:
            raw: bytes | memoryview = _decompressor().decompress(payload)
        elif codec == _Codec.RAW:
            raw = payload
        else:
            raise CorruptObjectError(path, f"unknown compression codec {codec}")
        return msgspec.msgpack.decode(raw, type=type_)
    except (zstandard.ZstdError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CorruptObjectError(path, f"cannot decode payload: {exc}") from None
