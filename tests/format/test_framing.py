"""The metadata envelope: header layout, round trips, and rejection of every damaged file."""

from __future__ import annotations

import re
import struct
import threading
from typing import Any

import msgspec
import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from icechunk_lib.errors import CorruptObjectError, UnsupportedFormatError
from icechunk_lib.format import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    ObjectKind,
    content_checksum,
    decode_object,
    encode_object,
)
from icechunk_lib.format._framing import MIN_COMPRESSED_SIZE

from .strategies import json_values, kinds, levels

PATH = "snapshots/0123456789ABCDEFGHJK in memory://test"
VERSION_BYTES = (4, 5)


def _decode(data: bytes, kind: ObjectKind, path: str = PATH) -> Any:
    return decode_object(data, kind, Any, path=path)


def _named(exc: pytest.ExceptionInfo[CorruptObjectError], path: str = PATH) -> None:
    assert exc.value.path == path
    assert path in str(exc.value)


# --- layout ----------------------------------------------------------------------------------


def test_header_layout_is_the_documented_one() -> None:
    data = encode_object(ObjectKind.MANIFEST, {"a": "x" * MIN_COMPRESSED_SIZE}, compression_level=3)
    magic, version, kind, codec, length, checksum = struct.unpack_from("<4sHBBQQ", data)
    assert HEADER_SIZE == 24
    assert (magic, version, kind, codec) == (MAGIC, FORMAT_VERSION, ObjectKind.MANIFEST, 1)
    assert length == len(data) - HEADER_SIZE
    assert checksum == xxhash.xxh3_64_intdigest(data[HEADER_SIZE:])


def test_small_payloads_are_stored_raw_whatever_the_level() -> None:
    small = {"a": "x" * (MIN_COMPRESSED_SIZE - 100)}
    large = {"a": "x" * MIN_COMPRESSED_SIZE}
    raw = encode_object(ObjectKind.SNAPSHOT, small, compression_level=3)
    packed = encode_object(ObjectKind.SNAPSHOT, large, compression_level=3)
    assert raw[7] == 0 and raw[HEADER_SIZE:] == msgspec.msgpack.encode(small)
    assert packed[7] == 1 and len(packed) < MIN_COMPRESSED_SIZE
    assert _decode(raw, ObjectKind.SNAPSHOT) == small
    assert _decode(packed, ObjectKind.SNAPSHOT) == large


@given(obj=json_values)
def test_uncompressed_payload_is_plain_msgpack(obj: Any) -> None:
    data = encode_object(ObjectKind.BRANCH, obj, compression_level=None)
    assert data[7] == 0
    assert data[HEADER_SIZE:] == msgspec.msgpack.encode(obj)


def test_object_kinds_are_stable() -> None:
    # These numbers are on disk: renumbering them breaks every existing repository.
    assert {k.name: int(k) for k in ObjectKind} == {
        "SNAPSHOT": 1,
        "MANIFEST": 2,
        "TRANSACTION_LOG": 3,
        "BRANCH": 4,
        "TAG": 5,
        "TAG_TOMBSTONE": 6,
        "CONFIG": 7,
        "REFLOG": 8,
    }


@given(data=st.binary(max_size=64))
def test_content_checksum_is_xxh3_64(data: bytes) -> None:
    assert content_checksum(data) == xxhash.xxh3_64_intdigest(data)
    assert content_checksum(memoryview(data)) == content_checksum(bytearray(data))
    assert 0 <= content_checksum(data) < 2**64


# --- round trips -----------------------------------------------------------------------------


@given(kind=kinds, level=levels, obj=json_values)
def test_round_trip(kind: ObjectKind, level: int | None, obj: Any) -> None:
    data = encode_object(kind, obj, compression_level=level)
    assert data.startswith(MAGIC)
    assert _decode(data, kind) == obj


def test_encoding_from_many_threads_at_once() -> None:
    # Compressor contexts are per thread; sharing one would corrupt output.
    payloads = [list(range(i, i + 300)) for i in range(8)]
    errors: list[BaseException] = []

    def work(obj: list[int]) -> None:
        try:
            for _ in range(50):
                assert _decode(encode_object(ObjectKind.SNAPSHOT, obj), ObjectKind.SNAPSHOT) == obj
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# --- corruption ------------------------------------------------------------------------------


