"""Snapshots: full round trip, header-only decoding, and damaged files."""

from __future__ import annotations

import msgspec
import pytest
import xxhash
from hypothesis import assume, given
from hypothesis import strategies as st

from icechunk_lib.errors import CorruptObjectError, ObjectIdMismatchError, UnsupportedFormatError
from icechunk_lib.format import ObjectKind, decode_object, encode_object
from icechunk_lib.format._framing import FORMAT_VERSION, REGION_FORMAT_VERSION
from icechunk_lib.format.snapshot import (
    ANCESTRY_SUMMARY_LENGTH,
    ARRAY,
    GROUP,
    AncestorSummary,
    ExtraObject,
    ManifestFileInfo,
    ManifestRef,
    NodeSnapshot,
    RegionRef,
    Snapshot,
    SnapshotHeader,
    decode_snapshot,
    decode_snapshot_header,
    encode_snapshot,
)

from .strategies import metadata, node_ids, object_ids, u64

PATH = "snapshots/0123456789ABCDEFGHJK in /data/repo"

times = st.integers(0, 2**63 - 1)
paths = st.lists(st.text(min_size=1, max_size=6).filter(lambda s: "/" not in s), max_size=3).map(
    lambda parts: "/" + "/".join(parts)
)
coords = st.lists(st.integers(0, 2**32), min_size=0, max_size=3).map(tuple)

manifest_refs = st.builds(ManifestRef, object_ids, coords, coords, st.integers(0, 2**32))
nodes = st.builds(
    NodeSnapshot,
    node_ids,
    paths,
    st.sampled_from([GROUP, ARRAY]),
    st.binary(max_size=40),
    st.lists(manifest_refs, max_size=3).map(tuple),
)
summaries = st.builds(
    AncestorSummary, object_ids, st.none() | object_ids, times, st.text(max_size=20), metadata
)
extras = st.builds(
    ExtraObject,
    st.text(min_size=1, max_size=10),
    u64,
    u64,
    st.binary(max_size=10),
    st.sampled_from([b"", bytes(12)]),
)
snapshots = st.builds(
    Snapshot,
    id=object_ids,
    parent_id=st.none() | object_ids,
    written_at=times,
    message=st.text(max_size=40),
    metadata=metadata,
    ancestry=st.lists(summaries, max_size=4).map(tuple),
    nodes=st.lists(nodes, max_size=4).map(tuple),
    manifest_files=st.lists(st.builds(ManifestFileInfo, object_ids, u64, u64), max_size=3).map(
        tuple
    ),
    extras=st.lists(extras, max_size=3).map(tuple),
)


@given(snapshot=snapshots, level=st.integers(1, 22))
def test_round_trip(snapshot: Snapshot, level: int) -> None:
    data = encode_snapshot(snapshot, compression_level=level)
    assert decode_snapshot(data, snapshot.id, path=PATH) == snapshot


@given(snapshot=snapshots)
def test_header_is_the_history_fields(snapshot: Snapshot) -> None:
    header = decode_snapshot_header(encode_snapshot(snapshot), snapshot.id, path=PATH)
    assert header == SnapshotHeader(
        snapshot.id,
        snapshot.parent_id,
        snapshot.written_at,
        snapshot.message,
        snapshot.metadata,
        snapshot.ancestry,
    )


@given(snapshot=snapshots)
def test_summary_is_what_descendants_carry(snapshot: Snapshot) -> None:
    summary = snapshot.summary()
    assert (summary.id, summary.parent_id, summary.written_at) == (
        snapshot.id,
        snapshot.parent_id,
        snapshot.written_at,
    )
    assert (summary.message, summary.metadata) == (snapshot.message, snapshot.metadata)


def test_ancestry_summary_length_is_positive() -> None:
    assert ANCESTRY_SUMMARY_LENGTH >= 1


