"""Random object ids printed in Crockford base32, as Icechunk prints them."""

from __future__ import annotations

import base64
import os
import re

__all__ = [
    "CHUNK_ID_BYTES",
    "NODE_ID_BYTES",
    "OBJECT_ID_BYTES",
    "decode_id",
    "encode_id",
    "is_object_id",
    "new_chunk_id",
    "new_node_id",
    "new_object_id",
]

OBJECT_ID_BYTES = 12
CHUNK_ID_BYTES = 12
NODE_ID_BYTES = 8

_RFC = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(_RFC, _CROCKFORD)
_FROM_CROCKFORD = bytes.maketrans(_CROCKFORD, _RFC)
_OBJECT_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{20}$")


def encode_id(raw: bytes) -> str:
    """Encode raw id bytes as unpadded upper-case Crockford base32."""
    return base64.b32encode(raw).rstrip(b"=").translate(_TO_CROCKFORD).decode("ascii")


def decode_id(text: str) -> bytes:
    """Decode a Crockford base32 id; raises ``ValueError`` on anything else."""
    data = text.upper().encode("ascii", "strict").translate(_FROM_CROCKFORD)
    data += b"=" * (-len(data) % 8)
    return base64.b32decode(data)


def is_object_id(text: str) -> bool:
    """Whether ``text`` looks like a full 12-byte object id (20 characters)."""
    return bool(_OBJECT_ID_RE.match(text))


def new_object_id() -> str:
    """A fresh random snapshot/manifest id (12 bytes, 20 characters)."""
    return encode_id(os.urandom(OBJECT_ID_BYTES))


def new_chunk_id() -> bytes:
    """A fresh random chunk id, kept raw (12 bytes) in manifests."""
    return os.urandom(CHUNK_ID_BYTES)


def new_node_id() -> str:
    """A fresh random node id (8 bytes, 13 characters)."""
    return encode_id(os.urandom(NODE_ID_BYTES))
