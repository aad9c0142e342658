"""Importing plain Zarr v3 stores: exact copies, incremental re-imports, progress and errors."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import import_sources
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
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
    with pytest.raises(
        ic.InvalidImportSourceError, match=r"plain: no zarr\.json at its top"
    ) as err:
        import_zarr(session, str(tmp_path / "plain"))
    assert "v2" not in str(err.value) and "stores below" not in str(err.value)
    with pytest.raises(ic.InvalidImportSourceError, match="not a directory"):
        import_zarr(session, tmp_path / "plain" / "data.csv")
    zarr.open_group(LocalStore(tmp_path / "v2"), mode="w", zarr_format=2)
    with pytest.raises(ic.InvalidImportSourceError, match="looks like Zarr v2"):
        import_zarr(session, tmp_path / "v2")

    broken = write_source(tmp_path / "broken")
    (broken / "grp" / "zarr.json").write_text('{"zarr_format": 2}')
    with pytest.raises(
        ic.InvalidImportSourceError,
        match=re.escape(f"{broken}/grp/zarr.json is not valid Zarr v3 metadata: zarr_format:"),
    ) as bad_meta:
        import_zarr(session, broken)
    assert (bad_meta.value.key, bad_meta.value.field) == ("grp/zarr.json", "zarr_format")
    assert not isinstance(bad_meta.value, CorruptObjectError)  # the source, not the repository
    (broken / "grp" / "zarr.json").write_bytes(b"\xff not json")
    with pytest.raises(ic.InvalidImportSourceError, match=r"grp/zarr\.json .*not JSON"):
        import_zarr(session, broken)

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


# --- sources that are not a store root, bad metadata, deletions, v2 leftovers -----------------


def _committed(repo: ic.Repository) -> ic.Session:
    """A branch with content: a group and an array, committed on main."""
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    root.create_group("keep").create_array("x", shape=(3,), dtype="i4")[:] = [1, 2, 3]
    session.commit("setup")
    return repo.writable_session("main")


def test_a_directory_that_is_not_a_store_root_is_refused(
    memory_repo: ic.Repository, tmp_path: Path
) -> None:
    parent = tmp_path / "parent"
    for name in ("b.zarr", "a.zarr", "deep/er/c.zarr"):
        zarr.open_group(LocalStore(parent / name), mode="w").create_array(
            "x", shape=(2,), dtype="i1"
        )[:] = 1
    (parent / "notes.txt").write_text("not zarr")
    session = _committed(memory_repo)
    with pytest.raises(ic.InvalidImportSourceError, match=r"no zarr\.json at its top") as err:
        import_zarr(session, parent)
    found = str(err.value).partition("stores below it: ")[2].split(", ")
    # Nearest first, each store once (not the arrays inside it).
    assert found == [str(parent / "a.zarr"), str(parent / "b.zarr"), str(parent / "deep/er/c.zarr")]
    assert err.value.key == "zarr.json"
    assert not session.has_uncommitted_changes


def test_the_store_root_hint_is_bounded(memory_repo: ic.Repository, tmp_path: Path) -> None:
    parent = tmp_path / "many"
    for i in range(12):
        zarr.open_group(LocalStore(parent / f"s{i:02}"), mode="w")
    with pytest.raises(ic.InvalidImportSourceError) as err:
        import_zarr(memory_repo.writable_session("main"), parent)
    listed = str(err.value).partition("stores below it: ")[2]
    assert listed.endswith(", ...")
    assert listed.count(str(parent)) == 5


def test_deletes_are_refused_unless_allowed(memory_repo: ic.Repository, source: Path) -> None:
    session = _committed(memory_repo)
    with pytest.raises(ic.ImportWouldDeleteError) as err:
        import_zarr(session, source, allow_deletes=False)
    assert err.value.paths == ["/keep", "/keep/x"]
    assert (err.value.dest, err.value.source) == ("/", str(source))
    assert "2 node(s) below /" in str(err.value)
    assert not session.has_uncommitted_changes

    # Below another path nothing is deleted, so nothing needs allowing.
    stats = import_zarr(session, source, "/imported", allow_deletes=False)
    assert stats.deleted_paths == [] and stats.arrays_created == len(ARRAYS)

    stats = import_zarr(session, source, allow_deletes=True)
    assert stats.deleted_paths == ["/imported", *sorted(
        f"/imported/{p}" for p in ("grp", *ARRAYS)
    ), "/keep", "/keep/x"]  # fmt: skip
    assert "deleted_paths" not in stats.as_dict()
    assert stats.groups_deleted == 3 and stats.arrays_deleted == len(ARRAYS) + 1


def test_v2_nodes_inside_a_v3_store_are_reported(memory_repo: ic.Repository, source: Path) -> None:
    old = zarr.open_group(LocalStore(source / "grp" / "old"), mode="w", zarr_format=2)
    old.create_array("inner", shape=(4,), chunks=(2,), dtype="i2")[:] = 5
    zarr.open_array(LocalStore(source / "legacy"), mode="w", shape=(2,), dtype="i1", zarr_format=2)[
        :
    ] = 1
    stats = import_zarr(memory_repo.writable_session("main"), source)
    assert stats.skipped_v2 == ["grp/old", "legacy"]
    assert stats.arrays_created == len(ARRAYS)  # nothing of them imported
    assert "skipped_v2" not in stats.as_dict()


def test_chunk_keys_beyond_the_grid_are_skipped(memory_repo: ic.Repository, tmp_path: Path) -> None:
    src = zarr.open_group(LocalStore(tmp_path / "src"), mode="w")
    src.create_array("a", shape=(4,), chunks=(2,), dtype="i1", compressors=None)[:] = 3
    (tmp_path / "src" / "a" / "c" / "5").write_bytes(b"\x01\x02")  # a 3-chunk grid has no 5
    session = memory_repo.writable_session("main")
    stats = import_zarr(session, tmp_path / "src")
    assert (stats.chunks_written, stats.other_keys_skipped) == (2, 1)
    assert session.status().updated_chunks == {"/a": [[0], [1]]}


def _meta(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


BAD_META: list[tuple[str, Any, str]] = [
    # (dotted field, value or DELETE, the field the error names)
    ("chunk_grid.configuration.chunk_shape", ["a"], "chunk_grid.configuration.chunk_shape"),
    ("chunk_grid.configuration.chunk_shape", [0], "chunk_grid.configuration.chunk_shape"),
    ("chunk_grid.configuration.chunk_shape", [-2], "chunk_grid.configuration.chunk_shape"),
    ("chunk_grid.configuration.chunk_shape", [True], "chunk_grid.configuration.chunk_shape"),
    ("chunk_grid.configuration.chunk_shape", [2, 2], "chunk_grid.configuration.chunk_shape"),
    ("chunk_grid.configuration", None, "chunk_grid.configuration.chunk_shape"),
    ("chunk_grid.name", "rectilinear", "chunk_grid"),
    ("shape", [-1], "shape"),
    ("shape", "10", "shape"),
    ("shape", [2**63], "shape"),
    ("shape", [2**62, 2**62], "shape"),  # a grid of 2**124 chunks of (1, 1)
    ("data_type", "nope", "data_type"),
    ("data_type", None, "data_type"),
    ("fill_value", "not a number", "fill_value"),
    ("fill_value", "DELETE", "fill_value"),
    ("codecs", [{"name": "no-such-codec"}], "codecs"),
    ("codecs", "DELETE", "codecs"),
    ("chunk_key_encoding", {"name": "sideways"}, "chunk_key_encoding"),
    ("attributes", [1, 2], "attributes"),
    ("node_type", "folder", "node_type"),
    ("zarr_format", 3.5, "zarr_format"),
    ("dimension_names", ["x", "y"], ""),  # zarr's own check: one name per dimension
]


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        doc = doc[p]
    if value == "DELETE":
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize(("field", "value", "named"), BAD_META, ids=lambda v: str(v)[:40])
def test_bad_source_metadata_is_refused_before_any_change(
    memory_repo: ic.Repository, tmp_path: Path, field: str, value: Any, named: str
) -> None:
    src = zarr.open_group(LocalStore(tmp_path / "src"), mode="w")
    src.create_array("a", shape=(10,), chunks=(5,), dtype="i2")[:] = 4
    meta = tmp_path / "src" / "a" / "zarr.json"
    doc = _meta(meta)
    if field == "chunk_grid.configuration.chunk_shape" and value == [2, 2]:
        doc["dimension_names"] = None
    if field == "shape" and isinstance(value, list) and len(value) == 2:
        doc["chunk_grid"]["configuration"]["chunk_shape"] = [1, 1]
    _set(doc, field, value)
    meta.write_text(json.dumps(doc))
    session = _committed(memory_repo)
    with pytest.raises(ic.InvalidImportSourceError) as err:
        import_zarr(session, tmp_path / "src")
    message = str(err.value)
    assert message.startswith(f"cannot import {tmp_path / 'src'}: {meta} is not valid Zarr v3")
    assert (err.value.key, err.value.field) == ("a/zarr.json", named)
    if named:
        assert f"metadata: {named}: " in message
    assert not session.has_uncommitted_changes


@pytest.mark.filterwarnings("ignore::zarr.errors.ZarrFutureWarning")
@pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(import_sources.TARGETS), changes=import_sources.mutations)
def test_fuzzed_source_metadata_imports_exactly_or_is_refused(
    target: str, changes: list[tuple[str, Any, Any]]
) -> None:
    """Damaged JSON, wrong types, zero, negative and huge dimensions: either the import reads
    back as zarr reads the source, or it is refused naming the source, with nothing changed."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        import_sources.write_base(src)
        import_sources.apply(src, target, changes)
        session = _committed(ic.Repository.create(ic.in_memory_storage()))
        try:
            import_zarr(session, src, "/imported", allow_deletes=False)
        except ic.InvalidImportSourceError as err:
            event(f"refused: {err.field}")
            assert err.key == target
            assert str(err).startswith(f"cannot import {src}: {src / target} is not valid")
            assert not session.has_uncommitted_changes
            return
        event("imported")
        import_sources.assert_reads_back(src, session.store, "imported/")
        np.testing.assert_array_equal(zarr.open_array(session.store, path="keep/x")[:], [1, 2, 3])
