"""Columnar chunk tables and manifest files, checked against a plain dict of coords -> ref."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechunk_lib.errors import CorruptObjectError, UnsupportedFormatError
from icechunk_lib.format import (
    FORMAT_VERSION,
    INLINE,
    NATIVE,
    VIRTUAL,
    ChunkRef,
    ChunkTable,
    ManifestFile,
    ObjectKind,
    decode_manifest,
    encode_manifest,
    encode_object,
)
from icechunk_lib.format._framing import ETAG_FORMAT_VERSION, decode_object, peek_version

from .strategies import chunk_refs, coords_for, node_ids

Coords = tuple[int, ...]
Model = dict[Coords, ChunkRef]
MID = "041061050R3GG28A1C60"
PATH = f"manifests/{MID} in /data/repo"

ndims = st.sampled_from([0, 1, 2, 3])


def models(ndim: int, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[Model]:
    return st.dictionaries(coords_for(ndim), chunk_refs(), min_size=min_size, max_size=max_size)


def build(
    model: Model, ndim: int, node_id: str = "NODE", order: list[int] | None = None
) -> ChunkTable:
    items = list(model.items())
    if order is not None:
        items = [items[i] for i in order]
    coords = np.array([c for c, _ in items], dtype=np.int64).reshape(len(items), ndim)
    return ChunkTable.from_refs(node_id, coords, [r for _, r in items])


def as_model(table: ChunkTable) -> Model:
    return {tuple(int(x) for x in c): table.ref(i) for i, c in enumerate(table.coords())}


def check_table(table: ChunkTable, model: Model, ndim: int) -> None:
    """``table`` holds exactly ``model``, sorted, tight and with no unused inline bytes."""
    assert len(table) == len(model)
    assert len(table.keys) == len(table.kinds) == len(table.chunk_ids) == len(table.offsets)
    assert table.ndim == ndim
    coords = [tuple(int(x) for x in c) for c in table.coords()]
    assert coords == sorted(model)
    assert as_model(table) == model
    for c, ref in model.items():
        assert table.ref(table.find(c)) == ref
    if model:
        assert table.key_shape == tuple(max(c[d] for c in model) + 1 for d in range(ndim))
        assert table.first_coords() == coords[0]
        assert table.last_coords() == coords[-1]
    inline_bytes = sum(len(r.data) for r in model.values() if r.kind == INLINE)
    assert len(table.inline_data) == inline_bytes
    assert table.nbytes() >= len(table.inline_data)


def same_columns(a: ChunkTable, b: ChunkTable) -> None:
    assert a.node_id == b.node_id
    assert a.key_shape == b.key_shape
    for name in ("keys", "kinds", "chunk_ids", "offsets", "lengths", "checksums", "location_index"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.inline_data == b.inline_data
    assert a.locations == b.locations


# --- building and looking up -------------------------------------------------------------------


@given(ndim=ndims, data=st.data())
def test_from_refs_holds_the_model(ndim: int, data: st.DataObject) -> None:
    model = data.draw(models(ndim), label="model")
    order = data.draw(st.permutations(range(len(model))), label="order")
    check_table(build(model, ndim, order=order), model, ndim)


@given(ndim=ndims, data=st.data())
def test_find_misses_are_minus_one(ndim: int, data: st.DataObject) -> None:
    model = data.draw(models(ndim, min_size=1), label="model")
    table = build(model, ndim)
    probes = data.draw(
        st.lists(st.tuples(*(st.integers(-2, 9) for _ in range(ndim))), max_size=20), label="probes"
    )
    for probe in probes:
        row = table.find(probe)
        if probe in model:
            assert table.ref(row) == model[probe]
        else:
            assert row == -1


def test_each_kind_keeps_its_own_fields() -> None:
    native = ChunkRef(NATIVE, bytes(range(12)), 7, 9, 2**64 - 1)
    inline = ChunkRef(INLINE, length=3, checksum=5, data=b"abc")
    virtual = ChunkRef(VIRTUAL, offset=2**40, length=10, checksum=0, location="s3://b/k.nc")
    table = build({(0, 2, 1): native, (1, 0, 0): inline, (0, 0, 5): virtual}, 3)
    assert table.ref(table.find((0, 2, 1))) == native
    assert table.ref(table.find((1, 0, 0))) == inline
    assert table.ref(table.find((0, 0, 5))) == virtual
    # Only native rows keep a chunk id; only virtual rows point at a location.
    assert table.chunk_ids[table.find((1, 0, 0))].tobytes() == bytes(12)
    assert table.locations == ["s3://b/k.nc"]


def test_zero_dimensional_array_has_one_chunk() -> None:
    ref = ChunkRef(INLINE, length=2, checksum=1, data=b"hi")
    table = build({(): ref}, 0)
    assert table.key_shape == ()
    assert table.find(()) == 0
    assert table.ref(0) == ref
    assert table.coords().shape == (1, 0)


def test_large_coordinates_fold_without_overflow() -> None:
    ref = ChunkRef(NATIVE, bytes(12), 0, 1, 0)
    model: Model = {(10**6, 10**6, 10**6): ref, (0, 0, 0): ref}
    check_table(build(model, 3), model, 3)


def test_a_grid_too_large_to_index_is_refused() -> None:
    ref = ChunkRef(NATIVE, bytes(12), 0, 1, 0)
    with pytest.raises(ValueError, match="too large"):
        build({(2**32, 2**32, 2**32): ref}, 3)


# --- merging -------------------------------------------------------------------------------------


@given(ndim=ndims, data=st.data())
def test_merge_applies_writes_and_deletions(ndim: int, data: st.DataObject) -> None:
    base = data.draw(models(ndim), label="base")
    writes = data.draw(models(ndim), label="writes")
    deleted = data.draw(
        st.lists(coords_for(ndim), max_size=6, unique=True).map(
            lambda cs: [c for c in cs if c not in writes]
        ),
        label="deleted",
    )
    pieces = data.draw(st.integers(1, 4), label="rows per base piece")
    expected = {c: r for c, r in base.items() if c not in deleted} | writes
    bases = build(base, ndim).split(pieces) if base else [ChunkTable.empty("NODE", ndim)]
    empty_changes = data.draw(st.booleans(), label="pass an empty change table")
    changes = build(writes, ndim) if writes or empty_changes else None
    gone = np.array(deleted, dtype=np.int64).reshape(len(deleted), ndim) if deleted else None
    merged = ChunkTable.merge("NODE", ndim, bases, changes, gone)
    assert merged.node_id == "NODE"
    check_table(merged, expected, ndim)


@given(ndim=ndims, data=st.data())
def test_merge_of_a_rewrite_keeps_no_stale_inline_bytes(ndim: int, data: st.DataObject) -> None:
    base = data.draw(models(ndim, min_size=1), label="base")
    new = {c: ChunkRef(INLINE, length=1, checksum=0, data=b"z") for c in base}
    merged = ChunkTable.merge("NODE", ndim, [build(base, ndim)], build(new, ndim), None)
    check_table(merged, new, ndim)
    assert merged.inline_data == b"z" * len(base)


def test_merge_shrinks_the_key_shape_after_deleting_the_far_corner() -> None:
    ref = ChunkRef(NATIVE, bytes(12), 0, 1, 0)
    base = build({(0, 0): ref, (5, 7): ref}, 2)
    merged = ChunkTable.merge("NODE", 2, [base], None, np.array([[5, 7]]))
    assert merged.key_shape == (1, 1)
    assert as_model(merged) == {(0, 0): ref}


@pytest.mark.parametrize("ndim", [0, 1, 3])
def test_empty_table(ndim: int) -> None:
    table = ChunkTable.empty("NODE", ndim)
    check_table(table, {}, ndim)
    assert table.find((0,) * ndim) == -1
    assert table.split(10) == [table]
    back = decode_manifest(encode_manifest(ManifestFile(MID, {"NODE": table})), MID, path=PATH)
    same_columns(back.tables["NODE"], table)


@pytest.mark.parametrize("ndim", [0, 1, 3])
def test_merge_deleting_every_chunk_gives_an_empty_table(ndim: int) -> None:
    ref = ChunkRef(INLINE, length=1, checksum=0, data=b"x")
    base = build({(0,) * ndim: ref}, ndim)
    merged = ChunkTable.merge("NODE", ndim, [base], None, np.zeros((1, ndim), dtype=np.int64))
    check_table(merged, {}, ndim)


def test_merge_of_deletions_alone_gives_an_empty_table() -> None:
    # A new array whose written chunks were all deleted again before the commit.
    merged = ChunkTable.merge("NODE", 2, [], None, np.array([[1, 1]], dtype=np.int64))
    check_table(merged, {}, 2)


# --- splitting -----------------------------------------------------------------------------------


@given(ndim=ndims, data=st.data())
def test_split_cuts_consecutive_ranges(ndim: int, data: st.DataObject) -> None:
    model = data.draw(models(ndim, min_size=1, max_size=20), label="model")
    max_rows = data.draw(st.integers(1, 25), label="max_rows")
    pieces = build(model, ndim).split(max_rows)
    assert all(1 <= len(p) <= max_rows for p in pieces)
    assert len(pieces) == -(-len(model) // max_rows)
    seen: list[Coords] = []
    for p in pieces:
        part = as_model(p)
        check_table(p, part, ndim)
        assert part == {c: model[c] for c in part}
        seen.extend(sorted(part))
    assert seen == sorted(model)
    for a, b in itertools.pairwise(pieces):
        assert a.last_coords() < b.first_coords()


# --- manifest files ------------------------------------------------------------------------------


tables = st.tuples(ndims, node_ids).flatmap(
    lambda nd: models(nd[0]).map(lambda m: build(m, nd[0], node_id=nd[1]))
)


@given(
    tabs=st.lists(tables, min_size=1, max_size=4, unique_by=lambda t: t.node_id),
    level=st.integers(1, 22),
)
def test_manifest_round_trip(tabs: list[ChunkTable], level: int) -> None:
    manifest = ManifestFile(MID, {t.node_id: t for t in tabs})
    data = encode_manifest(manifest, compression_level=level)
    back = decode_manifest(data, MID, path=PATH)
    assert back.id == manifest.id
    assert list(back.tables) == list(manifest.tables)
    for node_id, table in manifest.tables.items():
        same_columns(back.tables[node_id], table)
        assert as_model(back.tables[node_id]) == as_model(table)
    assert back.num_refs() == manifest.num_refs() == sum(len(t) for t in tabs)


@given(table=tables, mask=st.integers(1, 255), data=st.data())
def test_damaged_manifest_is_rejected(table: ChunkTable, mask: int, data: st.DataObject) -> None:
    encoded = bytearray(encode_manifest(ManifestFile(MID, {table.node_id: table})))
    if data.draw(st.booleans(), label="truncate"):
        encoded = encoded[: data.draw(st.integers(0, len(encoded) - 1), label="length")]
    else:
        encoded[data.draw(st.integers(0, len(encoded) - 1), label="index")] ^= mask
    with pytest.raises(CorruptObjectError) as exc:
        decode_manifest(bytes(encoded), MID, path=PATH)
    assert exc.value.path == PATH and PATH in str(exc.value)


def _raw_table(n_keys: int, n_kinds: int, **overrides: Any) -> list[Any]:
    """A manifest table in its msgpack form (a list of columns), with chosen lengths."""
    columns: dict[str, Any] = {
        "node_id": "NODE",
        "key_shape": [4],
        "keys": np.arange(n_keys, dtype="<i8").tobytes(),
        "kinds": bytes([INLINE]) * n_kinds,
        "chunk_ids": bytes(12 * n_keys),
        "offsets": bytes(8 * n_keys),
        "lengths": bytes(8 * n_keys),
        "checksums": bytes(8 * n_keys),
        "inline_data": b"",
        "location_index": np.full(n_keys, -1, dtype="<i4").tobytes(),
        "locations": [],
    }
    columns.update(overrides)
    return list(columns.values())


def test_a_well_formed_raw_table_decodes() -> None:
    data = encode_object(ObjectKind.MANIFEST, [[_raw_table(2, 2)]], object_id=MID)
    table = decode_manifest(data, MID, path=PATH).tables["NODE"]
    assert as_model(table) == {(0,): ChunkRef(INLINE), (1,): ChunkRef(INLINE)}


@pytest.mark.parametrize(
    "raw",
    [
        _raw_table(2, 1),
        _raw_table(2, 2, chunk_ids=bytes(13)),
        _raw_table(2, 2, keys=bytes(9)),
        _raw_table(2, 2, offsets=bytes(8)),
        _raw_table(2, 2, location_index=bytes(4)),
        ["NODE"],
    ],
    ids=["kinds", "chunk_ids", "keys", "offsets", "location_index", "short-row"],
)
def test_checksummed_manifest_with_inconsistent_columns_is_corrupt(raw: list[Any]) -> None:
    # The checksum is right (the writer was wrong), so only the column checks can catch it.
    data = encode_object(ObjectKind.MANIFEST, [[raw]], object_id=MID)
    with pytest.raises(CorruptObjectError) as exc:
        decode_manifest(data, MID, path=PATH)
    assert PATH in str(exc.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"kinds": bytes([VIRTUAL]) * 2},
        {"kinds": bytes([9]) * 2},
        {"lengths": np.array([5, 5], dtype="<u8").tobytes()},
        {"keys": np.array([3, 1], dtype="<i8").tobytes()},
    ],
    ids=["location-index", "unknown-kind", "inline-range", "unsorted-keys"],
)
def test_checksummed_manifest_with_dangling_rows_is_corrupt(overrides: dict[str, Any]) -> None:
    data = encode_object(ObjectKind.MANIFEST, [[_raw_table(2, 2, **overrides)]], object_id=MID)
    with pytest.raises(CorruptObjectError):
        decode_manifest(data, MID, path=PATH)


def _virtual_table(*etags: str) -> ChunkTable:
    refs = [
        ChunkRef(VIRTUAL, offset=8 * i, length=8, location="s3://b/f.nc", etag=e)
        for i, e in enumerate(etags)
    ]
    return ChunkTable.from_refs("NODE", np.arange(len(refs)).reshape(-1, 1), refs)


def test_a_manifest_without_etags_stays_version_2() -> None:
    data = encode_manifest(ManifestFile(MID, {"NODE": _virtual_table("", "")}))
    assert peek_version(data) == FORMAT_VERSION


def test_a_manifest_with_an_etag_is_version_3_and_keeps_it() -> None:
    table = _virtual_table('"e1"', "", '"e2"', '"e1"')
    assert table.locations == ["s3://b/f.nc"] * 3  # one entry per (location, etag)
    plain = ChunkTable.from_refs("PLAIN", np.array([[0]]), [ChunkRef(INLINE, data=b"x")])
    data = encode_manifest(ManifestFile(MID, {"NODE": table, "PLAIN": plain}))
    assert peek_version(data) == ETAG_FORMAT_VERSION
    back = decode_manifest(data, MID, path=PATH)
    etags = [back.tables["NODE"].ref(i).etag for i in range(4)]
    assert etags == ['"e1"', "", '"e2"', '"e1"']
    assert as_model(back.tables["PLAIN"]) == as_model(plain)


def test_a_version_2_reader_refuses_a_manifest_with_etags() -> None:
    data = encode_manifest(ManifestFile(MID, {"NODE": _virtual_table('"e1"')}))
    with pytest.raises(UnsupportedFormatError, match="format version 3"):
        decode_object(data, ObjectKind.MANIFEST, list, object_id=MID, path=PATH)


def test_etags_that_do_not_match_the_locations_are_corrupt() -> None:
    raw = _raw_table(
        1,
        1,
        kinds=bytes([VIRTUAL]),
        location_index=np.zeros(1, dtype="<i4").tobytes(),
        locations=["s3://b/f.nc"],
    )
    raw.append(['"e1"', '"e2"'])
    data = encode_object(ObjectKind.MANIFEST, [[raw]], object_id=MID, version=ETAG_FORMAT_VERSION)
    with pytest.raises(CorruptObjectError, match="ETags"):
        decode_manifest(data, MID, path=PATH)


def test_merge_keeps_each_rows_etag() -> None:
    base = _virtual_table('"old"', "")
    changes = ChunkTable.from_refs(
        "NODE",
        np.array([[1], [2]]),
        [
            ChunkRef(VIRTUAL, offset=1, length=1, location="s3://b/f.nc", etag='"new"'),
            ChunkRef(NATIVE, bytes(12), 0, 3, 7),
        ],
    )
    merged = ChunkTable.merge("NODE", 1, [base], changes, None)
    assert [merged.ref(i).etag for i in range(3)] == ['"old"', '"new"', ""]


def test_manifest_is_not_read_as_another_kind() -> None:
    data = encode_object(ObjectKind.SNAPSHOT, [[]], object_id=MID)
    with pytest.raises(CorruptObjectError, match=r"expected a manifest, found a snapshot"):
        decode_manifest(data, MID, path=PATH)
