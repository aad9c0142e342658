"""A snapshot the caller names that does not exist is "not found"; one that a ref or a parent
link points at and that is missing means the repository is damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
import zarr.core.sync

import icechunk_lib as ic
from icechunk_lib.errors import MissingObjectError


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
    with pytest.raises(MissingObjectError, match=f"snapshots/{ids[-1]}"):
        list(repo.ancestry(branch="main"))
    with pytest.raises(MissingObjectError):
        repo.readonly_session("main").list_nodes("/")
    with pytest.raises(MissingObjectError):
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


@pytest.mark.parametrize("how", ["branch", "tag", "writable"])
def test_a_session_at_a_ref_whose_snapshot_is_missing_fails_at_once(
    local: tuple[ic.Repository, Path, list[str]], how: str
) -> None:
    """zarr reads a FileNotFoundError as "no such node": the damage must surface first."""
    repo, path, ids = local
    repo.create_tag("t", ids[-1])
    (path / "snapshots" / ids[-1]).unlink()
    fresh = ic.Repository.open(ic.local_filesystem_storage(path))
    with pytest.raises(MissingObjectError, match=f"snapshots/{ids[-1]}") as err:
        if how == "branch":
            fresh.readonly_session("main")
        elif how == "tag":
            fresh.readonly_session(tag="t")
        else:
            fresh.writable_session("main")
    assert not isinstance(err.value, FileNotFoundError | KeyError)


@pytest.mark.parametrize("kind", ["manifests", "chunks"])
def test_a_missing_manifest_or_chunk_is_never_read_as_absent(tmp_path: Path, kind: str) -> None:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "r"))
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(64,), chunks=(64,), dtype="f8")
    arr[:] = np.random.default_rng(0).random(64)  # 512 bytes of noise: a chunk file
    session.commit("a")
    for f in (tmp_path / "r" / kind).iterdir():
        f.unlink()
    fresh = ic.Repository.open(ic.local_filesystem_storage(tmp_path / "r"))
    store = fresh.readonly_session("main").store
    with pytest.raises(MissingObjectError, match=kind):
        zarr.open_array(store, path="a", mode="r")[:]
    if kind == "manifests":  # a chunk's existence is the manifest's word, not a file check
        with pytest.raises(MissingObjectError):
            zarr.core.sync.sync(store.exists("a/c/0"))
