"""Repository behaviour on every backend: lifecycle, refs, history, diff, config."""

from __future__ import annotations

import datetime as dt
import itertools
import pickle
import time

import numpy as np
import pytest
import zarr

import icechunk_lib as ic


def _write(repo: ic.Repository, branch: str, value: float, message: str) -> str:
    session = repo.writable_session(branch)
    root = zarr.open_group(session.store, mode="a")
    if "x" in root:
        arr = root["x"]
    else:
        arr = root.create_array("x", shape=(10,), chunks=(5,), dtype="f8")
    arr[:] = value
    return session.commit(message)


def _read(session: ic.Session) -> np.ndarray:
    return zarr.open_array(session.store, path="x")[:]


def test_create_open_exists(storage: ic.Storage) -> None:
    assert not ic.Repository.exists(storage)
    repo = ic.Repository.create(storage)
    assert ic.Repository.exists(storage)
    again = ic.Repository.open(storage)
    assert again.list_branches() == {"main"}
    history = list(again.ancestry(branch="main"))
    assert [h.message for h in history] == ["Repository initialized"]
    assert history[0].parent_id is None
    assert len(history[0].id) == 20
    assert ic.Repository.open_or_create(storage).lookup_branch("main") == repo.lookup_branch("main")


def test_open_or_create_creates(storage: ic.Storage) -> None:
    repo = ic.Repository.open_or_create(storage)
    assert repo.list_branches() == {"main"}


