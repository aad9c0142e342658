"""``Session.merge``: only forks of the same repository, branch and snapshot fold in, so a
commit never refers to chunks another repository holds or lands on a branch it was not for."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
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


def test_a_fork_whose_chunks_this_storage_lacks_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r")
    session = repo.writable_session("main")
    before = {p.name for p in (tmp_path / "r" / "chunks").iterdir()}
    fork = pickle.loads(pickle.dumps(session.fork()))
    zarr.open_array(fork.store, path="a")[:] = np.random.default_rng(0).integers(0, 2**40, 1000)
    # As if the worker wrote to a disk this process does not see: its chunk files are absent.
    for path in (tmp_path / "r" / "chunks").iterdir():
        if path.name not in before:
            path.unlink()
    with pytest.raises(ic.SessionError, match="not in"):
        session.merge(pickle.loads(pickle.dumps(fork)))
    assert not session.has_uncommitted_changes
    assert repo.lookup_branch("main") == session.snapshot_id


def _write_in_worker(pickled_fork: bytes) -> bytes:
    fork = pickle.loads(pickled_fork)
    zarr.open_array(fork.store, path="a")[:] = np.random.default_rng(1).integers(0, 2**40, 1000)
    return pickle.dumps(fork)


def test_a_fork_of_an_in_memory_repository_written_in_another_process_is_refused() -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.group(session.store).create_array("a", shape=(1000,), chunks=(500,), dtype="i8")
    session.commit("base")
    session = repo.writable_session("main")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        returned = pool.submit(_write_in_worker, pickle.dumps(session.fork())).result(120)
    # The worker wrote its chunks into its own copy of the in-memory storage.
    with pytest.raises(ic.SessionError, match="not in"):
        session.merge(pickle.loads(returned))
    assert not session.has_uncommitted_changes
