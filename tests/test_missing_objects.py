"""A snapshot the caller names that does not exist is "not found"; one that a ref or a parent
link points at and that is missing means the repository is damaged."""

from __future__ import annotations

from pathlib import Path

import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import ObjectNotFoundError


@pytest.fixture
def local(tmp_path: Path) -> tuple[ic.Repository, Path, list[str]]:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "r"))
    ids = [repo.lookup_branch("main")]
    for i in range(2):
        session = repo.writable_session("main")
        zarr.open_group(session.store, mode="a").attrs["i"] = i
        ids.append(session.commit(f"commit {i}"))
    return repo, tmp_path / "r", ids


def test_a_branch_tip_whose_snapshot_is_missing_is_damage(
    local: tuple[ic.Repository, Path, list[str]],
) -> None:
    _, path, ids = local
    (path / "snapshots" / ids[-1]).unlink()
    repo = ic.Repository.open(ic.local_filesystem_storage(path))  # nothing cached
    with pytest.raises(ObjectNotFoundError, match=f"snapshots/{ids[-1]}"):
        list(repo.ancestry(branch="main"))
    with pytest.raises(ObjectNotFoundError):
        repo.readonly_session("main").list_nodes("/")
    with pytest.raises(ObjectNotFoundError):
        repo.resolve("main~1")


def test_a_snapshot_the_caller_names_that_does_not_exist_is_not_found(
    local: tuple[ic.Repository, Path, list[str]],
) -> None:
    repo, _, ids = local
    absent = "0" * len(ids[0])
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.lookup_snapshot(absent)
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.readonly_session(snapshot_id=absent)
    with pytest.raises(ic.SnapshotNotFoundError):
        list(repo.ancestry(snapshot_id=absent))
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.create_branch("b", absent)
