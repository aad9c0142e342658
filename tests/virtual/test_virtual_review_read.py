"""Hostile reads of virtual chunks from ``file://`` containers: the container in effect
for a location follows the config as it is now, and ranges of one object requested
together (overlapping, identical, at its end, partial) each get their own bytes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import (
    VirtualContainerNotAuthorizedError,
    VirtualContainerNotFoundError,
    VirtualSourceTruncatedError,
)

DATA = bytes(range(256)) * 4


def _repo(tmp_path: Path) -> tuple[ic.Repository, str]:
    """A repository declaring and authorising the container ``src/``, holding ``sub/f``."""
    outer = f"file://{tmp_path}/src/"
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "f").write_bytes(DATA)
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(outer, ic.local_filesystem_store(str(tmp_path / "src")))
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")),
        config,
        authorize_virtual_chunk_access={outer: None},
    )
    return repo, outer


def test_a_container_declared_in_place_after_a_read_takes_over_its_locations(
    tmp_path: Path,
) -> None:
    repo, outer = _repo(tmp_path)
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="x", shape=(64,), chunks=(64,), dtype="u1", compressors=None
    )
    session.store.set_virtual_ref("x/c/0", outer + "sub/f", offset=0, length=64)
    session.commit("virtual")
    arr = zarr.open_array(repo.readonly_session(branch="main").store, path="x", mode="r")
    np.testing.assert_array_equal(arr[:], np.frombuffer(DATA[:64], dtype="u1"))
    # The dict edited in place: the longer prefix wins, and it was not authorised.
    inner = outer + "sub/"
    repo.config.virtual_chunk_containers[inner] = ic.VirtualChunkContainer(  # type: ignore[index]
        inner, ic.local_filesystem_store(str(tmp_path / "src" / "sub"))
    )
    with pytest.raises(VirtualContainerNotAuthorizedError, match=inner):
        arr[:]


def _spans_repo(tmp_path: Path, spans: list[tuple[int, int]]) -> tuple[ic.Repository, int]:
    """A committed array whose chunk i is ``spans[i]`` = (offset, length) of one file."""
    repo, outer = _repo(tmp_path)
    session = repo.writable_session("main")
    n = len(spans)
    zarr.create_array(
        session.store, name="x", shape=(n * 64,), chunks=(64,), dtype="u1", compressors=None
    )
    for i, (offset, length) in enumerate(spans):
        session.store.set_virtual_ref(f"x/c/{i}", outer + "sub/f", offset=offset, length=length)
    session.commit("virtual")
    return repo, n


SPANS = [(0, 64), (32, 64), (0, 64), (1000, 24), (960, 64), (100, 1), (512, 64), (980, 64)]
"""Overlapping, identical, ending at the file's end, one byte, far apart, past the end."""


def _expected(offset: int, length: int, start: int, end: int) -> bytes:
    return DATA[offset : offset + length][start:end]


def test_ranges_of_one_object_requested_together_each_get_their_own_bytes(
    tmp_path: Path,
) -> None:
    from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
    from zarr.core.buffer import default_buffer_prototype

    repo, n = _spans_repo(tmp_path, SPANS)
    proto = default_buffer_prototype()
    asks = []
    for i in range(n - 1):  # the last one runs past the file's end
        length = SPANS[i][1]
        asks += [
            (i, None, 0, length),
            (i, RangeByteRequest(0, 1), 0, 1),
            (i, OffsetByteRequest(length - 1), length - 1, length),
            (i, SuffixByteRequest(2), max(length - 2, 0), length),
            (i, RangeByteRequest(1, 10**9), 1, length),
        ]

    async def read_all() -> list[bytes | None]:
        store = repo.readonly_session(branch="main").store
        got = await store.get_partial_values(proto, [(f"x/c/{i}", r) for i, r, _, _ in asks])
        return [None if b is None else b.to_bytes() for b in got]

    def check(got: list[bytes | None]) -> None:
        for (i, rng, start, end), data in zip(asks, got, strict=True):
            assert data == _expected(*SPANS[i], start, end), (i, rng)

    check(asyncio.run(read_all()))
    # The same from four threads at once, each with its own event loop.
    results: list[list[bytes | None]] = []
    threads = [
        threading.Thread(target=lambda: results.append(asyncio.run(read_all()))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4
    for got in results:
        check(got)


def test_a_range_past_the_end_fails_alone_in_its_batch(tmp_path: Path) -> None:
    from zarr.core.buffer import default_buffer_prototype

    repo, n = _spans_repo(tmp_path, SPANS)
    store = repo.readonly_session(branch="main").store
    proto = default_buffer_prototype()

    async def one(i: int) -> bytes | BaseException:
        try:
            buf = await store.get(f"x/c/{i}", proto)
        except VirtualSourceTruncatedError as exc:
            return exc
        assert buf is not None
        return buf.to_bytes()

    async def go() -> list[bytes | BaseException]:
        return list(await asyncio.gather(*(one(i) for i in range(n))))

    got = asyncio.run(go())
    for i in range(n - 1):
        assert got[i] == _expected(*SPANS[i], 0, SPANS[i][1])
    assert isinstance(got[-1], VirtualSourceTruncatedError)
    assert "sub/f" in str(got[-1])


@pytest.mark.parametrize("spelling", ["%73ub/f", "sub%2Ff", "%73%75%62%2F%66"])
def test_a_percent_encoded_location_belongs_to_the_container_of_the_object_it_names(
    tmp_path: Path, spelling: str
) -> None:
    # The outer container is authorised, the inner one (a longer prefix) is not: spelling
    # the inner object's path with escapes must not read it through the outer container.
    repo, outer = _repo(tmp_path)
    inner = outer + "sub/"
    repo.config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(inner, ic.local_filesystem_store(str(tmp_path / "src" / "sub")))
    )
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="x", shape=(64,), chunks=(64,), dtype="u1", compressors=None
    )
    session.store.set_virtual_ref("x/c/0", outer + spelling, offset=0, length=64)
    session.commit("virtual")
    arr = zarr.open_array(repo.readonly_session(branch="main").store, path="x", mode="r")
    with pytest.raises(VirtualContainerNotAuthorizedError, match=inner):
        arr[:]


