"""A repository on a read-only file system: every write is a ReadOnlyStorageError, reads work.

Tests run as root, for whom ``chmod -w`` changes nothing, so the repository sits on a small
tmpfs remounted read-only (the tests skip where mounting is not allowed).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from _mounts import mount

import icechunk_lib as ic
from icechunk_lib.errors import ReadOnlyStorageError


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


WRITES: dict[str, Callable[[ic.Repository, ic.Session, str], object]] = {
    "commit": lambda repo, session, sid: session.commit("on a read-only disk"),
    "create_branch": lambda repo, session, sid: repo.create_branch("dev", sid),
    "delete_branch": lambda repo, session, sid: repo.delete_branch("old"),
    "reset_branch": lambda repo, session, sid: repo.reset_branch("old", sid),
    "create_tag": lambda repo, session, sid: repo.create_tag("v2", sid),
    "delete_tag": lambda repo, session, sid: repo.delete_tag("v1"),
    "save_config": lambda repo, session, sid: repo.save_config(),
}


@pytest.mark.parametrize("action", list(WRITES))
def test_writes_on_a_read_only_file_system_are_read_only_errors(
    mount_point: Path, action: str
) -> None:
    root = mount_point / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="x", shape=(4,), chunks=(2,), dtype="f8")[:] = 1.0
    first = session.commit("first")
    repo.create_branch("old", first)
    repo.create_tag("v1", first)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="x")[:] = np.arange(4.0)
    before = files_under(root)
    assert mount("-o", "remount,ro", str(mount_point))
    with pytest.raises(ReadOnlyStorageError, match=f"{root}.*read-only file system"):
        WRITES[action](repo, session, first)
    assert files_under(root) == before
    reopened = ic.Repository.open(ic.local_filesystem_storage(root))
    assert reopened.lookup_branch("main") == first
    assert reopened.list_tags() == {"v1"}


def test_cli_on_a_read_only_file_system_says_so_in_one_line(mount_point: Path) -> None:
    root = mount_point / "repo"
    ic.Repository.create(ic.local_filesystem_storage(root))
    assert mount("-o", "remount,ro", str(mount_point))
    ick = Path(sys.executable).with_name("ick")
    done = subprocess.run(
        [ick, "-R", str(root), "branch", "create", "dev"], capture_output=True, text=True
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "read-only file system" in lines[0].lower(), done.stderr
    assert "Traceback" not in done.stderr
    listed = subprocess.run([ick, "-R", str(root), "branch", "list"], capture_output=True)
    assert listed.returncode == 0
