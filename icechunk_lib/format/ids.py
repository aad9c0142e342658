"""Object ids printed in Crockford base32, as Icechunk prints them.

Manifest and chunk ids (and every other object id but snapshots') are time-ordered: 48 bits
of milliseconds since the Unix epoch (big-endian), then 48 random bits. They are still 12
bytes and unique, readers still treat them as opaque, and their keys sort by creation time,
so garbage collection can list only the keys created since its last run
(``Storage.list(start_after=...)``). Ids written before this (all 96 bits random) are valid
too; see ``id_time``.

Snapshot ids stay random: people name snapshots by typing a few leading characters of their
ids, and time-ordered ids made the same day would share those. There is one snapshot per
commit, so gc lists them all at little cost.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from datetime import UTC, datetime

__all__ = [
    "CHUNK_ID_BYTES",
    "NODE_ID_BYTES",
    "OBJECT_ID_BYTES",
    "decode_id",
    "encode_id",
    "id_time",
    "is_object_id",
    "last_id_before",
    "new_chunk_id",
    "new_node_id",
    "new_object_id",
    "new_snapshot_id",
]

OBJECT_ID_BYTES = 12
CHUNK_ID_BYTES = 12
NODE_ID_BYTES = 8

_RFC = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(_RFC, _CROCKFORD)
_FROM_CROCKFORD = bytes.maketrans(_CROCKFORD, _RFC)
_OBJECT_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{20}")
_CROCKFORD_RE = re.compile(r"[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]*", re.ASCII)


_ALPHABET = _CROCKFORD.decode("ascii")
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


_TRIPLES: list[str] = []


def _encode_12(raw: bytes) -> str:
    # 12 bytes = 96 bits, padded to 100 bits = 20 characters: six 3-character (15-bit) table
    # lookups and one 2-character one. This runs for every chunk read.
    t = _TRIPLES
    if not t:
        t.extend(a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET)
    v = int.from_bytes(raw, "big") << 4
    return (
        t[v >> 85]
        + t[(v >> 70) & 32767]
        + t[(v >> 55) & 32767]
        + t[(v >> 40) & 32767]
        + t[(v >> 25) & 32767]
        + t[(v >> 10) & 32767]
        + _PAIRS[v & 1023]
    )


def encode_id(raw: bytes) -> str:
    """Encode raw id bytes as unpadded upper-case Crockford base32 (big-endian bit order)."""
    if len(raw) == OBJECT_ID_BYTES:
        return _encode_12(raw)
    # Two characters (10 bits) per table lookup.
    nbits = len(raw) * 8
    nchars = (nbits + 4) // 5
    value = int.from_bytes(raw, "big") << (nchars * 5 - nbits)
    head = ""
    if nchars & 1:
        nchars -= 1
        head = _ALPHABET[value >> (nchars * 5)]
        value &= (1 << (nchars * 5)) - 1
    return head + "".join([_PAIRS[(value >> s) & 1023] for s in range(nchars * 5 - 10, -1, -10)])


def decode_id(text: str) -> bytes:
    """Decode a Crockford base32 id; raises ``ValueError`` on anything else."""
    # Check before upper-casing: str.upper() maps some non-ASCII letters to ASCII ones.
    # I, L, O and U are not Crockford digits; refusing them beats guessing what was meant.
    if not _CROCKFORD_RE.fullmatch(text):
        raise ValueError(f"not a Crockford base32 id: {text!r}")
    data = text.upper().encode("ascii").translate(_FROM_CROCKFORD)
    data += b"=" * (-len(data) % 8)
    try:
        raw = base64.b32decode(data)
    except ValueError:
        raise ValueError(f"not a Crockford base32 id: {text!r}") from None
    if encode_id(raw) != text.upper():  # unused trailing bits set: two spellings, one id
        raise ValueError(f"not a canonical id: {text!r}")
    return raw


def is_object_id(text: str) -> bool:
    """Whether ``text`` looks like a full 12-byte object id (20 characters)."""
    return bool(_OBJECT_ID_RE.fullmatch(text))  # not ``match``: ``$`` allows a final newline


_TIME_BYTES = 6
_MAX_MS = (1 << (8 * _TIME_BYTES)) - 1


def _now_ms() -> bytes:
    return (time.time_ns() // 1_000_000).to_bytes(_TIME_BYTES, "big")


def new_object_id() -> str:
    """A fresh time-ordered object id (manifests, reflog pages, gc records; 20 characters)."""
    return encode_id(_now_ms() + _POOL.take(OBJECT_ID_BYTES - _TIME_BYTES))


class _RandomPool:
    """Random bytes from ``os.urandom`` fetched a block at a time.

    A chunk write needs a fresh id; one system call per id costs more than the rest of a
    small write, and under a busy GIL far more. The pool is dropped in a forked child, so
    parent and child never hand out the same bytes.
    """

    BLOCK = 12 * 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            pos = self._pos
            if pos + n > len(self._buf):
                self._buf = os.urandom(max(self.BLOCK, n))
                pos = 0
            self._pos = pos + n
            return self._buf[pos : pos + n]

    def reset(self) -> None:
        self._lock = threading.Lock()  # a fork may have copied it held
        self._buf = b""
        self._pos = 0


_POOL = _RandomPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.reset)


def new_chunk_id() -> bytes:
    """A fresh time-ordered chunk id, kept raw (12 bytes) in manifests."""
    return (time.time_ns() // 1_000_000).to_bytes(_TIME_BYTES, "big") + _POOL.take(
        CHUNK_ID_BYTES - _TIME_BYTES
    )


def id_time(object_id: str | bytes) -> datetime:
    """The creation time a time-ordered id encodes (its first 48 bits, in milliseconds).

    An id written before ids were time-ordered is 96 random bits, and nothing in it says so:
    it decodes to an arbitrary time (mostly centuries ahead). Callers use the time only to
    bound listings, never to decide a deletion (gc judges age by the storage's own time), and
    start listings an hour early so a writer's clock running behind hides nothing.
    """
    raw = decode_id(object_id) if isinstance(object_id, str) else object_id
    ms = int.from_bytes(raw[:_TIME_BYTES], "big")
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, ValueError, OSError):  # random bits past the year 9999
        return datetime.max.replace(tzinfo=UTC)


def last_id_before(when: datetime) -> str:
    """The largest id whose encoded time is earlier than ``when`` (20 characters).

    Keys under one prefix sort by their id's time, so ``list(prefix,
    start_after=prefix + last_id_before(t))`` yields exactly the ids of time ``t`` or later.
    """
    ms = min(max(int(when.timestamp() * 1000), 1), _MAX_MS + 1) - 1
    return encode_id(ms.to_bytes(_TIME_BYTES, "big") + b"\xff" * (OBJECT_ID_BYTES - _TIME_BYTES))


def new_snapshot_id() -> str:
    """A fresh random snapshot id (12 bytes, 20 characters): its leading characters tell
    snapshots apart (see the module docstring)."""
    return encode_id(_POOL.take(OBJECT_ID_BYTES))


def new_node_id() -> str:
    """A fresh random node id (8 bytes, 13 characters)."""
    return encode_id(os.urandom(NODE_ID_BYTES))
