"""Chunk keys outside an array's grid: absent for reads, refused for writes, never committed."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.errors import InvalidKeyError

PROTO = default_buffer_prototype()
PAYLOAD = b"\x00" * 40  # 5 float64 values: one whole chunk of the arrays below


def _buf(data: bytes) -> Any:
    return PROTO.buffer.from_bytes(data)


def _repo_and_session(**array: Any) -> tuple[ic.Repository, ic.Session]:
    """A memory repository and a writable session holding array ``a`` (shape (10,), chunks
    (5,) unless given)."""
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    options: dict[str, Any] = {"shape": (10,), "chunks": (5,), "dtype": "f8"} | array
    zarr.create_array(session.store, name="a", fill_value=0, **options)
    return repo, session


def _session(**array: Any) -> ic.Session:
    return _repo_and_session(**array)[1]


def _refused(session: ic.Session, key: str) -> None:
    """``key`` is refused by set, absent for every read, and the session still commits."""
    store = session.store
    with pytest.raises(InvalidKeyError) as info:
        sync(store.set(key, _buf(PAYLOAD)))
    assert repr(key) in str(info.value) and "/a" in str(info.value)
    assert sync(store.get(key, PROTO)) is None
    assert sync(store.get(key, PROTO, zarr.abc.store.RangeByteRequest(0, 4))) is None
    assert not sync(store.exists(key))
    with pytest.raises(FileNotFoundError):
        sync(store.getsize(key))
    sync(store.delete(key))  # nothing there: nothing to do
    assert key not in _keys(session)


def _keys(session: ic.Session) -> set[str]:
    async def collect() -> set[str]:
        return {k async for k in session.store.list()}

    return sync(collect())


BAD_1D = [
    "a/c/2",  # just past the grid of 2 chunks
    "a/c/5",
    "a/c/9223372036854775807",
    "a/c/9223372036854775808",
    "a/c/" + "9" * 40,
    "a/c/-1",
    "a/c/+1",
    "a/c/01",
    "a/c/00",
    "a/c/ 1",
    "a/c/1_0",
    "a/c/1.0",
    "a/c/0x1",
    "a/c/x",
    "a/c/\u0661",  # ARABIC-INDIC DIGIT ONE
    "a/c/0/0",  # wrong rank
    "a/c",
    "a/c/",
]


@pytest.mark.parametrize("key", BAD_1D)
def test_keys_outside_the_grid_are_refused_and_absent(key: str) -> None:
    session = _session()
    _refused(session, key)
    sync(session.store.set("a/c/1", _buf(PAYLOAD)))
    assert _keys(session) >= {"a/c/1"}
    session.commit("valid chunks only")


@pytest.mark.parametrize(
    ("encoding", "good", "bad"),
    [
        ({"name": "default", "separator": "."}, ["a/c.0.1", "a/c.1.2"], ["a/c.2.0", "a/c.0.3"]),
        ({"name": "v2", "separator": "."}, ["a/0.0", "a/1.2"], ["a/2.0", "a/0.3", "a/-1.0"]),
        ({"name": "v2", "separator": "/"}, ["a/0/0", "a/1/2"], ["a/2/0", "a/1", "a/01/0"]),
    ],
)
def test_other_key_encodings_check_the_grid_too(
    encoding: dict[str, str], good: list[str], bad: list[str]
) -> None:
    session = _session(shape=(10, 15), chunks=(5, 5), chunk_key_encoding=encoding)
    for key in bad:
        _refused(session, key)
    arr = zarr.open_array(session.store, path="a")
    arr[:] = np.arange(150.0).reshape(10, 15)
    assert set(good) <= _keys(session)
    session.commit("2-d")
    np.testing.assert_array_equal(arr[:], np.arange(150.0).reshape(10, 15))


def test_a_v2_array_keeps_non_numeric_keys_as_extra_objects() -> None:
    session = _session(chunk_key_encoding={"name": "v2", "separator": "."})
    sync(session.store.set("a/notes.txt", _buf(b"kept")))
    assert sync(session.store.get("a/notes.txt", PROTO)).to_bytes() == b"kept"
    _refused(session, "a/7")


def test_zero_dimensional_arrays_have_one_chunk_key() -> None:
    session = _session(shape=(), chunks=(), dtype="f8")
    zarr.open_array(session.store, path="a")[()] = 3.0
    _refused(session, "a/c/0")
    _refused(session, "a/c/")
    session.commit("0-d")
    assert zarr.open_array(session.store, path="a")[()] == 3.0


def test_sharded_arrays_check_the_shard_grid() -> None:
    session = _session(shape=(10,), chunks=(2,), shards=(4,))
    arr = zarr.open_array(session.store, path="a")
    arr[:] = np.arange(10.0)
    assert {k for k in _keys(session) if "/c/" in k} == {"a/c/0", "a/c/1", "a/c/2"}
    _refused(session, "a/c/3")  # a chunk index, not a shard index
    session.commit("sharded")
    np.testing.assert_array_equal(arr[:], np.arange(10.0))


def test_a_grid_too_large_to_index_refuses_chunks_but_keeps_metadata() -> None:
    session = _session(shape=(2**62, 2**62), chunks=(1, 1))
    _refused(session, "a/c/0/0")
    session.commit("metadata only")  # never a session that cannot commit
    assert zarr.open_array(session.store, path="a")[0, 0] == 0


def test_zarr_resize_shrink_and_grow_in_one_session_commits() -> None:
    repo, session = _repo_and_session()
    arr = zarr.open_array(session.store, path="a")
    arr[:] = np.arange(10.0) + 1
    session.commit("full")
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="a")
    arr.resize((3,))
    _refused(session, "a/c/1")
    arr.resize((10,))
    # zarr keeps the bytes of a chunk the new shape cuts through (4 and 5), as on any store.
    np.testing.assert_array_equal(arr[:], [1, 2, 3, 4, 5, 0, 0, 0, 0, 0])
    session.commit("shrunk and grown")


@pytest.mark.parametrize("committed", [True, False])
def test_metadata_that_shrinks_the_grid_drops_the_chunks_beyond(committed: bool) -> None:
    repo, session = _repo_and_session(shape=(20,))
    arr = zarr.open_array(session.store, path="a")
    arr[:] = np.arange(20.0) + 1
    if committed:
        session.commit("four chunks")
        session = repo.writable_session("main")
    store = session.store
    meta = json.loads(sync(store.get("a/zarr.json", PROTO)).to_bytes())
    # Rewrite the metadata directly, without zarr deleting the chunks first.
    for shape in ([7], [20]):
        meta["shape"] = shape
        sync(store.set("a/zarr.json", _buf(json.dumps(meta).encode())))
        assert {k for k in _keys(session) if "/c/" in k} == {"a/c/0", "a/c/1"}
    arr = zarr.open_array(store, path="a")
    expected = np.concatenate([np.arange(10.0) + 1, np.zeros(10)])
    np.testing.assert_array_equal(arr[:], expected)
    sid = session.commit("shrunk then grown")
    read = repo.readonly_session(snapshot_id=sid)
    np.testing.assert_array_equal(zarr.open_array(read.store, path="a")[:], expected)
    [info] = [n for n in read.list_nodes(recursive=True, stats=True) if n.path == "/a"]
    assert info.chunks_written == 2  # what `ick ls -l` counts


_SUFFIX = st.text(st.sampled_from("0123456789+-_ ./cx\u0661"), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suffixes=st.lists(_SUFFIX, max_size=6))
@example(suffixes=["c/1/2", "c/3/0", "c/0/00", "c/0/-0", "c/0/+0", "c/1", "c/0/0/0", "c/9" * 3])
def test_any_key_below_an_array_is_a_chunk_of_its_grid_or_not_a_chunk(suffixes: list[str]) -> None:
    session = _session(shape=(10, 15), chunks=(5, 5))
    store = session.store
    grid = (2, 3)
    written = {}
    for suffix in suffixes:
        key = "a/" + suffix
        parts = suffix.split("/")
        is_chunk = (
            parts[0] == "c"
            and len(parts) == 3
            and all(p.isascii() and p.isdigit() and str(int(p)) == p for p in parts[1:])
            and all(int(p) < n for p, n in zip(parts[1:], grid, strict=True))
        )
        try:
            sync(store.set(key, _buf(PAYLOAD)))
        except InvalidKeyError:
            assert not is_chunk, key
            assert sync(store.get(key, PROTO)) is None
            assert not sync(store.exists(key))
            continue
        # Accepted: a chunk of the grid, or a key outside the chunk key space (an extra).
        assert is_chunk or not (suffix == "c" or suffix.startswith("c/")), key
        written[key] = PAYLOAD
    for key in written:
        assert sync(store.get(key, PROTO)).to_bytes() == PAYLOAD
    assert set(written) <= _keys(session)
    session.commit("whatever was accepted", allow_empty=True)
