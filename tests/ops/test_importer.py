"""Importing plain Zarr v3 stores: exact copies, incremental re-imports, progress and errors."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore, LocalStore, WrapperStore

import icechunk_lib as ic
from icechunk_lib._sync import run
from icechunk_lib.errors import CorruptObjectError, InvalidNameError, InvalidStorageURLError
from icechunk_lib.ops.importer import ImportStats, import_zarr, import_zarr_async

INLINE_LIMIT = 512  # the default inline_chunk_threshold_bytes
EXTRA_FILES = ("README.txt", "grp/f8/notes.txt")
ARRAYS = ("grp/f8", "grp/sharded", "i4", "scalar", "small", "v2keys")


def _values(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Non-zero values, so zarr writes every chunk (it skips chunks equal to the fill)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 100, size=shape)).astype(dtype)


def write_source(path: Path) -> Path:
    """A hierarchy written by plain zarr: groups, attributes, 0-d, sharded and v2-keyed arrays."""
    root = zarr.open_group(LocalStore(path), mode="w", attributes={"title": "source"})
    grp = root.create_group("grp", attributes={"units": "m"})
    # compressors=None and chunks over 512 bytes keep these chunks native, not inline.
    f8 = grp.create_array("f8", shape=(40, 40), chunks=(10, 10), dtype="f8", compressors=None)
    f8[:] = _values((40, 40), "f8", 1)
    sharded = grp.create_array(
        "sharded", shape=(32, 32), chunks=(8, 8), shards=(16, 16), dtype="f8", compressors=None
    )
    sharded[:] = _values((32, 32), "f8", 2)
    i4 = root.create_array(
        "i4", shape=(1000,), chunks=(200,), dtype="i4", compressors=None, attributes={"k": [1]}
    )
    i4[:] = _values((1000,), "i4", 3)
    scalar = root.create_array("scalar", shape=(), dtype="i8")
    scalar[()] = 42
    small = root.create_array("small", shape=(10,), chunks=(5,), dtype="u1")
    small[:] = _values((10,), "u1", 4)
    v2keys = root.create_array(
        "v2keys",
        shape=(10, 10),
        chunks=(5, 5),
        dtype="i2",
        chunk_key_encoding={"name": "v2", "separator": "."},
    )
    v2keys[:] = _values((10, 10), "i2", 5)
    for name in EXTRA_FILES:
        (path / name).write_bytes(b"not zarr")
    return path


def chunk_files(path: Path) -> dict[str, int]:
    """Source chunk key -> size: every file except metadata and the extra files."""
    files = {p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*")}
    return {
        k: size
        for k, size in files.items()
        if (path / k).is_file() and not k.endswith("zarr.json") and k not in EXTRA_FILES
    }


def native_count(path: Path) -> int:
    return sum(size > INLINE_LIMIT for size in chunk_files(path).values())


def repo_chunks(storage: ic.Storage) -> set[str]:
    """Keys of the native chunk objects in the repository."""

    async def collect() -> set[str]:
        return {info.key async for info in storage.list("chunks/")}

    return run(collect())


def assert_same_content(source: Path, session: ic.Session, dest: str = "") -> None:
    """Every array reads back identical and every ``zarr.json`` has the same bytes."""
    for meta in source.rglob("zarr.json"):
        rel = meta.relative_to(source).as_posix()
        got = session.store.get_sync(dest + rel)
        assert got is not None and got.to_bytes() == meta.read_bytes(), rel
    src = LocalStore(source, read_only=True)
    arrays = [
        m.parent.relative_to(source).as_posix()
        for m in source.rglob("zarr.json")
        if json.loads(m.read_bytes())["node_type"] == "array"
    ]
    assert arrays
    for name in arrays:
        theirs = zarr.open_array(src, path=name, mode="r")
        mine = zarr.open_array(session.store, path=dest + name, mode="r")
        np.testing.assert_array_equal(mine[...], theirs[...])
        assert mine.attrs.asdict() == theirs.attrs.asdict()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_source(tmp_path / "src")


@pytest.fixture
def memory_repo() -> ic.Repository:
    return ic.Repository.create(ic.in_memory_storage())


def test_import_into_root(repo: ic.Repository, storage: ic.Storage, source: Path) -> None:
    session = repo.writable_session("main")
    stats = import_zarr(session, source)

    chunks = chunk_files(source)
    assert len(chunks) == 16 + 4 + 5 + 1 + 2 + 4
    assert stats == ImportStats(
        groups_created=2,
        arrays_created=len(ARRAYS),
        chunks_written=len(chunks),
        bytes_written=sum(chunks.values()),
        other_keys_skipped=len(EXTRA_FILES),
    )
    assert stats.changed and stats.as_dict()["chunks_written"] == len(chunks)
    assert len(repo_chunks(storage)) == native_count(source) == len(chunks) - 7
    assert_same_content(source, session)

    status = session.status()
    assert status.new_groups == {"/", "/grp"}
    assert status.new_arrays == {f"/{a}" for a in ARRAYS}
    assert sum(len(c) for c in status.updated_chunks.values()) == len(chunks)
    session.commit("import")
    assert_same_content(source, repo.readonly_session("main"))


def test_import_into_subpath_keeps_the_rest(memory_repo: ic.Repository, source: Path) -> None:
    session = memory_repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    keep = root.create_array("keep", shape=(4,), dtype="i8")
    keep[:] = [1, 2, 3, 4]
    session.commit("setup")

    session = memory_repo.writable_session("main")
    stats = import_zarr(session, source, "/imports/v1")
    assert stats.groups_created == 3  # /imports (a missing ancestor), /imports/v1, its grp
    assert stats.arrays_created == len(ARRAYS) and stats.groups_deleted == 0
    assert_same_content(source, session, "imports/v1/")
    status = session.status()
    assert status.new_groups == {"/imports", "/imports/v1", "/imports/v1/grp"}
    assert "/keep" not in status.updated_chunks and not status.deleted_arrays
    np.testing.assert_array_equal(zarr.open_array(session.store, path="keep")[:], [1, 2, 3, 4])
    assert "imports" in dict(zarr.open_group(session.store, mode="r").groups())

    # Importing the same source again into the same session finds nothing to do.
    again = import_zarr(session, source, "imports/v1/")
    assert not again.changed
    assert again.chunks_unchanged == stats.chunks_written

    with pytest.raises(InvalidNameError, match="/keep is an array"):
        import_zarr(session, source, "/keep/inside")


def change_source(path: Path) -> tuple[dict[str, list[list[int]]], int]:
    """Edit the source with plain zarr; return the chunks a re-import must write or delete.

    Also returns the bytes it must write: two f8 chunks, the new array, one shard, the scalar.
    """
    store = LocalStore(path)
    f8 = zarr.open_array(store, path="grp/f8", mode="r+")
    f8[0:10, 0:10] = -1.0  # chunk (0, 0)
    f8[35, 35] = -2.0  # chunk (3, 3)
    (path / "grp/f8/c/1/1").unlink()  # chunk (1, 1) now reads as fill: deleted
    i4 = zarr.open_array(store, path="i4", mode="r+")
    i4[:] = i4[:]  # rewritten with identical bytes: unchanged
    zarr.open_array(store, path="grp/sharded", mode="r+")[0, 0] = 0.5  # shard (0, 0)
    zarr.open_array(store, path="scalar", mode="r+")[()] = 7  # an inline chunk
    new = zarr.create_array(
        store, name="grp/new", shape=(1000,), chunks=(250,), dtype="f8", compressors=None
    )
    new[:] = _values((1000,), "f8", 9)
    shutil.rmtree(path / "small")
    zarr.open_group(store, path="grp", mode="r+").attrs["units"] = "km"
    changed: dict[str, list[list[int]]] = {
        "/grp/f8": [[0, 0], [1, 1], [3, 3]],
        "/grp/new": [[0], [1], [2], [3]],
        "/grp/sharded": [[0, 0]],
        "/scalar": [[]],
    }
    measured = [path / "grp/sharded/c/0/0", path / "scalar/c"]
    return changed, 2 * 800 + 4 * 2000 + sum(p.stat().st_size for p in measured)


def test_reimport_writes_only_what_changed(
    repo: ic.Repository, storage: ic.Storage, source: Path
) -> None:
    session = repo.writable_session("main")
    import_zarr(session, source)
    session.commit("first import")
    before = repo_chunks(storage)
    changed, changed_bytes = change_source(source)

    session = repo.writable_session("main")
    stats = import_zarr(session, source)
    written = 2 + 4 + 1 + 1
    assert stats.as_dict() == {
        "groups_created": 0,
        "groups_updated": 1,
        "groups_deleted": 0,
        "arrays_created": 1,
        "arrays_updated": 0,
        "arrays_deleted": 1,
        "chunks_written": written,
        "chunks_unchanged": len(chunk_files(source)) - written,
        "chunks_deleted": 1,
        "bytes_written": changed_bytes,
        "other_keys_skipped": 2,
    }
    # Each native chunk written is exactly one new object; the scalar's chunk is inline.
    assert len(repo_chunks(storage) - before) == written - 1

    status = session.status()
    assert status.new_arrays == {"/grp/new"}
    assert status.deleted_arrays == {"/small"}
    assert status.updated_groups == {"/grp"}
    assert not status.updated_arrays and not status.new_groups and not status.deleted_groups
    assert status.updated_chunks == changed
    assert_same_content(source, session)
    session.commit("second import")

    session = repo.writable_session("main")
    before = repo_chunks(storage)
    stats = import_zarr(session, source)
    assert not stats.changed and not session.has_uncommitted_changes
    assert stats.chunks_unchanged == len(chunk_files(source))
    assert repo_chunks(storage) == before


def test_replaced_nodes_get_every_chunk(memory_repo: ic.Repository, tmp_path: Path) -> None:
    session = memory_repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    root.create_array("a", shape=(8,), chunks=(4,), dtype="f8")[:] = np.arange(1.0, 9.0)
    root.create_group("b").create_group("c")
    root.create_group("gone").create_array("x", shape=(2,), dtype="i1")[:] = [1, 2]
    session.commit("setup")

    src = zarr.open_group(LocalStore(tmp_path / "src"), mode="w")
    a = src.create_array("a", shape=(4, 4), chunks=(2, 2), dtype="f8")  # ndim changed
    a[:] = np.ones((4, 4))
    b = src.create_array("b", shape=(3,), dtype="i2")  # a group before
    b[:] = [1, 2, 3]

    session = memory_repo.writable_session("main")
    stats = import_zarr(session, tmp_path / "src")
    assert (stats.arrays_created, stats.arrays_deleted) == (2, 2)  # a and b; a and gone/x
    assert stats.groups_deleted == 3  # b, b/c and gone
    assert stats.chunks_written == 5 and stats.chunks_unchanged == stats.chunks_deleted == 0
    status = session.status()
    assert status.new_arrays == {"/a", "/b"}
    assert status.deleted_arrays == {"/a", "/gone/x"}
    assert status.deleted_groups == {"/b", "/b/c", "/gone"}
    np.testing.assert_array_equal(zarr.open_array(session.store, path="a")[:], np.ones((4, 4)))
    np.testing.assert_array_equal(zarr.open_array(session.store, path="b")[:], [1, 2, 3])


def test_progress_is_monotonic_and_ends_complete(memory_repo: ic.Repository, source: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    threads: set[int] = set()

    def progress(phase: str, done: int, total: int) -> None:
        calls.append((phase, done, total))
        threads.add(threading.get_ident())

    stats = import_zarr(memory_repo.writable_session("main"), source, progress=progress)
    phases = list(dict.fromkeys(phase for phase, _, _ in calls))
    assert phases == ["scan", "metadata", "chunks"]
    for phase in phases:
        dones = [done for p, done, _ in calls if p == phase]
        assert dones == sorted(dones)
        last = [(done, total) for p, done, total in calls if p == phase][-1]
        assert last[0] == last[1] > 0
    assert [t for p, _, t in calls if p == "metadata"][-1] == 8  # root, grp and 6 arrays
    assert [t for p, _, t in calls if p == "chunks"][-1] == stats.chunks_written + 2
    assert len(threads) == 1 and threading.get_ident() not in threads


class CountingStore(WrapperStore[LocalStore]):
    """Counts the reads in flight, to check the import's concurrency bound."""

    def __init__(self, store: LocalStore) -> None:
        super().__init__(store)
        self.active = self.peak = self.reads = 0
        self.fail: str | None = None

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        self.active += 1
        self.reads += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.001)
            if key == self.fail:
                raise OSError("disk on fire")
            return await self._store.get(key, prototype, byte_range)
        finally:
            self.active -= 1


