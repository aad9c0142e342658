"""Session behaviour: reads through the change set, status, discard, moves, pickling, layout."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zarr.core.buffer import default_buffer_prototype

import icechunk_lib as ic
from icechunk_lib.format import content_checksum
from icechunk_lib.session import workspace_of


def _keys(storage: ic.Storage, prefix: str) -> set[str]:
    from icechunk_lib._sync import run

    async def collect() -> set[str]:
        return {info.key async for info in storage.list(prefix)}

    return run(collect())


def _array_repo(storage: ic.Storage, **kwargs: object) -> tuple[ic.Repository, np.ndarray]:
    repo = ic.Repository.create(storage, **kwargs)  # type: ignore[arg-type]
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    values = np.arange(400, dtype="f8").reshape(20, 20)
    arr = root.create_array("grp/a", shape=(20, 20), chunks=(5, 5), dtype="f8", compressors=None)
    arr[:] = values
    session.commit("setup")
    return repo, values


def test_read_your_writes_and_status(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    assert not session.has_uncommitted_changes
    root = zarr.open_group(session.store, mode="w")
    arr = root.create_array("a", shape=(6,), chunks=(2,), dtype="i8")
    arr[:] = [1, 2, 3, 4, 5, 6]
    assert session.has_uncommitted_changes
    np.testing.assert_array_equal(zarr.open_array(session.store, path="a")[:], [1, 2, 3, 4, 5, 6])
    status = session.status()
    assert status.new_groups == {"/"} and status.new_arrays == {"/a"}
    assert status.updated_chunks == {"/a": [[0], [1], [2]]}
    session.discard_changes()
    assert not session.has_uncommitted_changes
    assert session.status().is_empty()
    with pytest.raises(FileNotFoundError):
        zarr.open_array(session.store, path="a", mode="r")


def test_session_is_read_only_after_commit(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="w")
    snap = session.commit("root")
    assert session.read_only and session.snapshot_id == snap
    with pytest.raises(ic.ReadOnlySessionError):
        session.commit("again")
    with pytest.raises(ValueError, match="read-only"):
        zarr.open_group(session.store, mode="a").attrs["x"] = 1


def test_empty_commit_refused_unless_allowed(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    with pytest.raises(ic.NoChangesToCommitError):
        session.commit("nothing")
    snap = session.commit("nothing, on purpose", allow_empty=True)
    assert repo.lookup_branch("main") == snap


def test_small_chunks_inline_large_chunks_native(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=100)
    repo = ic.Repository.create(storage, config=config)
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    small = root.create_array("small", shape=(4,), chunks=(4,), dtype="i1", compressors=None)
    small[:] = 1
    big = root.create_array("big", shape=(64,), chunks=(32,), dtype="f8", compressors=None)
    big[:] = np.arange(64)
    session.commit("sizes")
    assert len(_keys(storage, "chunks/")) == 2  # only the two 256-byte chunks of "big"
    ro = repo.readonly_session("main")
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="small")[:], [1, 1, 1, 1])
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="big")[:], np.arange(64))


def test_checksums_recorded_for_every_chunk(storage: ic.Storage) -> None:
    repo, _ = _array_repo(storage)
    ro = repo.readonly_session("main")
    node = ic._sync.run(workspace_of(ro).nodes())["/grp/a"]
    for coords in [(0, 0), (3, 3), (1, 2)]:
        ref = ic._sync.run(workspace_of(ro).chunk_ref(node, coords))
        assert ref is not None
        data = ic._sync.run(workspace_of(ro).read_ref(ref))
        assert ref.checksum == content_checksum(data) != 0


@pytest.mark.parametrize("side", [1000, 40_000], ids=["small", "large"])
def test_damaged_chunk_is_detected_on_read(storage: ic.Storage, side: int) -> None:
    # Every chunk is hashed when written and checked when read whole, small or large (here
    # 8 kB and 320 kB): a changed byte must be caught either way.
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(side,), chunks=(side,), dtype="f8", compressors=None
    )
    values = np.arange(side, dtype="f8") + 1.0
    arr[:] = values
    session.commit("one chunk")
    ro = repo.readonly_session("main")
    node = ic._sync.run(workspace_of(ro).nodes())["/a"]
    ref = ic._sync.run(workspace_of(ro).chunk_ref(node, (0,)))
    assert ref is not None and ref.length == side * 8
    data = ic._sync.run(workspace_of(ro).read_ref(ref))
    assert ref.checksum == content_checksum(data)
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="a")[:], values)

    (key,) = _keys(storage, "chunks/")
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x01
    ic._sync.run(storage.put(key, bytes(damaged)))
    reader = repo.readonly_session("main")
    with pytest.raises(ic.CorruptObjectError, match="does not match the manifest"):
        zarr.open_array(reader.store, path="a")[:]


def test_move_and_delete_cost_metadata_only(storage: ic.Storage) -> None:
    repo, values = _array_repo(storage)
    chunks_before = _keys(storage, "chunks/")
    manifests_before = _keys(storage, "manifests/")
    session = repo.writable_session("main")
    session_nodes_before = len(ic._sync.run(workspace_of(session).nodes()))
    session.move("/grp", "/renamed")
    assert len(ic._sync.run(workspace_of(session).nodes())) == session_nodes_before
    status = session.status()
    assert ("/grp/a", "/renamed/a") in status.moved_nodes
    session.commit("rename")
    assert _keys(storage, "chunks/") == chunks_before
    assert _keys(storage, "manifests/") == manifests_before
    ro = repo.readonly_session("main")
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="renamed/a")[:], values)
    with pytest.raises(FileNotFoundError):
        zarr.open_array(ro.store, path="grp/a", mode="r")

    session = repo.writable_session("main")
    ic._sync.run(session.store.delete_dir("renamed"))
    session.commit("delete")
    assert _keys(storage, "manifests/") == manifests_before
    assert _keys(storage, "chunks/") == chunks_before
    assert list(zarr.open_group(repo.readonly_session("main").store, mode="r").keys()) == []


def test_read_only_session_and_store_pickle(storage: ic.Storage) -> None:
    repo, values = _array_repo(storage)
    ro = repo.readonly_session("main")
    clone = pickle.loads(pickle.dumps(ro))
    assert clone == ro and clone.read_only
    np.testing.assert_array_equal(zarr.open_array(clone.store, path="grp/a")[:], values)
    store = pickle.loads(pickle.dumps(ro.store))
    assert store == ro.store and store.read_only
    np.testing.assert_array_equal(zarr.open_array(store, path="grp/a")[:], values)


def test_writable_session_pickle_carries_changes(storage: ic.Storage) -> None:
    repo, _ = _array_repo(storage)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="grp/a")[0, 0] = -1.0
    clone = pickle.loads(pickle.dumps(session))
    assert clone.has_uncommitted_changes
    assert zarr.open_array(clone.store, path="grp/a")[0, 0] == -1.0
    clone.commit("from the clone")
    assert zarr.open_array(repo.readonly_session("main").store, path="grp/a")[0, 0] == -1.0


def test_split_manifests_rewrite_only_touched_pieces(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(
        inline_chunk_threshold_bytes=0, manifest=ic.ManifestConfig(max_refs_per_manifest=4)
    )
    repo, values = _array_repo(storage, config=config)
    ro = repo.readonly_session("main")
    node = ic._sync.run(workspace_of(ro).nodes())["/grp/a"]
    assert len(node.manifests) == 4  # 16 chunks, 4 per manifest
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="grp/a")[:], values)

    before = _keys(storage, "manifests/")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="grp/a")[19, 19] = -5.0
    session.commit("one chunk")
    assert len(_keys(storage, "manifests/") - before) == 1
    ro = repo.readonly_session("main")
    expected = values.copy()
    expected[19, 19] = -5.0
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="grp/a")[:], expected)
    diff = repo.diff(from_snapshot_id=ro.snapshot_id, to_snapshot_id=ro.snapshot_id)
    assert diff.is_empty()


def test_chunk_deletes_and_resize(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="r", shape=(10,), chunks=(2,), dtype="i4")
    arr[:] = np.arange(10)
    first = session.commit("ten")
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="r")
    arr.resize((4,))
    session.commit("shrink")
    ro = zarr.open_array(repo.readonly_session("main").store, path="r")
    assert ro.shape == (4,)
    np.testing.assert_array_equal(ro[:], [0, 1, 2, 3])
    diff = repo.diff(from_snapshot_id=first, to_branch="main")
    assert diff.updated_arrays == {"/r"}
    assert diff.updated_chunks == {"/r": [[2], [3], [4]]}
    old = zarr.open_array(repo.readonly_session(snapshot_id=first).store, path="r")
    np.testing.assert_array_equal(old[:], np.arange(10))


async def test_concurrent_tasks_into_one_session(repo: ic.Repository) -> None:
    import asyncio

    session = await repo.writable_session_async("main")
    store = session.store
    proto = default_buffer_prototype()
    arr = await zarr.api.asynchronous.create_array(
        store, name="t", shape=(200,), chunks=(1,), dtype="u1", compressors=None
    )
    assert arr.shape == (200,)
    await asyncio.gather(
        *(store.set(f"t/c/{i}", proto.buffer.from_bytes(bytes([i % 256]))) for i in range(200))
    )
    await session.commit_async("many tasks")
    ro = await repo.readonly_session_async("main")
    got = await asyncio.gather(*(ro.store.get(f"t/c/{i}", proto) for i in range(200)))
    assert [b.to_bytes() for b in got if b is not None] == [bytes([i % 256]) for i in range(200)]


def test_split_pieces_never_overlap_after_partial_rewrites(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(
        inline_chunk_threshold_bytes=0, manifest=ic.ManifestConfig(max_refs_per_manifest=4)
    )
    repo = ic.Repository.create(storage, config=config)
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(40,), chunks=(1,), dtype="i8")
    expected = np.zeros(40, dtype="i8")
    for block in (slice(0, 4), slice(10, 14), slice(20, 24)):
        arr[block] = np.arange(block.start, block.stop) + 100
        expected[block] = np.arange(block.start, block.stop) + 100
    session.commit("three separate pieces")
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="a")
    for i in (4, 5, 24):
        arr[i] = i + 100
        expected[i] = i + 100
    session.commit("touch the first and last piece")
    ro = repo.readonly_session("main")
    np.testing.assert_array_equal(zarr.open_array(ro.store, path="a")[:], expected)
    node = ic._sync.run(workspace_of(ro).nodes())["/a"]
    ranges = sorted((m.first, m.last) for m in node.manifests)
    for (_, last), (first, _) in itertools.pairwise(ranges):
        assert last < first


@given(
    rounds=st.lists(
        st.lists(st.tuples(st.integers(0, 59), st.integers(-1, 50)), min_size=1, max_size=12),
        min_size=1,
        max_size=5,
    ),
    max_refs=st.integers(1, 5),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_split_manifests_match_a_model(rounds: list[list[tuple[int, int]]], max_refs: int) -> None:
    """Random writes and deletes (-1) over many commits on tiny manifest pieces."""
    config = ic.RepositoryConfig(
        inline_chunk_threshold_bytes=0, manifest=ic.ManifestConfig(max_refs_per_manifest=max_refs)
    )
    repo = ic.Repository.create(ic.in_memory_storage(), config=config)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(60,), chunks=(1,), dtype="i8", fill_value=-1)
    session.commit("empty")
    model = np.full(60, -1, dtype="i8")
    for writes in rounds:
        session = repo.writable_session("main")
        arr = zarr.open_array(session.store, path="a")
        for index, value in writes:
            arr[index] = value
            model[index] = value
        session.commit("round", allow_empty=True)
        ro = repo.readonly_session("main")
        np.testing.assert_array_equal(zarr.open_array(ro.store, path="a")[:], model)
        node = ic._sync.run(workspace_of(ro).nodes())["/a"]
        assert all(m.count <= max_refs for m in node.manifests)
        assert sum(m.count for m in node.manifests) == int((model != -1).sum())
