"""Byte ranges on every kind of key read like a Python slice of the whole value, the same for
an inline chunk, a chunk file, a chunk bigger than the range-verify limit, metadata and an
extra key, and as zarr's ``MemoryStore`` reads them."""

from __future__ import annotations

import itertools

import pytest
import zarr
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import MemoryStore

import icechunk_lib as ic
from icechunk_lib._sync import run
from icechunk_lib.objects import RANGE_VERIFY_LIMIT

PROTO = default_buffer_prototype()
SMALL = bytes(range(10))  # inlined in the manifest
MEDIUM = bytes(range(256)) * 20  # a chunk file
LARGE = bytes(range(251)) * (RANGE_VERIFY_LIMIT // 251 + 8)  # read by range, not whole

_VALUES = {
    "a/c/0": SMALL,
    "a/c/1": MEDIUM,
    "a/c/2": LARGE,
    "extra/small": SMALL,
    "extra/large": LARGE,
}


def _requests(size: int) -> list[ByteRequest | None]:
    points = [0, 1, 5, size - 1, size, size + 1, 10**9, -1, -3, -size, -size - 7]
    out: list[ByteRequest | None] = [None]
    for p in points:
        out += [OffsetByteRequest(p), SuffixByteRequest(p)]
    out += [RangeByteRequest(a, b) for a, b in itertools.product(points, repeat=2)]
    return out


def _expected(value: bytes, req: ByteRequest | None) -> bytes:
    """A slice of the whole value; a suffix longer than the value is all of it."""
    if req is None:
        return value
    if isinstance(req, RangeByteRequest):
        return value[req.start : req.end]
    if isinstance(req, OffsetByteRequest):
        return value[req.offset :]
    return value[max(len(value) - req.suffix, 0) :]


def _fill(store: zarr.abc.store.Store) -> None:
    zarr.create_array(store, name="a", shape=(30,), chunks=(10,), dtype="u1", compressors=None)
    for key, value in _VALUES.items():
        _set(store, key, value)


@pytest.fixture(scope="module")
def stores() -> tuple[ic.IcechunkStore, ic.IcechunkStore, MemoryStore]:
    """The same keys uncommitted in a session, committed, and in a ``MemoryStore``."""
    repo = ic.Repository.create(ic.in_memory_storage())
    writable = repo.writable_session("main").store
    _fill(writable)
    session = repo.writable_session("main")
    _fill(session.store)
    committed = repo.readonly_session(snapshot_id=session.commit("ranges")).store
    memory = MemoryStore()
    _fill(memory)
    return writable, committed, memory


def _set(store: object, key: str, value: bytes) -> None:
    run(store.set(key, PROTO.buffer.from_bytes(value)))  # type: ignore[attr-defined]


def _get(store: object, key: str, req: ByteRequest | None) -> bytes | None:
    buf = run(store.get(key, PROTO, req))  # type: ignore[attr-defined]
    return None if buf is None else buf.to_bytes()


@pytest.mark.parametrize("key", [*_VALUES, "a/zarr.json"])
def test_ranges_read_as_slices_of_the_whole_value(
    stores: tuple[ic.IcechunkStore, ic.IcechunkStore, MemoryStore], key: str
) -> None:
    writable, committed, memory = stores
    for store in (writable, committed):
        whole = _get(store, key, None)
        assert whole is not None
        for req in _requests(len(whole)):
            assert _get(store, key, req) == _expected(whole, req), (store, key, req)
            if key in _VALUES and not (
                isinstance(req, SuffixByteRequest) and req.suffix > len(whole)
            ):
                # MemoryStore reads a suffix longer than the value as its last byte.
                assert _get(store, key, req) == _get(memory, key, req), (store, key, req)


def test_partial_values_match_single_reads(
    stores: tuple[ic.IcechunkStore, ic.IcechunkStore, MemoryStore],
) -> None:
    _, committed, _ = stores
    pairs = [(k, r) for k in _VALUES for r in _requests(len(_VALUES[k]))[:12]]
    pairs.append(("missing", RangeByteRequest(0, 3)))
    got = run(committed.get_partial_values(PROTO, pairs))
    want = [_get(committed, k, r) for k, r in pairs]
    assert [None if b is None else b.to_bytes() for b in got] == want
    assert want[-1] is None