def test_concurrency_is_bounded_and_store_left_open(
    memory_repo: ic.Repository, source: Path
) -> None:
    store = CountingStore(LocalStore(source, read_only=True))
    stats = import_zarr(memory_repo.writable_session("main"), store, concurrency=4)
    assert 2 <= store.peak <= 4
    assert store.reads == 8 + stats.chunks_written  # each key read once, nothing else
    assert zarr.open_group(store, mode="r").attrs["title"] == "source"


def test_source_read_failure_stops_every_read(memory_repo: ic.Repository, source: Path) -> None:
    store = CountingStore(LocalStore(source, read_only=True))
    store.fail = "grp/f8/c/2/2"
    with pytest.raises(ic.StorageError, match=r"read 'grp/f8/c/2/2' from .*disk on fire"):
        import_zarr(memory_repo.writable_session("main"), store, concurrency=8)
    assert store.active == 0  # nothing left running in the background


async def test_async_twin_and_file_url(memory_repo: ic.Repository, source: Path) -> None:
    session = memory_repo.writable_session("main")
    stats = await import_zarr_async(session, source.as_uri(), "/from_url")
    assert stats.arrays_created == len(ARRAYS)
    status = await session.status_async()
    assert "/from_url/grp/f8" in status.new_arrays


@pytest.fixture
def memory_url() -> Iterator[str]:
    """A fresh fsspec ``memory://`` location, removed afterwards."""
    name = f"ick-import-{uuid.uuid4().hex}"
    yield f"memory://{name}"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