def test_an_old_snapshot_reads_through_the_containers_declared_now(tmp_path: Path) -> None:
    # Containers are repository config, not history (as in Icechunk): time travel to a
    # snapshot written under a container since forgotten fails naming the location.
    repo, outer = _repo(tmp_path)
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="x", shape=(64,), chunks=(64,), dtype="u1", compressors=None
    )
    session.store.set_virtual_ref("x/c/0", outer + "sub/f", offset=64, length=64)
    old = session.commit("virtual")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="x")[:] = 0
    session.commit("native now")
    arr = zarr.open_array(repo.readonly_session(snapshot_id=old).store, path="x", mode="r")
    np.testing.assert_array_equal(arr[:], np.frombuffer(DATA[64:128], dtype="u1"))
    repo.config.clear_virtual_chunk_containers()
    repo.save_config()
    reopened = ic.Repository.open(
        ic.local_filesystem_storage(str(tmp_path / "repo")),
        authorize_virtual_chunk_access={outer: None},
    )
    for where in (repo, reopened):
        arr = zarr.open_array(where.readonly_session(snapshot_id=old).store, path="x", mode="r")
        with pytest.raises(VirtualContainerNotFoundError, match=outer + "sub/f"):
            arr[:]


def test_etag_spellings_and_last_updated_at_to_the_second(tmp_path: Path) -> None:
    import datetime as dt
    import os

    from icechunk_lib.errors import VirtualSourceChangedError
    from icechunk_lib.virtual import local_file_etag

    repo, outer = _repo(tmp_path)
    source = tmp_path / "src" / "sub" / "f"
    os.utime(source, ns=(1_700_000_000_500_000_000, 1_700_000_000_500_000_000))
    tag = local_file_etag(source)
    at = dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    checks: list[object] = [
        tag,
        f'"{tag}"',
        f'W/"{tag}"',
        at,
        "0-0-0",
        at - dt.timedelta(seconds=1),
    ]
    session = repo.writable_session("main")
    zarr.create_array(
        session.store,
        name="x",
        shape=(64 * len(checks),),
        chunks=(64,),
        dtype="u1",
        compressors=None,
    )
    for i, checksum in enumerate(checks):
        session.store.set_virtual_ref(
            f"x/c/{i}",
            outer + "sub/f",
            offset=0,
            length=64,
            checksum=checksum,  # type: ignore[arg-type]
        )
    session.commit("virtual")
    arr = zarr.open_array(repo.readonly_session(branch="main").store, path="x", mode="r")
    for i in range(4):  # quoted, bare or weak; modified within the second of last_updated_at
        np.testing.assert_array_equal(arr[i * 64 : i * 64 + 64], np.frombuffer(DATA[:64], "u1"))
    for i in (4, 5):  # another ETag; modified the second after
        with pytest.raises(VirtualSourceChangedError, match="sub/f"):
            arr[i * 64 : i * 64 + 64]


@pytest.mark.parametrize(("offset", "length"), [(2**63, 64), (2**64 - 65, 64), (0, 2**50)])
def test_a_range_far_past_a_local_file_is_truncated_not_a_crash(
    tmp_path: Path, offset: int, length: int
) -> None:
    # Read as it is, 2**63 overflows pread's offset and 2**50 asks it for a 1 PiB buffer.
    repo, outer = _repo(tmp_path)
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="x", shape=(64,), chunks=(64,), dtype="u1", compressors=None
    )
    session.store.set_virtual_ref("x/c/0", outer + "sub/f", offset=offset, length=length)
    session.commit("virtual")
    arr = zarr.open_array(repo.readonly_session(branch="main").store, path="x", mode="r")
    with pytest.raises(VirtualSourceTruncatedError, match="sub/f"):
        arr[:]