def test_config_is_persisted(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig.default()
    config.inline_chunk_threshold_bytes = 100
    config.compression.level = 5
    ic.Repository.create(storage, config=config)
    saved = ic.Repository.fetch_config(storage)
    assert saved is not None
    assert saved.inline_chunk_threshold_bytes == 100
    assert saved.compression.level == 5
    repo = ic.Repository.open(storage)
    assert repo.config.inline_chunk_threshold_bytes == 100
    repo.config.inline_chunk_threshold_bytes = 7
    repo.save_config()
    assert ic.Repository.open(storage).config.inline_chunk_threshold_bytes == 7


def test_invalid_config_rejected(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=-1)
    with pytest.raises(ic.ConfigError, match="inline_chunk_threshold_bytes"):
        ic.Repository.create(storage, config=config)
    assert not ic.Repository.exists(storage)


def test_one_default_branch(repo: ic.Repository) -> None:
    # The branch a repository starts with, that a session opens by default and that stays.
    assert ic.DEFAULT_BRANCH == "main"
    assert repo.list_branches() == {ic.DEFAULT_BRANCH}
    tip = repo.lookup_branch(ic.DEFAULT_BRANCH)
    assert repo.readonly_session().snapshot_id == tip
    with pytest.raises(ic.ProtectedBranchError):
        repo.delete_branch(ic.DEFAULT_BRANCH)


def test_branches(repo: ic.Repository) -> None:
    first = _write(repo, "main", 1.0, "one")
    repo.create_branch("dev", first)
    assert repo.list_branches() == {"main", "dev"}
    assert repo.lookup_branch("dev") == first
    second = _write(repo, "dev", 2.0, "two on dev")
    assert repo.lookup_branch("main") == first
    assert _read(repo.readonly_session("dev"))[0] == 2.0
    assert _read(repo.readonly_session("main"))[0] == 1.0
    repo.reset_branch("main", second)
    assert repo.lookup_branch("main") == second
    repo.reset_branch("main", first, from_snapshot_id=second)
    assert repo.lookup_branch("main") == first
    with pytest.raises(ic.ConflictError) as info:
        repo.reset_branch("main", second, from_snapshot_id=second)
    assert info.value.actual_parent == first
    repo.delete_branch("dev")
    assert repo.list_branches() == {"main"}
    with pytest.raises(ic.BranchNotFoundError):
        repo.lookup_branch("dev")


def test_tags(repo: ic.Repository) -> None:
    first = _write(repo, "main", 1.0, "one")
    _write(repo, "main", 2.0, "two")
    repo.create_tag("v1", first)
    assert repo.list_tags() == {"v1"}
    assert repo.lookup_tag("v1") == first
    assert _read(repo.readonly_session(tag="v1"))[0] == 1.0
    with pytest.raises(ic.TagAlreadyExistsError):
        repo.create_tag("v1", first)
    repo.delete_tag("v1")
    assert repo.list_tags() == set()
    with pytest.raises(ic.TagNotFoundError):
        repo.lookup_tag("v1")
    with pytest.raises(ic.TagAlreadyExistsError, match="deleted"):
        repo.create_tag("v1", first)


def test_ancestry_and_lookup(repo: ic.Repository) -> None:
    ids = [_write(repo, "main", float(i), f"commit {i}") for i in range(5)]
    history = list(repo.ancestry(branch="main"))
    assert [h.id for h in history[:5]] == ids[::-1]
    assert [h.message for h in history[:5]] == [f"commit {i}" for i in range(4, -1, -1)]
    for child, parent in itertools.pairwise(history):
        assert child.parent_id == parent.id
        assert child.written_at > parent.written_at
    info = repo.lookup_snapshot(ids[2])
    assert info.message == "commit 2"
    assert info.written_at.tzinfo is not None
    assert [h.id for h in repo.ancestry(snapshot_id=ids[1])][:2] == [ids[1], ids[0]]


def test_long_history_reads_few_snapshots(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="w")
    session.commit("root")
    for i in range(250):
        s = repo.writable_session("main")
        zarr.open_group(s.store, mode="a").attrs["i"] = i
        s.commit(f"c{i}")
    fresh = ic.Repository.open(storage)
    reads = 0
    original = fresh._objects.snapshot_header

    async def counting(snapshot_id: str) -> object:
        nonlocal reads
        reads += 1
        return await original(snapshot_id)

    fresh._objects.snapshot_header = counting  # type: ignore[method-assign]
    messages = [h.message for h in fresh.ancestry(branch="main")]
    assert messages[0] == "c249" and messages[-1] == "Repository initialized"
    assert len(messages) == 252
    assert reads <= 3


def test_as_of(repo: ic.Repository) -> None:
    first = _write(repo, "main", 1.0, "one")
    time.sleep(0.01)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    _write(repo, "main", 2.0, "two")
    session = repo.readonly_session("main", as_of=between)
    assert session.snapshot_id == first
    assert _read(session)[0] == 1.0
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.readonly_session("main", as_of=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


def test_diff_between_snapshots(repo: ic.Repository) -> None:
    s = repo.writable_session("main")
    root = zarr.open_group(s.store, mode="w")
    a = root.create_array("a", shape=(4, 4), chunks=(2, 2), dtype="i4")
    a[:] = 1
    root.create_group("g")
    first = s.commit("first")
    s = repo.writable_session("main")
    root = zarr.open_group(s.store, mode="a")
    root["a"][0, 0] = 5
    root["a"].attrs["units"] = "m"
    del root["g"]
    root.create_array("b", shape=(3,), chunks=(3,), dtype="f4")
    second = s.commit("second")
    diff = repo.diff(from_snapshot_id=first, to_snapshot_id=second)
    assert diff.new_arrays == {"/b"}
    assert diff.deleted_groups == {"/g"}
    assert diff.updated_arrays == {"/a"}
    assert diff.updated_chunks == {"/a": [[0, 0]]}
    reverse = repo.diff(from_snapshot_id=second, to_snapshot_id=first)
    assert reverse.deleted_arrays == {"/b"} and reverse.new_groups == {"/g"}
    assert repo.diff(from_branch="main", to_snapshot_id=second).is_empty()
    assert "Arrays created" in repr(diff)


def test_transaction_context_manager(repo: ic.Repository) -> None:
    with repo.transaction("main", message="in a transaction") as store:
        zarr.create_array(store, name="t", shape=(2,), dtype="i1")[:] = 3
    assert next(iter(repo.ancestry(branch="main"))).message == "in a transaction"
    with pytest.raises(RuntimeError), repo.transaction("main", message="fails") as store:
        zarr.create_array(store, name="u", shape=(2,), dtype="i1")
        raise RuntimeError("boom")
    assert next(iter(repo.ancestry(branch="main"))).message == "in a transaction"


def test_repository_pickles(repo: ic.Repository) -> None:
    _write(repo, "main", 4.0, "x")
    clone = pickle.loads(pickle.dumps(repo))
    assert _read(clone.readonly_session("main"))[0] == 4.0


async def test_async_twins(storage: ic.Storage) -> None:
    repo = await ic.Repository.create_async(storage)
    assert await ic.Repository.exists_async(storage)
    session = await repo.writable_session_async("main")
    group = await zarr.api.asynchronous.open_group(store=session.store, mode="w")
    await group.create_array("z", shape=(3,), dtype="i2")
    snap = await session.commit_async("async commit")
    await repo.create_branch_async("b", snap)
    await repo.create_tag_async("t", snap)
    assert await repo.list_branches_async() == {"main", "b"}
    assert await repo.lookup_tag_async("t") == snap
    entries = [i.message async for i in repo.async_ancestry(branch="b")]
    assert entries == ["async commit", "Repository initialized"]
    diff = await repo.diff_async(from_branch="main", to_tag="t")
    assert diff.is_empty()
    ro = await repo.readonly_session_async(tag="t")
    assert ro.snapshot_id == snap


def test_commit_over_a_stale_remembered_ref_is_still_a_conflict(storage: ic.Storage) -> None:
    # Each Repository remembers the last branch record it saw and tries its compare-and-swap
    # against it without reading the ref again; another writer moving the branch meanwhile
    # must still make that commit a conflict naming both snapshots, never a lost update.
    mine = ic.Repository.create(storage)
    zarr.open_group(mine.writable_session("main").store, mode="w")
    first = mine.writable_session("main")
    zarr.open_group(first.store, mode="w").attrs["who"] = "mine"
    base = first.commit("mine 1")  # `mine` now remembers main at `base`

    stale = mine.writable_session("main")
    zarr.open_group(stale.store).attrs["who"] = "mine again"

    theirs = ic.Repository.open(storage)
    other = theirs.writable_session("main")
    zarr.open_group(other.store).attrs["who"] = "theirs"
    tip = other.commit("theirs")

    with pytest.raises(ic.ConflictError) as info:
        stale.commit("mine 2")
    assert (info.value.expected_parent, info.value.actual_parent) == (base, tip)
    assert [s.message for s in mine.ancestry(branch="main")][:2] == ["theirs", "mine 1"]

    # And a session started at the new tip commits, despite the remembered record.
    fresh = mine.writable_session("main")
    zarr.open_group(fresh.store).attrs["who"] = "mine 3"
    assert fresh.commit("mine 3") != tip
    assert next(iter(mine.ancestry(branch="main"))).message == "mine 3"