def test_fsspec_url_source(memory_repo: ic.Repository, memory_url: str) -> None:
    root = zarr.open_group(FsspecStore.from_url(memory_url), mode="w", attributes={"x": 1})
    arr = root.create_array("a/b", shape=(20, 30), chunks=(7, 7), dtype="i8")
    arr[:] = np.arange(600).reshape(20, 30)
    session = memory_repo.writable_session("main")
    stats = import_zarr(session, memory_url)
    assert (stats.groups_created, stats.arrays_created, stats.chunks_written) == (2, 1, 15)
    got = zarr.open_array(session.store, path="a/b", mode="r")[:]
    np.testing.assert_array_equal(got, np.arange(600).reshape(20, 30))
    assert zarr.open_group(session.store, mode="r").attrs["x"] == 1


def test_bad_sources_raise_and_change_nothing(memory_repo: ic.Repository, tmp_path: Path) -> None:
    session = memory_repo.writable_session("main")
    missing = tmp_path / "missing"
    with pytest.raises(ic.StorageError, match=re.escape(f"{missing}: no such file")):
        import_zarr(session, missing)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.csv").write_text("1,2\n")
    with pytest.raises(ic.StorageError, match=r"plain: no zarr\.json found") as err:
        import_zarr(session, str(tmp_path / "plain"))
    assert "v2" not in str(err.value)
    with pytest.raises(ic.StorageError, match="not a directory"):
        import_zarr(session, tmp_path / "plain" / "data.csv")
    zarr.open_group(LocalStore(tmp_path / "v2"), mode="w", zarr_format=2)
    with pytest.raises(ic.StorageError, match="looks like Zarr v2"):
        import_zarr(session, tmp_path / "v2")

    write_source(tmp_path / "broken")
    (tmp_path / "broken" / "grp" / "zarr.json").write_text('{"zarr_format": 2}')
    with pytest.raises(CorruptObjectError, match=r"grp/zarr.json in .*broken"):
        import_zarr(session, tmp_path / "broken")
    (tmp_path / "broken" / "grp" / "zarr.json").write_bytes(b"\xff not json")
    with pytest.raises(CorruptObjectError, match="not Zarr v3"):
        import_zarr(session, tmp_path / "broken")

    with pytest.raises(InvalidStorageURLError, match="fsspec cannot open") as bad:
        import_zarr(session, "nosuchproto://user:secret@host/data?token=abc")
    assert "secret" not in str(bad.value) and "abc" not in str(bad.value)
    with pytest.raises(InvalidStorageURLError, match="absolute path"):
        import_zarr(session, "file://host/data")
    assert not session.has_uncommitted_changes


def test_read_only_session_refused_before_reading(memory_repo: ic.Repository) -> None:
    session = memory_repo.readonly_session("main")
    with pytest.raises(ic.ReadOnlySessionError, match="import a Zarr store"):
        import_zarr(session, "/does/not/exist")
