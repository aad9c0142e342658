"""hypothesis strategies shared by the format tests: JSON-like values, ids, chunk refs."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st

from icechunk_lib.format import INLINE, NATIVE, VIRTUAL, ChunkRef, ObjectKind, encode_id

__all__ = [
    "CROCKFORD",
    "chunk_refs",
    "coords_for",
    "json_values",
    "kinds",
    "levels",
    "metadata",
    "node_ids",
    "object_ids",
    "u64",
]

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

u64 = st.integers(0, 2**64 - 1)
kinds = st.sampled_from(list(ObjectKind))
# None stores raw msgpack; zstd levels 1..22 are what RepositoryConfig allows.
levels = st.one_of(st.none(), st.integers(1, 22))
object_ids = st.binary(min_size=12, max_size=12).map(encode_id)
node_ids = st.binary(min_size=8, max_size=8).map(encode_id)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)

# msgpack has no tuples and decodes arrays as lists, so only lists are generated.
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
metadata = st.dictionaries(st.text(max_size=10), json_values, max_size=4)

_locations = st.sampled_from(["s3://bucket/a.nc", "s3://bucket/b.nc", "https://x.org/c", ""])


def _native() -> st.SearchStrategy[ChunkRef]:
    return st.builds(
        lambda cid, off, length, cs: ChunkRef(NATIVE, cid, off, length, cs),
        st.binary(min_size=12, max_size=12),
        u64,
        u64,
        u64,
    )


def _inline() -> st.SearchStrategy[ChunkRef]:
    # A table stores an inline chunk's length from its bytes and drops its offset.
    return st.builds(
        lambda data, cs: ChunkRef(INLINE, length=len(data), checksum=cs, data=data),
        st.binary(max_size=24),
        u64,
    )


_etags = st.sampled_from(["", "", '"9b2cf535f27731c974343645a3985328"', 'W/"1-2"'])


def _virtual() -> st.SearchStrategy[ChunkRef]:
    return st.builds(
        lambda loc, off, length, cs, etag: ChunkRef(
            VIRTUAL, offset=off, length=length, checksum=cs, location=loc, etag=etag
        ),
        _locations,
        u64,
        u64,
        u64,
        _etags,
    )


def chunk_refs() -> st.SearchStrategy[ChunkRef]:
    """Refs of every kind, in the normal form ``ChunkTable.ref`` returns."""
    return st.one_of(_native(), _inline(), _virtual())


def coords_for(ndim: int, bound: int = 6) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*(st.integers(0, bound - 1) for _ in range(ndim)))
