"""The metadata envelope: header layout, round trips, rejection of every damaged file, and of
every intact file read under another object's key."""

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

from icechunk_lib.errors import (
    CorruptObjectError,
    ObjectIdMismatchError,
    RetiredFormatError,
    UnsupportedFormatError,
)
from icechunk_lib.format import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    ObjectKind,
    content_checksum,
    decode_object,
    encode_id,
    encode_object,
)
from icechunk_lib.format._framing import MIN_COMPRESSED_SIZE

from .strategies import json_values, kinds, levels, object_ids

PATH = "snapshots/0123456789ABCDEFGHJK in memory://test"
OBJECT_ID = "041061050R3GG28A1C60"
VERSION_BYTES = (4, 5)
ID_BYTES = range(8, 20)


def _id(kind: ObjectKind) -> str | None:
    return OBJECT_ID if kind.has_id else None


def _encode(kind: ObjectKind, obj: Any, level: int | None = 3) -> bytes:
    return encode_object(kind, obj, object_id=_id(kind), compression_level=level)


def _decode(data: bytes, kind: ObjectKind, path: str = PATH) -> Any:
    return decode_object(data, kind, Any, object_id=_id(kind), path=path)


def _named(exc: pytest.ExceptionInfo[CorruptObjectError], path: str = PATH) -> None:
    assert exc.value.path == path
    assert path in str(exc.value)


# --- layout ----------------------------------------------------------------------------------


def test_header_layout_is_the_documented_one() -> None:
    data = _encode(ObjectKind.MANIFEST, {"a": "x" * MIN_COMPRESSED_SIZE})
    magic, version, kind, codec, raw_id, length, checksum = struct.unpack_from("<4sHBB12sQQ", data)
    assert HEADER_SIZE == 36
    assert (magic, version, kind, codec) == (MAGIC, 2, ObjectKind.MANIFEST, 1)
    assert FORMAT_VERSION == 2
    assert encode_id(raw_id) == OBJECT_ID
    assert length == len(data) - HEADER_SIZE
    # The checksum covers everything but itself: the header up to it, then the payload.
    assert checksum == xxhash.xxh3_64_intdigest(data[:28] + data[HEADER_SIZE:])


@pytest.mark.parametrize("kind", [k for k in ObjectKind if not k.has_id])
def test_refs_and_config_carry_no_id(kind: ObjectKind) -> None:
    assert _encode(kind, {"x": 1})[8:20] == bytes(12)
    with pytest.raises(ValueError, match="no object id"):
        encode_object(kind, {"x": 1}, object_id=OBJECT_ID)
    with pytest.raises(ValueError, match="no object id"):
        decode_object(_encode(kind, {"x": 1}), kind, Any, object_id=OBJECT_ID, path=PATH)


@pytest.mark.parametrize("kind", [k for k in ObjectKind if k.has_id])
def test_immutable_objects_must_be_named(kind: ObjectKind) -> None:
    # Every immutable kind is named by its id: neither side may leave it out.
    assert {k for k in ObjectKind if k.has_id} == {
        ObjectKind.SNAPSHOT,
        ObjectKind.MANIFEST,
        ObjectKind.TRANSACTION_LOG,
        ObjectKind.REFLOG,
        ObjectKind.EXPIRATION,
        ObjectKind.GC_RECORD,
    }
    with pytest.raises(ValueError, match="must be named"):
        encode_object(kind, {"x": 1}, object_id=None)
    with pytest.raises(ValueError, match="must be named"):
        decode_object(_encode(kind, {"x": 1}), kind, Any, object_id=None, path=PATH)
    with pytest.raises(ValueError, match="object id"):
        encode_object(kind, {"x": 1}, object_id="M")


def test_small_payloads_are_stored_raw_whatever_the_level() -> None:
    small = {"a": "x" * (MIN_COMPRESSED_SIZE - 100)}
    large = {"a": "x" * MIN_COMPRESSED_SIZE}
    raw = _encode(ObjectKind.SNAPSHOT, small)
    packed = _encode(ObjectKind.SNAPSHOT, large)
    assert raw[7] == 0 and raw[HEADER_SIZE:] == msgspec.msgpack.encode(small)
    assert packed[7] == 1 and len(packed) < MIN_COMPRESSED_SIZE
    assert _decode(raw, ObjectKind.SNAPSHOT) == small
    assert _decode(packed, ObjectKind.SNAPSHOT) == large


