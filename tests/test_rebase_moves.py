"""Rebasing across moves and deletes: no commit's rename is undone, no node is dropped by
two landing on one path, and no node is left inside a group that is gone."""

from __future__ import annotations

import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.conflicts import ConflictType


def _repo(storage: ic.Storage) -> ic.Repository:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_group("grp").create_array("inner", shape=(4,), chunks=(2,), dtype="i4")[:] = [
        1,
        2,
        3,
        4,
    ]
    root.create_array("a", shape=(4,), chunks=(2,), dtype="i4")[:] = [1, 2, 3, 4]
    session.commit("base")
    return repo


def _paths(repo: ic.Repository) -> list[str]:
    return sorted(n.path for n in repo.readonly_session("main").list_nodes(recursive=True))


def _two(repo: ic.Repository) -> tuple[ic.Session, ic.Session]:
    return repo.writable_session("main"), repo.writable_session("main")


def test_our_attribute_change_keeps_their_rename_of_the_array(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = _two(repo)
    theirs.move("/a", "/b")
    theirs.commit("rename a to b")
    zarr.open_array(ours.store, path="a").attrs["units"] = "m"
    ours.commit("attrs", rebase_with=ic.ConflictDetector())
    assert _paths(repo) == ["/b", "/grp", "/grp/inner"]
    arr = zarr.open_array(repo.readonly_session("main").store, path="b", mode="r")
    assert arr.attrs["units"] == "m"
    assert arr[:].tolist() == [1, 2, 3, 4]


def test_our_attribute_change_keeps_their_rename_of_the_group(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = _two(repo)
    theirs.move("/grp", "/g2")
    theirs.commit("rename grp")
    zarr.open_group(ours.store, path="grp").attrs["k"] = 1
    ours.commit("attrs", rebase_with=ic.ConflictDetector())
    assert _paths(repo) == ["/a", "/g2", "/g2/inner"]
    assert zarr.open_group(repo.readonly_session("main").store, path="g2", mode="r").attrs["k"] == 1


def test_our_new_node_where_they_moved_one_is_a_conflict(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = _two(repo)
    theirs.move("/a", "/b")
    tip = theirs.commit("rename a to b")
    zarr.create_array(ours.store, name="b", shape=(3,), dtype="i4", fill_value=7)
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.commit("new b", rebase_with=ic.BasicConflictSolver())
    assert [c.conflict_type for c in info.value.conflicts] == [
        ConflictType.NewNodeConflictsWithExistingNode
    ]
    assert info.value.conflicts[0].path == "/b"
    assert repo.lookup_branch("main") == tip
    # Their moved array is intact, and our session still holds its change.
    assert zarr.open_array(repo.readonly_session("main").store, path="b", mode="r")[:].tolist() == [
        1,
        2,
        3,
        4,
    ]
    assert ours.has_uncommitted_changes and not ours.read_only


def test_our_move_onto_their_new_node_is_a_conflict(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = _two(repo)
    zarr.create_array(theirs.store, name="c", shape=(3,), dtype="i4", fill_value=7)
    tip = theirs.commit("new c")
    ours.move("/a", "/c")
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.commit("move a to c", rebase_with=ic.BasicConflictSolver())
    assert [c.conflict_type for c in info.value.conflicts] == [
        ConflictType.MoveOperationCannotBeRebased
    ]
    assert repo.lookup_branch("main") == tip
    assert _paths(repo) == ["/a", "/c", "/grp", "/grp/inner"]


def test_our_new_node_in_a_group_they_deleted_is_a_conflict(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = _two(repo)
    del zarr.open_group(theirs.store)["grp"]
    tip = theirs.commit("delete grp")
    zarr.create_array(ours.store, name="grp/new", shape=(3,), dtype="i4")
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.commit("new grp/new", rebase_with=ic.BasicConflictSolver())
    assert [(c.conflict_type, c.path) for c in info.value.conflicts] == [
        (ConflictType.NewNodeInInvalidGroup, "/grp/new")
    ]
    assert repo.lookup_branch("main") == tip


def test_their_new_node_in_a_group_we_moved_is_a_conflict(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = _two(repo)
    zarr.create_array(theirs.store, name="grp/theirs", shape=(3,), dtype="i4")
    tip = theirs.commit("new grp/theirs")
    ours.move("/grp", "/moved")
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.commit("move grp", rebase_with=ic.BasicConflictSolver())
    assert [(c.conflict_type, c.path) for c in info.value.conflicts] == [
        (ConflictType.NewNodeInInvalidGroup, "/grp/theirs")
    ]
    assert repo.lookup_branch("main") == tip


def test_independent_moves_and_writes_still_rebase(storage: ic.Storage) -> None:
    repo = _repo(storage)
    ours, theirs = _two(repo)
    theirs.move("/grp", "/g2")
    theirs.commit("rename grp")
    zarr.open_array(ours.store, path="grp/inner")[0] = 100
    ours.move("/a", "/z")
    ours.commit("write and move", rebase_with=ic.ConflictDetector())
    assert _paths(repo) == ["/g2", "/g2/inner", "/z"]
    store = repo.readonly_session("main").store
    assert zarr.open_array(store, path="g2/inner", mode="r")[:].tolist() == [100, 2, 3, 4]
    assert zarr.open_array(store, path="z", mode="r")[:].tolist() == [1, 2, 3, 4]
