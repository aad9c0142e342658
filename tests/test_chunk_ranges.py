"""Byte-range reads of chunks are checked: zarr sharding reads a shard's index by a suffix
range and then one range per inner chunk, and none of these may return damaged bytes that a
check could have caught.

A chunk of at most ``RANGE_VERIFY_LIMIT`` bytes is read whole, checked against its manifest
checksum and kept for the following ranges; a bigger one is read by range and its size is
checked against the manifest. Files are damaged on a real local repository and in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from faulty_storage import FaultyStorage
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.errors import CorruptObjectError
from icechunk_lib.objects import RANGE_VERIFY_LIMIT

Damage = Callable[[bytes], bytes]


class Repo:
    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.root = tmp_path / "repo"
        if kind == "local":
            self.storage = ic.local_filesystem_storage(str(self.root))
        else:
            self.storage = ic.in_memory_storage()
        self.repo = ic.Repository.create(self.storage)

    def chunk_keys(self) -> list[str]:
        async def collect() -> list[str]:
            return sorted([info.key async for info in self.storage.list("chunks/")])

        return sync(collect())

    def damage(self, key: str, how: Damage) -> None:
        """Rewrite ``key`` in place (a plain file write on local disk)."""
        if self.kind == "local":
            path = self.root / key
            path.write_bytes(how(path.read_bytes()))
        else:
            sync(self.storage.put(key, how(sync(self.storage.get(key)))))

    def fresh_array(self) -> zarr.Array:
        """Array ``s`` read through a repository opened anew (nothing cached)."""
        store = ic.Repository.open(self.storage).readonly_session("main").store
        return zarr.open_array(store, path="s", mode="r")


@pytest.fixture(params=["local", "memory"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Repo:
    return Repo(request.param, tmp_path)


def write_sharded(repo: Repo, side: int, chunk: int, shard: int) -> np.ndarray:
    """Commit an uncompressed sharded int64 array ``s`` of ``side x side``; return its values."""
    values = np.arange(side * side, dtype="int64").reshape(side, side)
    session = repo.repo.writable_session("main")
    arr = zarr.create_array(
        session.store,
        name="s",
        shape=values.shape,
        dtype="int64",
        chunks=(chunk, chunk),
        shards=(shard, shard),
        compressors=None,
    )
    arr[:] = values
    session.commit("sharded")
    return values


def flip_at(offset: int) -> Damage:
    return lambda b: b[:offset] + bytes([b[offset] ^ 0xFF]) + b[offset + 1 :]


# --- shards small enough to be checked whole ------------------------------------------------


def test_small_shards_are_within_the_whole_check_limit(repo: Repo) -> None:
    write_sharded(repo, 64, 8, 32)
    sizes = [sync(repo.storage.size(k)) for k in repo.chunk_keys()]
    assert len(sizes) == 4 and max(sizes) <= RANGE_VERIFY_LIMIT


@pytest.mark.parametrize("where", ["first inner chunk", "shard index"])
def test_damaged_small_shard_is_refused_on_partial_read(repo: Repo, where: str) -> None:
    values = write_sharded(repo, 64, 8, 32)
    key = repo.chunk_keys()[0]
    size = sync(repo.storage.size(key))
    # The first inner chunk starts the file; the index (with zarr's crc32c) ends it.
    offset = 3 if where == "first inner chunk" else size - 10
    repo.damage(key, flip_at(offset))
    arr = repo.fresh_array()
    # Which shard the key is: every read of one inner chunk of each shard, one must fail.
    failures = []
    for row in (0, 32):
        for col in (0, 32):
            try:
                got = arr[row : row + 8, col : col + 8]
            except CorruptObjectError as err:
                failures.append(err)
            else:
                np.testing.assert_array_equal(got, values[row : row + 8, col : col + 8])
    assert len(failures) == 1
    assert key in failures[0].path and "does not match the manifest" in str(failures[0])


def test_undamaged_small_shards_read_back_by_parts(repo: Repo) -> None:
    values = write_sharded(repo, 64, 8, 32)
    arr = repo.fresh_array()
    for row in range(0, 64, 8):
        np.testing.assert_array_equal(arr[row : row + 8, 5:20], values[row : row + 8, 5:20])
    np.testing.assert_array_equal(arr[:], values)


# --- shards bigger than the limit: their size is checked ------------------------------------


BIG_SIDE = 1024  # one int64 shard of 8 MiB (plus its index)


def big(repo: Repo) -> tuple[np.ndarray, str, int]:
    values = write_sharded(repo, BIG_SIDE, 128, BIG_SIDE)
    (key,) = repo.chunk_keys()
    size = sync(repo.storage.size(key))
    assert size > RANGE_VERIFY_LIMIT
    return values, key, size


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-100], id="truncated"),
        pytest.param(lambda b: b + b"\0" * 100, id="padded"),
        pytest.param(lambda b: b[: -(1 << 20)], id="cut-by-a-mebibyte"),
    ],
)
def test_resized_big_shard_is_refused_on_partial_read(repo: Repo, damage: Damage) -> None:
    _, key, _ = big(repo)
    repo.damage(key, damage)
    with pytest.raises(CorruptObjectError, match="does not match the manifest") as exc:
        repo.fresh_array()[:8, :8]
    assert key in exc.value.path


def test_flipped_byte_in_big_shard_is_refused_on_whole_read(repo: Repo) -> None:
    # A whole read (every inner chunk: zarr fetches the shard at once) checks the checksum.
    _, key, _ = big(repo)
    repo.damage(key, flip_at(12345))
    with pytest.raises(CorruptObjectError, match="does not match the manifest") as exc:
        repo.fresh_array()[:]
    assert key in exc.value.path


def test_undamaged_big_shard_reads_back_by_parts(repo: Repo) -> None:
    values, _, _ = big(repo)
    arr = repo.fresh_array()
    np.testing.assert_array_equal(arr[:8, :8], values[:8, :8])
    np.testing.assert_array_equal(arr[500:700, 900:], values[500:700, 900:])


# --- the store's byte ranges directly -------------------------------------------------------


def test_store_byte_ranges_of_a_damaged_chunk(repo: Repo) -> None:
    write_sharded(repo, 64, 8, 32)
    key = repo.chunk_keys()[0]
    size = sync(repo.storage.size(key))
    repo.damage(key, flip_at(size // 2))
    store = ic.Repository.open(repo.storage).readonly_session("main").store
    proto = default_buffer_prototype()
    refused = 0
    for zkey in ("s/c/0/0", "s/c/0/1", "s/c/1/0", "s/c/1/1"):
        for rng in (RangeByteRequest(0, 16), SuffixByteRequest(8), RangeByteRequest(0, size)):
            try:
                sync(store.get(zkey, proto, rng))
            except CorruptObjectError as err:
                assert key in err.path
                refused += 1
    assert refused == 3  # every range of the damaged shard, none of the others


# --- what a partial read costs ---------------------------------------------------------------


@pytest.mark.parametrize("side", [64, BIG_SIDE])
def test_partial_reads_fetch_a_small_shard_once_and_stat_a_big_one_once(
    tmp_path: Path, side: int
) -> None:
    repo = Repo("memory", tmp_path)
    chunk, shard = (8, 32) if side == 64 else (128, side)
    values = write_sharded(repo, side, chunk, shard)
    counting = FaultyStorage(repo.storage)
    arr = zarr.open_array(
        ic.Repository.open(counting).readonly_session("main").store, path="s", mode="r"
    )
    counting.reset()
    for row in (0, 8, 16):  # three separate reads of inner chunks of the first shard
        np.testing.assert_array_equal(arr[row : row + 8, :8], values[row : row + 8, :8])
    chunk_calls = [(c.method, c.key) for c in counting.calls if c.key.startswith("chunks/")]
    (key,) = {k for _, k in chunk_calls}
    if side == 64:  # read whole and checked once, the later ranges served from that copy
        assert chunk_calls == [("get", key)]
    else:  # read by range each time (index + inner chunk), its size looked up once
        assert chunk_calls.count(("size", key)) == 1
        assert chunk_calls.count(("get", key)) == 6