@given(obj=json_values)
def test_uncompressed_payload_is_plain_msgpack(obj: Any) -> None:
    data = _encode(ObjectKind.BRANCH, obj, None)
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
        "GC_RECORD": 9,
        "EXPIRATION": 10,
    }


@given(data=st.binary(max_size=64))
def test_content_checksum_is_xxh3_64(data: bytes) -> None:
    assert content_checksum(data) == xxhash.xxh3_64_intdigest(data)
    assert content_checksum(memoryview(data)) == content_checksum(bytearray(data))
    assert 0 <= content_checksum(data) < 2**64


# --- round trips -----------------------------------------------------------------------------


@given(kind=kinds, level=levels, obj=json_values)
def test_round_trip(kind: ObjectKind, level: int | None, obj: Any) -> None:
    data = _encode(kind, obj, level)
    assert data.startswith(MAGIC)
    assert _decode(data, kind) == obj


def test_encoding_from_many_threads_at_once() -> None:
    # Compressor contexts are per thread; sharing one would corrupt output.
    payloads = [list(range(i, i + 300)) for i in range(8)]
    errors: list[BaseException] = []

    def work(obj: list[int]) -> None:
        try:
            for _ in range(50):
                assert _decode(_encode(ObjectKind.SNAPSHOT, obj), ObjectKind.SNAPSHOT) == obj
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
    encoded = bytearray(_encode(kind, obj, level))
    index = data.draw(st.integers(0, len(encoded) - 1), label="index")
    encoded[index] ^= mask
    # The checksum covers the whole header: a damaged id is damage, never a file of another
    # object, and a damaged version is damage, never a file of another format.
    with pytest.raises(CorruptObjectError) as exc:
        _decode(bytes(encoded), kind)
    assert type(exc.value) is CorruptObjectError
    _named(exc)
    if index in VERSION_BYTES:
        assert "version field is damaged" in str(exc.value)


@given(kind=kinds, level=levels, obj=json_values, data=st.data())
def test_any_truncation_is_rejected(
    kind: ObjectKind, level: int | None, obj: Any, data: st.DataObject
) -> None:
    encoded = _encode(kind, obj, level)
    cut = data.draw(st.integers(0, len(encoded) - 1), label="length")
    with pytest.raises(CorruptObjectError) as exc:
        _decode(encoded[:cut], kind)
    assert type(exc.value) is CorruptObjectError
    _named(exc)


