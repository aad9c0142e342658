"""Branch and tag records, and the tombstone a deleted tag leaves behind."""

from __future__ import annotations

import msgspec

from icechunk_lib.format._framing import ObjectKind, decode_object, encode_object

__all__ = [
    "BranchRecord",
    "TagRecord",
    "TagTombstone",
    "decode_branch",
    "decode_tag",
    "decode_tombstone",
    "encode_branch",
    "encode_tag",
    "encode_tombstone",
]


class BranchRecord(msgspec.Struct, frozen=True, gc=False):
    """Where a branch points. ``previous`` is where it pointed before this update."""

    snapshot_id: str
    updated_at: int
    previous: str | None = None


class TagRecord(msgspec.Struct, frozen=True, gc=False):
    snapshot_id: str
    created_at: int


class TagTombstone(msgspec.Struct, frozen=True, gc=False):
    snapshot_id: str
    deleted_at: int


def encode_branch(rec: BranchRecord) -> bytes:
    return encode_object(ObjectKind.BRANCH, rec, compression_level=None)


def decode_branch(data: bytes, *, path: str) -> BranchRecord:
    return decode_object(data, ObjectKind.BRANCH, BranchRecord, path=path)


def encode_tag(rec: TagRecord) -> bytes:
    return encode_object(ObjectKind.TAG, rec, compression_level=None)


def decode_tag(data: bytes, *, path: str) -> TagRecord:
    return decode_object(data, ObjectKind.TAG, TagRecord, path=path)


def encode_tombstone(rec: TagTombstone) -> bytes:
    return encode_object(ObjectKind.TAG_TOMBSTONE, rec, compression_level=None)


def decode_tombstone(data: bytes, *, path: str) -> TagTombstone:
    return decode_object(data, ObjectKind.TAG_TOMBSTONE, TagTombstone, path=path)
