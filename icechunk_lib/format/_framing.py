"""The envelope of every metadata file: header, checksum and zstd-compressed msgpack.

Layout (little-endian, 24 bytes, then the payload)::

    magic    4 bytes   b"\\x89ICK"
    version  uint16    format version (1)
    kind     uint8     ObjectKind
    codec    uint8     0 = raw msgpack, 1 = zstd(msgpack)
    length   uint64    payload length in bytes
    checksum uint64    xxh3-64 of the payload
"""

from __future__ import annotations

import enum
import struct
import threading
from typing import Any, TypeVar

import msgspec
import xxhash
import zstandard

from icechunk_lib.errors import CorruptObjectError, UnsupportedFormatError

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "ObjectKind",
    "content_checksum",
    "decode_object",
    "encode_object",
]

MAGIC = b"\x89ICK"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sHBBQQ")
HEADER_SIZE = _HEADER.size

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


def encode_object(kind: ObjectKind, obj: Any, *, compression_level: int | None = 3) -> bytes:
    """Frame ``obj`` (a msgspec-encodable value) as a metadata file of ``kind``.

    ``compression_level=None`` stores raw msgpack (used for tiny objects such as refs); so
    does any payload under ``MIN_COMPRESSED_SIZE``, where zstd's fixed cost per call buys
    almost nothing.
    """
    raw = _encoder.encode(obj)
    if compression_level is None or len(raw) < MIN_COMPRESSED_SIZE:
        codec, payload = _Codec.RAW, raw
    else:
        codec, payload = _Codec.ZSTD, _compressor(compression_level).compress(raw)
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        int(kind),
        int(codec),
        len(payload),
        xxhash.xxh3_64_intdigest(payload),
    )
    return header + payload


def decode_object(data: bytes, kind: ObjectKind, type_: type[T], *, path: str) -> T:
    """Check and decode a metadata file; ``path`` names it in any error."""
    if len(data) < HEADER_SIZE:
        raise CorruptObjectError(path, f"truncated: {len(data)} bytes is shorter than the header")
    magic, version, got_kind, codec, length, checksum = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptObjectError(path, "not an ick metadata file (bad magic bytes)")
    if version == 0 or version > FORMAT_VERSION:
        raise UnsupportedFormatError(
            path,
            f"format version {version} is not supported (this ick reads {FORMAT_VERSION}); "
            "upgrade ick",
        )
    if got_kind != kind:
        try:
            got_name = ObjectKind(got_kind).name.lower()
        except ValueError:
            got_name = f"unknown kind {got_kind}"
        raise CorruptObjectError(path, f"expected a {kind.name.lower()}, found a {got_name}")
    payload = memoryview(data)[HEADER_SIZE:]
    if len(payload) != length:
        raise CorruptObjectError(
            path, f"truncated or padded: header says {length} payload bytes, found {len(payload)}"
        )
    if xxhash.xxh3_64_intdigest(payload) != checksum:
        raise CorruptObjectError(path, "checksum mismatch (the file was modified or damaged)")
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