@given(kind=kinds, obj=json_values, extra=st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_rejected(kind: ObjectKind, obj: Any, extra: bytes) -> None:
    with pytest.raises(CorruptObjectError, match="padded") as exc:
        _decode(_encode(kind, obj) + extra, kind)
    _named(exc)


@given(written=kinds, wanted=kinds, obj=json_values)
def test_wrong_kind_is_rejected_naming_both(
    written: ObjectKind, wanted: ObjectKind, obj: Any
) -> None:
    data = _encode(written, obj)
    if written == wanted:
        assert _decode(data, wanted) == obj
        return
    with pytest.raises(CorruptObjectError) as exc:
        _decode(data, wanted)
    message = str(exc.value)
    for kind in (written, wanted):
        assert re.search(rf"\b{kind.label}\b", message), message
    _named(exc)


@pytest.mark.parametrize("version", [0, FORMAT_VERSION + 1, 2**16 - 1])
def test_unknown_format_version(version: int) -> None:
    # A file another format version wrote: its checksum matches its own header.
    data = bytearray(_encode(ObjectKind.CONFIG, {"x": 1}))
    struct.pack_into("<H", data, 4, version)
    data = bytearray(_recheck(data, 6, int(ObjectKind.CONFIG)))
    with pytest.raises(UnsupportedFormatError, match=rf"version {version}\b") as exc:
        _decode(bytes(data), ObjectKind.CONFIG)
    _named(exc)
    assert "upgrade" in str(exc.value)


def _recheck(data: bytearray, index: int, value: int) -> bytes:
    """``data`` with byte ``index`` set to ``value`` and the checksum made to match again."""
    data[index] = value
    data[28:36] = xxhash.xxh3_64_intdigest(bytes(data[:28] + data[36:])).to_bytes(8, "little")
    return bytes(data)


def test_format_version_1_is_refused_as_pre_release() -> None:
    # A version 1 file (24-byte header, no id) is named, with what to do, not misread.
    payload = msgspec.msgpack.encode({"x": 1})
    v1 = struct.pack("<4sHBBQQ", MAGIC, 1, 7, 0, len(payload), 0) + payload
    with pytest.raises(RetiredFormatError, match="pre-release") as exc:
        _decode(v1, ObjectKind.CONFIG)
    _named(exc)
    assert "format version 1" in str(exc.value)


def test_unknown_kind_and_codec_are_named() -> None:
    data = bytearray(_encode(ObjectKind.TAG, [1, 2]))
    data[6] = 99
    with pytest.raises(CorruptObjectError, match="unknown kind 99"):
        _decode(bytes(data), ObjectKind.TAG)
    data = _recheck(bytearray(_encode(ObjectKind.TAG, [1, 2])), 7, 9)
    with pytest.raises(CorruptObjectError, match="codec 9") as exc:
        _decode(bytes(data), ObjectKind.TAG)
    _named(exc)


def test_valid_frame_of_the_wrong_shape_is_corrupt() -> None:
    class Record(msgspec.Struct):
        name: str

    data = _encode(ObjectKind.BRANCH, {"name": 3})
    with pytest.raises(CorruptObjectError, match="cannot decode") as exc:
        decode_object(data, ObjectKind.BRANCH, Record, object_id=None, path=PATH)
    _named(exc)


@pytest.mark.parametrize("path", ["", "refs/branch/main/ref in /tmp/x y", "config"])
def test_the_given_path_is_named_verbatim(path: str) -> None:
    with pytest.raises(CorruptObjectError) as exc:
        _decode(b"garbage", ObjectKind.CONFIG, path=path)
    _named(exc, path)


# --- identity: an intact file under another object's key ---------------------------------------


@given(
    kind=st.sampled_from([k for k in ObjectKind if k.has_id]),
    level=levels,
    obj=json_values,
    written=object_ids,
    wanted=object_ids,
)
def test_any_id_mismatch_is_refused(
    kind: ObjectKind, level: int | None, obj: Any, written: str, wanted: str
) -> None:
    data = encode_object(kind, obj, object_id=written, compression_level=level)
    if written == wanted:
        assert decode_object(data, kind, Any, object_id=wanted, path=PATH) == obj
        return
    with pytest.raises(ObjectIdMismatchError) as exc:
        decode_object(data, kind, Any, object_id=wanted, path=PATH)
    err = exc.value
    assert (err.expected_id, err.found_id, err.kind) == (wanted, written, kind.label)
    message = str(err)
    assert written in message and wanted in message and "wrong name" in message
    _named(exc)


@given(
    kind=st.sampled_from([k for k in ObjectKind if not k.has_id]),
    raw=st.binary(min_size=12, max_size=12),
)
def test_an_id_in_a_ref_or_config_is_corrupt(kind: ObjectKind, raw: bytes) -> None:
    data = bytearray(_encode(kind, {"x": 1}))
    data[8:20] = raw
    data = bytearray(_recheck(data, 6, int(kind)))
    if raw == bytes(12):
        assert _decode(bytes(data), kind) == {"x": 1}
        return
    with pytest.raises(CorruptObjectError, match="carries no object id") as exc:
        _decode(bytes(data), kind)
    _named(exc)


@pytest.mark.parametrize(
    "key_id", ["", "M", "041061050R3GG28A1C6", "041061050R3GG28A1C61", "041061050R3GG28A1C600"]
)
def test_a_key_without_a_valid_id_names_the_file(key_id: str) -> None:
    data = _encode(ObjectKind.MANIFEST, [1])
    with pytest.raises(CorruptObjectError, match="no valid object id") as exc:
        decode_object(data, ObjectKind.MANIFEST, Any, object_id=key_id, path=PATH)
    _named(exc)
