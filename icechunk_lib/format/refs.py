"""Branch and tag records, and the tombstone a deleted tag leaves behind."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from icechunk_lib.errors import CorruptObjectError, ObjectIdMismatchError
from icechunk_lib.format._framing import ObjectKind, decode_object, encode_object

__all__ = [
    "REFLOG_INLINE",
    "BranchRecord",
    "ReflogItem",
    "ReflogPage",
    "TagRecord",
    "TagTombstone",
    "decode_branch",
    "decode_reflog_page",
    "decode_tag",
    "decode_tombstone",
    "encode_branch",
    "encode_reflog_page",
    "encode_tag",
    "encode_tombstone",
]


class ReflogItem(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One move of a branch: to ``snapshot_id`` from ``previous_id``, when, why."""

    snapshot_id: str
    previous_id: str | None
    at: int
    action: str
    """``create``, ``commit`` or ``reset``."""
    message: str = ""


class BranchRecord(msgspec.Struct, frozen=True, gc=False):
    """Where a branch points, with its most recent moves (the reflog) newest first.

    When ``log`` would exceed ``REFLOG_INLINE`` entries it is archived, immutable, as a
    ``ReflogPage`` and ``older`` points at it, so a record stays small however long it lives.
    """

    snapshot_id: str
    updated_at: int
    previous: str | None = None
    log: tuple[ReflogItem, ...] = ()
    older: str | None = None
    name: str = ""
    """The branch's own name: a ref file copied under another branch's key is refused."""


class ReflogPage(msgspec.Struct, frozen=True, gc=False):
    """Archived reflog entries (newest first) and the page before them."""

    items: tuple[ReflogItem, ...]
    older: str | None = None


REFLOG_INLINE = 32


class TagRecord(msgspec.Struct, frozen=True, gc=False):
    snapshot_id: str
    created_at: int
    name: str = ""
    """The tag's own name, checked against its key like a branch's."""


class TagTombstone(msgspec.Struct, frozen=True, gc=False):
    snapshot_id: str
    deleted_at: int
    name: str = ""


R = TypeVar("R", BranchRecord, TagRecord, TagTombstone)


def _named(rec: R, kind: str, name: str, path: str) -> R:
    """``rec`` if it is the record of ``name``: refs prove their name as objects prove ids."""
    if rec.name != name:
        if not rec.name:
            raise CorruptObjectError(path, f"the {kind} record names no {kind.split()[0]}")
        raise ObjectIdMismatchError(path, kind, repr(name), repr(rec.name))
    return rec


def encode_branch(rec: BranchRecord) -> bytes:
    return encode_object(ObjectKind.BRANCH, rec, object_id=None, compression_level=None)


def decode_branch(data: bytes, name: str, *, path: str) -> BranchRecord:
    """Decode the record of branch ``name``; a record of another branch is refused."""
    rec = decode_object(data, ObjectKind.BRANCH, BranchRecord, object_id=None, path=path)
    return _named(rec, "branch ref", name, path)


def encode_reflog_page(page: ReflogPage, page_id: str) -> bytes:
    """Frame a reflog page under its id (``reflogs/<page_id>``)."""
    return encode_object(ObjectKind.REFLOG, page, object_id=page_id, compression_level=3)


def decode_reflog_page(data: bytes, page_id: str, *, path: str) -> ReflogPage:
    """Check and decode ``reflogs/<page_id>``; another page stored under that key is refused."""
    return decode_object(data, ObjectKind.REFLOG, ReflogPage, object_id=page_id, path=path)


def encode_tag(rec: TagRecord) -> bytes:
    return encode_object(ObjectKind.TAG, rec, object_id=None, compression_level=None)


def decode_tag(data: bytes, name: str, *, path: str) -> TagRecord:
    """Decode the record of tag ``name``; a record of another tag is refused."""
    rec = decode_object(data, ObjectKind.TAG, TagRecord, object_id=None, path=path)
    return _named(rec, "tag ref", name, path)


def encode_tombstone(rec: TagTombstone) -> bytes:
    return encode_object(ObjectKind.TAG_TOMBSTONE, rec, object_id=None, compression_level=None)


def decode_tombstone(data: bytes, name: str, *, path: str) -> TagTombstone:
    rec = decode_object(data, ObjectKind.TAG_TOMBSTONE, TagTombstone, object_id=None, path=path)
    return _named(rec, "tag tombstone", name, path)
