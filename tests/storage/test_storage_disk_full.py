"""A repository on a full disk: every write fails naming the cause, and nothing half-made stays.

The repository sits on a 4 MiB tmpfs; a filler file takes the rest of the space, so each
commit, ref and config write runs out of room at whatever step it reaches first.
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import StorageError


def _fill(directory: Path) -> None:
    """Take every free byte of the file system holding ``directory``."""
    with (directory / "filler").open("wb", buffering=0) as file:
        block = b"\0" * 4096
        try:
            while True:
                file.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        while True:  # the last partial block
            try:
                file.write(b"\0")
            except OSError:
                break


def _visible(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".ick-locks" not in p.parts
    }


def test_a_full_disk_fails_every_write_cleanly(mount_point: Path) -> None:
    root = mount_point / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="x", shape=(4,), chunks=(2,), dtype="f8")[:] = 1.0
    first = session.commit("first")
    repo.create_tag("v1", first)
    session = repo.writable_session("main")
    array = zarr.open_array(session.store, path="x")
    array[:] = np.arange(4.0)  # small chunks are inlined: the commit writes every byte
    before = _visible(root)
    _fill(mount_point)
    attempts = {
        "commit": lambda: session.commit("no room"),
        "create_branch": lambda: repo.create_branch("dev", first),
        "create_tag": lambda: repo.create_tag("v2", first),
        "delete_tag": lambda: repo.delete_tag("v1"),
        "set_config": lambda: repo.set_config_value("compression.level", "5"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(StorageError, match="No space left on device") as info:
            attempt()
        assert str(root) in str(info.value), name
    assert _visible(root) == before, "a failed write left a file behind"
    assert not list(root.rglob(".ick-tmp-*"))
    (mount_point / "filler").unlink()
    assert session.commit("room again") != first  # the same session commits once there is room
    reopened = ic.Repository.open(ic.local_filesystem_storage(root))
    assert reopened.lookup_tag("v1") == first
    assert zarr.open_array(reopened.readonly_session("main").store, path="x")[2] == 2.0
