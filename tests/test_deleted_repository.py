"""A repository deleted under a live ``Repository``: writes fail and nothing comes back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import LocationNotFoundError


def _repo_with_session(root: Path) -> tuple[ic.Repository, ic.Session, str]:
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="x", shape=(4,), chunks=(2,), dtype="f8")
    arr[:] = np.arange(4.0)
    first = session.commit("first")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="x")[:2] = 7.0
    return repo, session, first


ACTIONS: dict[str, Callable[[ic.Repository, ic.Session, str], object]] = {
    "commit": lambda repo, session, sid: session.commit("after deletion"),
    "create_branch": lambda repo, session, sid: repo.create_branch("dev", sid),
    "create_tag": lambda repo, session, sid: repo.create_tag("v1", sid),
    "reset_branch": lambda repo, session, sid: repo.reset_branch("main", sid),
    "save_config": lambda repo, session, sid: repo.save_config(),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_writes_to_a_deleted_repository_fail_and_recreate_nothing(
    tmp_path: Path, action: str
) -> None:
    root = tmp_path / "repo"
    repo, session, first = _repo_with_session(root)
    # Warm every cache a write could lean on: the branch record and the snapshot header.
    assert repo.lookup_branch("main") == first
    repo.lookup_snapshot(first)
    shutil.rmtree(root)
    with pytest.raises(LocationNotFoundError, match=str(root)) as info:
        ACTIONS[action](repo, session, first)
    assert isinstance(info.value, FileNotFoundError)
    assert not root.exists()


def test_cli_after_deletion_reports_the_location_and_init_works(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _, session, _ = _repo_with_session(root)
    shutil.rmtree(root)
    with pytest.raises(LocationNotFoundError):
        session.commit("lost")
    # Nothing half-made is left, so the location is free for a new repository.
    ick = Path(sys.executable).with_name("ick")
    done = subprocess.run([ick, "init", str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ic.Repository.open(ic.local_filesystem_storage(root)).list_branches() == {"main"}
