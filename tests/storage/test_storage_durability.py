"""With ``fsync=True`` a published name is on disk before the ref that names it moves.

Flushing a file's bytes is not enough: the directory entry that names it (and any directory
created for it) must be flushed too, or after a power loss the ref can point at a snapshot
whose name never reached the disk. The order of flushes is recorded on the real file system.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.storage import LocalFileSystemStorage

Flush = tuple[str, bool]
"""A flushed path relative to the repository root, and whether it is a directory."""


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[Flush]:
    """Every ``os.fsync`` made, in order, as (resolved path, is a directory)."""
    seen: list[Flush] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        path = str(Path(f"/proc/self/fd/{fd}").readlink())
        seen.append((path, stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the flushed descriptors")
    monkeypatch.setattr(os, "fsync", recording_fsync)
    return seen


def relative(flushes: list[Flush], root: Path) -> list[Flush]:
    prefix = str(root)
    return [(p[len(prefix) :].lstrip("/"), d) for p, d in flushes if p.startswith(prefix)]


@pytest.mark.parametrize("write", ["put", "put_new", "put_if_absent", "put_if_match"])
async def test_every_write_flushes_the_names_it_made(
    tmp_path: Path, flushes: list[Flush], write: str
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    storage = LocalFileSystemStorage(root, fsync=True)
    if write == "put_if_match":
        await storage.put("a/b/k", b"old")
        _, token = await storage.get_versioned("a/b/k")
        flushes.clear()
        await storage.put_if_match("a/b/k", b"new", token)
        made = [("a/b", True)]
    else:
        await getattr(storage, write)("a/b/k", b"data")
        made = [("", True), ("a", True), ("a/b", True)]  # a/ and a/b/ were created too
    seen = relative(flushes, root)
    assert len([entry for entry in seen if not entry[1]]) == 1  # the bytes, once
    assert sorted(entry for entry in seen if entry[1]) == sorted(made)
    assert seen[-1] == ("a/b", True), "the name is flushed after the bytes, before returning"


async def test_create_root_flushes_every_directory_it_made(
    tmp_path: Path, flushes: list[Flush]
) -> None:
    storage = LocalFileSystemStorage(tmp_path / "a" / "b" / "repo", fsync=True)
    await storage.create_root()
    assert relative(flushes, tmp_path) == [("", True), ("a", True), ("a/b", True)]
    flushes.clear()
    await storage.create_root()  # nothing new, nothing to flush
    assert flushes == []


async def test_delete_flushes_the_directory(tmp_path: Path, flushes: list[Flush]) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    storage = LocalFileSystemStorage(root, fsync=True)
    await storage.put("refs/x/ref", b"r")
    flushes.clear()
    await storage.delete("refs/x/ref")
    assert relative(flushes, root) == [("refs/x", True)]


def test_a_commit_flushes_its_objects_before_the_ref_moves(
    tmp_path: Path, flushes: list[Flush]
) -> None:
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root, fsync=True))
    flushes.clear()
    session = repo.writable_session("main")
    array = zarr.create_array(session.store, name="x", shape=(8192,), chunks=(4096,), dtype="f8")
    array[:] = np.random.default_rng(0).random(8192)  # big enough to be chunk files
    session.commit("durable")
    seen = relative(flushes, root)
    ref = seen.index(("refs/branch/main", True))
    assert ref == len(seen) - 1, "the ref's directory is flushed last"
    before = set(seen[:ref])
    for directory in ("chunks", "manifests", "snapshots", "transactions"):
        assert (directory, True) in before, directory