@given(
    kind=kinds,
    level=levels,
    obj=json_values,
    mask=st.integers(1, 255),
    data=st.data(),
)
def test_any_flipped_byte_is_rejected(
    kind: ObjectKind, level: int | None, obj: Any, mask: int, data: st.DataObject
) -> None:
    encoded = bytearray(encode_object(kind, obj, compression_level=level))
    index = data.draw(st.integers(0, len(encoded) - 1), label="index")
    encoded[index] ^= mask
    expected = UnsupportedFormatError if index in VERSION_BYTES else CorruptObjectError
    with pytest.raises(CorruptObjectError) as exc:
        _decode(bytes(encoded), kind)
    assert type(exc.value) is expected
    _named(exc)


@given(kind=kinds, level=levels, obj=json_values, data=st.data())
def test_any_truncation_is_rejected(
    kind: ObjectKind, level: int | None, obj: Any, data: st.DataObject
) -> None:
    encoded = encode_object(kind, obj, compression_level=level)
    cut = data.draw(st.integers(0, len(encoded) - 1), label="length")
    with pytest.raises(CorruptObjectError) as exc:
        _decode(encoded[:cut], kind)
    assert type(exc.value) is CorruptObjectError
    _named(exc)


@given(kind=kinds, obj=json_values, extra=st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_rejected(kind: ObjectKind, obj: Any, extra: bytes) -> None:
    with pytest.raises(CorruptObjectError, match="padded") as exc:
        _decode(encode_object(kind, obj) + extra, kind)
    _named(exc)


@given(written=kinds, wanted=kinds, obj=json_values)
def test_wrong_kind_is_rejected_naming_both(
    written: ObjectKind, wanted: ObjectKind, obj: Any
) -> None:
    data = encode_object(written, obj)
    if written == wanted:
        assert _decode(data, wanted) == obj
        return
    with pytest.raises(CorruptObjectError) as exc:
        _decode(data, wanted)
    message = str(exc.value)
    for kind in (written, wanted):
        assert re.search(rf"\b{kind.name.lower()}\b", message), message
    _named(exc)


@pytest.mark.parametrize("version", [0, FORMAT_VERSION + 1, 2**16 - 1])
def test_unknown_format_version(version: int) -> None:
    data = bytearray(encode_object(ObjectKind.CONFIG, {"x": 1}))
    struct.pack_into("<H", data, 4, version)
    with pytest.raises(UnsupportedFormatError, match=rf"version {version}\b") as exc:
        _decode(bytes(data), ObjectKind.CONFIG)
    _named(exc)
    assert "upgrade" in str(exc.value)


def test_unknown_kind_and_codec_are_named() -> None:
    data = bytearray(encode_object(ObjectKind.TAG, [1, 2]))
    data[6] = 99
    with pytest.raises(CorruptObjectError, match="unknown kind 99"):
        _decode(bytes(data), ObjectKind.TAG)
    data = bytearray(encode_object(ObjectKind.TAG, [1, 2]))
    data[7] = 9
    with pytest.raises(CorruptObjectError, match="codec 9") as exc:
        _decode(bytes(data), ObjectKind.TAG)
    _named(exc)


def test_valid_frame_of_the_wrong_shape_is_corrupt() -> None:
    class Record(msgspec.Struct):
        name: str

    data = encode_object(ObjectKind.BRANCH, {"name": 3})
    with pytest.raises(CorruptObjectError, match="cannot decode") as exc:
        decode_object(data, ObjectKind.BRANCH, Record, path=PATH)
    _named(exc)


@pytest.mark.parametrize("path", ["", "refs/branch/main/ref in /tmp/x y", "config"])
def test_the_given_path_is_named_verbatim(path: str) -> None:
    with pytest.raises(CorruptObjectError) as exc:
        _decode(b"garbage", ObjectKind.CONFIG, path=path)
    _named(exc, path)
