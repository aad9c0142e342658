"""The encoders write the golden repositories' objects byte for byte as they were written.

Every metadata object in ``tests/data/format2*`` is decoded with the format decoders and
encoded again: a change to an encoder that alters the bytes of format version 2 (a field
added, dropped, retyped or moved in a map-encoded struct, a different integer width or
framing) fails here. Re-encoding is deterministic because everything the bytes depend on
comes from the file itself:

- ids and times are stored in the objects, never drawn again when re-encoding;
- msgspec writes struct fields in definition order and dicts (snapshot metadata) in insertion
  order, which decoding preserves;
- objects under ``MIN_COMPRESSED_SIZE`` are stored raw; larger ones are zstd frames, at the
  repository's ``compression.level`` (the header does not record the level, so the test takes
  it from the repository config, as the writer did). zstd at a given level and libzstd
  version always writes the same frame; libzstd does not promise that across releases. If a
  zstandard upgrade ever changes the frame, the payload check below still passes and only
  the whole-file check fails: the format is unchanged, and any zstd reads the old frames.

Struct fields of ``array_like`` structs are written by position, so swapping two fields of
the same type re-encodes identically and misreads every old file. ``ARRAY_LIKE_LAYOUT`` pins
their order on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec.inspect as mi
import pytest
import zstandard

from icechunk_lib.format import content_checksum, encode_id
from icechunk_lib.format._framing import HEADER_SIZE
from icechunk_lib.format.config import RepositoryConfig, decode_config, encode_config
from icechunk_lib.format.manifest import NATIVE
from icechunk_lib.format.manifest_codec import _EncodedManifest, decode_manifest, encode_manifest
from icechunk_lib.format.refs import (
    BranchRecord,
    ReflogPage,
    TagRecord,
    TagTombstone,
    decode_branch,
    decode_reflog_page,
    decode_tag,
    decode_tombstone,
    encode_branch,
    encode_reflog_page,
    encode_tag,
    encode_tombstone,
)
from icechunk_lib.format.snapshot import (
    Snapshot,
    SnapshotHeader,
    decode_snapshot,
    decode_snapshot_header,
    encode_snapshot,
)
from icechunk_lib.format.txlog import TransactionLog, decode_txlog, encode_txlog

DATA = Path(__file__).parent.parent / "data"
FIXTURES = sorted(p for p in DATA.iterdir() if p.is_dir() and p.name.startswith("format2"))
_CODEC_AT = 7  # the header's codec byte: 0 raw msgpack, 1 zstd


def _objects(kind: str) -> list[tuple[Path, str]]:
    """(fixture, key) of every file under ``kind`` (``chunks`` or anything else)."""
    found = []
    for root in FIXTURES:
        for path in sorted(root.rglob("*")):
            key = path.relative_to(root).as_posix()
            if path.is_file() and (key.startswith("chunks/") == (kind == "chunks")):
                found.append((root, key))
    return found


def _reencode(key: str, data: bytes, level: int) -> bytes:
    """Decode the object stored under ``key`` and encode it again as its writer did."""
    match key.split("/"):
        case ["config"]:
            return encode_config(decode_config(data, path=key))
        case ["refs", "branch", name, "ref"]:
            return encode_branch(decode_branch(data, name, path=key))
        case ["refs", "tag", name, "ref"]:
            return encode_tag(decode_tag(data, name, path=key))
        case ["refs", "tag", name, "deleted"]:
            return encode_tombstone(decode_tombstone(data, name, path=key))
        case ["reflogs", page_id]:
            return encode_reflog_page(decode_reflog_page(data, page_id, path=key), page_id)
        case ["snapshots", snapshot_id]:
            snapshot = decode_snapshot(data, snapshot_id, path=key)
            # The header view must agree with the full decode on the fields they share.
            header = decode_snapshot_header(data, snapshot_id, path=key)
            for name in SnapshotHeader.__struct_fields__:
                assert getattr(header, name) == getattr(snapshot, name), name
            return encode_snapshot(snapshot, compression_level=level)
        case ["manifests", manifest_id]:
            manifest = decode_manifest(data, manifest_id, path=key)
            return encode_manifest(manifest, compression_level=level)
        case ["transactions", snapshot_id]:
            return encode_txlog(decode_txlog(data, snapshot_id, path=key), compression_level=level)
    raise AssertionError(f"{key}: no decoder for this object; add one to _reencode")


def _payload(data: bytes) -> bytes:
    """The msgpack an object file carries (decompressed if it is a zstd frame)."""
    body = data[HEADER_SIZE:]
    if data[_CODEC_AT] == 1:
        return zstandard.ZstdDecompressor().decompress(body)
    return body


@pytest.mark.parametrize(
    ("root", "key"), _objects("metadata"), ids=lambda v: v if isinstance(v, str) else v.name
)
def test_reencoding_an_object_gives_its_bytes(root: Path, key: str) -> None:
    data = (root / key).read_bytes()
    level = decode_config((root / "config").read_bytes(), path="config").compression.level
    again = _reencode(key, data, level)
    assert _payload(again) == _payload(data), "the encoder writes another payload"
    assert again[:HEADER_SIZE] == data[:HEADER_SIZE], "the encoder writes another header"
    assert again == data


def test_the_fixtures_hold_every_kind_of_object_both_raw_and_compressed() -> None:
    objects = _objects("metadata")
    kinds = {key.split("/")[0] for _, key in objects}
    assert kinds == {"config", "refs", "reflogs", "snapshots", "manifests", "transactions"}
    refs = {tuple(key.split("/")[1::2]) for _, key in objects if key.startswith("refs/")}
    assert refs == {("branch", "ref"), ("tag", "ref"), ("tag", "deleted")}  # a tombstone too
    codecs = {(key.split("/")[0], (root / key).read_bytes()[_CODEC_AT]) for root, key in objects}
    assert {("manifests", 0), ("manifests", 1), ("transactions", 1)} <= codecs


@pytest.mark.parametrize("root", FIXTURES, ids=lambda p: p.name)
def test_every_chunk_is_a_native_ref_with_its_length_and_checksum(root: Path) -> None:
    # Chunk files hold the bytes zarr wrote, not an ick encoding: the manifests vouch for them.
    refs: dict[str, tuple[int, int]] = {}
    for path in (root / "manifests").iterdir():
        manifest = decode_manifest(path.read_bytes(), path.name, path=str(path))
        for table in manifest.tables.values():
            for i in range(len(table)):
                ref = table.ref(i)
                if ref.kind == NATIVE:
                    refs[encode_id(ref.chunk_id)] = (ref.length, ref.checksum)
    chunks = {key.removeprefix("chunks/") for r, key in _objects("chunks") if r == root}
    assert chunks == set(refs)
    for chunk_id in chunks:
        data = (root / "chunks" / chunk_id).read_bytes()
        assert (len(data), content_checksum(data)) == refs[chunk_id], chunk_id


# --- the field order of array_like structs ---------------------------------------------------

TOP_LEVEL: dict[str, type[Any]] = {
    "config": RepositoryConfig,
    "branch": BranchRecord,
    "tag": TagRecord,
    "tombstone": TagTombstone,
    "reflog page": ReflogPage,
    "snapshot": Snapshot,
    "snapshot header": SnapshotHeader,
    "manifest": _EncodedManifest,
    "transaction log": TransactionLog,
}

ARRAY_LIKE_LAYOUT = {
    "branch.log[]": ("snapshot_id", "previous_id", "at", "action", "message"),
    "manifest": ("tables",),
    "manifest.tables[]": (
        "node_id",
        "key_shape",
        "keys",
        "kinds",
        "chunk_ids",
        "offsets",
        "lengths",
        "checksums",
        "inline_data",
        "location_index",
        "locations",
    ),
    "reflog page.items[]": ("snapshot_id", "previous_id", "at", "action", "message"),
    "snapshot header.ancestry[]": ("id", "parent_id", "written_at", "message", "metadata"),
    "snapshot.ancestry[]": ("id", "parent_id", "written_at", "message", "metadata"),
    "snapshot.extras[]": ("key", "length", "checksum", "data", "chunk_id"),
    "snapshot.manifest_files[]": ("id", "size_bytes", "num_refs"),
    "snapshot.nodes[]": ("id", "path", "kind", "meta", "manifests"),
    "snapshot.nodes[].manifests[]": ("manifest_id", "first", "last", "count"),
    "transaction log.new_arrays[]": ("id", "path"),
    "transaction log.new_groups[]": ("id", "path"),
    "transaction log.deleted_arrays[]": ("id", "path"),
    "transaction log.deleted_groups[]": ("id", "path"),
    "transaction log.updated_arrays[]": ("id", "path"),
    "transaction log.updated_groups[]": ("id", "path"),
    "transaction log.updated_chunks[]": ("node_id", "path", "ndim", "coords"),
}


def _walk(
    where: str,
    info: mi.Type,
    visit: Callable[[str, mi.StructType], None],
    inside: frozenset[type] = frozenset(),
) -> None:
    """Call ``visit`` on every struct type reachable from ``info``, named by its path.

    ``inside`` holds the structs on the current path, so a recursive type (a splitting
    condition made of conditions) is visited once, not followed forever.
    """
    if isinstance(info, mi.StructType):
        if info.cls in inside:
            return
        visit(where, info)
        for f in info.fields:
            _walk(f"{where}.{f.encode_name}", f.type, visit, inside | {info.cls})
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            _walk(where, member, visit, inside)
    elif isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        _walk(f"{where}[]", info.item_type, visit, inside)
    elif isinstance(info, mi.DictType):
        _walk(f"{where}{{}}", info.value_type, visit, inside)
    elif isinstance(info, mi.TupleType):
        for i, item in enumerate(info.item_types):
            _walk(f"{where}[{i}]", item, visit, inside)


def test_array_like_structs_keep_their_field_order() -> None:
    # Decoding reads these fields by position: a reorder or a removal misreads every file
    # written before it. Even a new last field with a default changes what the encoder
    # writes (the re-encoding test fails), so it belongs to a new format version. Renaming a
    # field is safe on disk and only needs this table updated.
    found: dict[str, tuple[str, ...]] = {}

    def visit(where: str, info: mi.StructType) -> None:
        if info.array_like:
            found[where] = tuple(f.encode_name for f in info.fields)

    for name, type_ in TOP_LEVEL.items():
        _walk(name, mi.type_info(type_), visit)
    assert found == ARRAY_LIKE_LAYOUT