@given(snapshot=snapshots, data=st.data(), mask=st.integers(1, 255))
def test_damaged_snapshot_is_rejected_by_both_decoders(
    snapshot: Snapshot, data: st.DataObject, mask: int
) -> None:
    encoded = bytearray(encode_snapshot(snapshot))
    if data.draw(st.booleans(), label="truncate"):
        encoded = encoded[: data.draw(st.integers(0, len(encoded) - 1), label="length")]
    else:
        encoded[data.draw(st.integers(0, len(encoded) - 1), label="index")] ^= mask
    for decode in (decode_snapshot, decode_snapshot_header):
        with pytest.raises(CorruptObjectError) as exc:
            decode(bytes(encoded), snapshot.id, path=PATH)
        assert exc.value.path == PATH and PATH in str(exc.value)


def test_bumped_version_is_unsupported() -> None:
    snapshot = Snapshot("0" * 20, None, 0, "m", {})
    encoded = bytearray(encode_snapshot(snapshot))
    encoded[4] += 2  # as a newer writer would: the checksum matches the new header
    checksum = xxhash.xxh3_64_intdigest(bytes(encoded[:28] + encoded[36:]))
    encoded[28:36] = checksum.to_bytes(8, "little")
    with pytest.raises(UnsupportedFormatError, match="version 4"):
        decode_snapshot_header(bytes(encoded), "0" * 20, path=PATH)
    with pytest.raises(UnsupportedFormatError, match="version 4"):
        decode_snapshot(bytes(encoded), "0" * 20, path=PATH)


@given(snapshot=snapshots, wanted=object_ids)
def test_a_snapshot_under_another_id_is_refused_by_both_decoders(
    snapshot: Snapshot, wanted: str
) -> None:
    # snapshots/<c1> copied over snapshots/<c2>: reading c2 must not return c1.
    assume(wanted != snapshot.id)
    data = encode_snapshot(snapshot)
    for decode in (decode_snapshot, decode_snapshot_header):
        with pytest.raises(ObjectIdMismatchError) as exc:
            decode(data, wanted, path=PATH)
        assert (exc.value.expected_id, exc.value.found_id) == (wanted, snapshot.id)
        assert exc.value.path == PATH


def test_payload_id_must_agree_with_the_header() -> None:
    # A writer that framed a snapshot under one id but recorded another in it is caught too.
    snapshot = Snapshot("1" * 20, None, 0, "m", {})
    data = encode_object(ObjectKind.SNAPSHOT, snapshot, object_id="0" * 20)
    for decode in (decode_snapshot, decode_snapshot_header):
        with pytest.raises(CorruptObjectError, match="payload") as exc:
            decode(data, "0" * 20, path=PATH)
        assert not isinstance(exc.value, ObjectIdMismatchError)


def test_a_snapshot_with_region_pieces_round_trips_as_version_3() -> None:
    pieces = (
        ManifestRef("M" * 20, (0, 0), (1, 9), 20),
        RegionRef("R" * 20, (2, 3), (5, 1), 7, (2, 0), (5, 4)),
    )
    snapshot = Snapshot(
        "0" * 20,
        "1" * 20,
        5,
        "m",
        {"k": 1},
        nodes=(NodeSnapshot("n" * 13, "/a", 2, b"{}", pieces),),
        manifest_files=(ManifestFileInfo("M" * 20, 10, 20),),
    )
    encoded = encode_snapshot(snapshot)
    assert encoded[4:6] == REGION_FORMAT_VERSION.to_bytes(2, "little")
    decoded = decode_snapshot(encoded, snapshot.id, path=PATH)
    assert decoded == snapshot and [type(p) for p in decoded.nodes[0].manifests] == [
        ManifestRef,
        RegionRef,
    ]
    assert decode_snapshot_header(encoded, snapshot.id, path=PATH).message == "m"
    plain = msgspec.structs.replace(
        snapshot, nodes=(NodeSnapshot("n" * 13, "/a", 2, b"{}", pieces[:1]),)
    )
    assert encode_snapshot(plain)[4:6] == FORMAT_VERSION.to_bytes(2, "little")


def test_only_a_snapshot_may_be_version_3() -> None:
    data = encode_object(
        ObjectKind.MANIFEST, [[]], object_id="0" * 20, version=REGION_FORMAT_VERSION
    )
    with pytest.raises(UnsupportedFormatError, match="version 3"):
        decode_object(data, ObjectKind.MANIFEST, object, object_id="0" * 20, path=PATH)
