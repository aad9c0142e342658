"""``Session.merge``: only forks of the same repository, branch and snapshot fold in, so a
commit never refers to chunks another repository holds or lands on a branch it was not for."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic


def _repo(path: Path) -> ic.Repository:
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    session = repo.writable_session("main")
    arr = zarr.group(session.store).create_array("a", shape=(1000,), chunks=(500,), dtype="i8")
    arr[:] = np.arange(1000)
    session.commit("base")
    return repo


def test_a_fork_of_a_copied_repository_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "orig")
    shutil.copytree(tmp_path / "orig", tmp_path / "copy")
    copy = ic.Repository.open(ic.local_filesystem_storage(tmp_path / "copy"))
    fork = pickle.loads(pickle.dumps(copy.writable_session("main").fork()))
    # Big chunks: written to the copy's chunks/, which the original does not have.
    zarr.open_array(fork.store, path="a")[:] = -1
    session = repo.writable_session("main")
    assert fork.snapshot_id == session.snapshot_id  # same base: only the location differs
    with pytest.raises(ic.SessionError, match="another repository"):
        session.merge(fork)
    assert not session.has_uncommitted_changes
    zarr.open_array(session.store, path="a")[0] = 7
    sid = session.commit("own change")
    read = zarr.open_array(repo.readonly_session(snapshot_id=sid).store, path="a", mode="r")
    assert read[:3].tolist() == [7, 1, 2]


def test_a_fork_of_another_branch_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    repo.create_branch("dev", repo.lookup_branch("main"))
    fork = pickle.loads(pickle.dumps(repo.writable_session("dev").fork()))
    zarr.open_array(fork.store, path="a")[0] = 99
    session = repo.writable_session("main")
    with pytest.raises(ic.SessionError, match="branch 'dev'"):
        session.merge(fork)
    assert not session.has_uncommitted_changes


def test_merging_something_that_is_not_a_session_is_a_clear_error(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    session = repo.writable_session("main")
    with pytest.raises(ic.SessionError, match="str"):
        session.merge("not a session")  # type: ignore[arg-type]


def test_pickled_forks_of_the_same_session_merge_and_commit(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    session = repo.writable_session("main")
    forks = [pickle.loads(pickle.dumps(session.fork())) for _ in range(2)]
    zarr.open_array(forks[0].store, path="a")[:500] = 1
    zarr.open_array(forks[1].store, path="a")[500:] = 2
    returned = [pickle.loads(pickle.dumps(f)) for f in forks]
    session.merge(*returned)
    session.merge(returned[0])  # merging the same fork again changes nothing
    sid = session.commit("merged")
    read = zarr.open_array(repo.readonly_session(snapshot_id=sid).store, path="a", mode="r")
    assert read[:].tolist() == [1] * 500 + [2] * 500
