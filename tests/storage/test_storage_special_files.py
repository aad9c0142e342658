"""A directory, FIFO or device where the local backend keeps an object, or a file where it
keeps a directory.

Reads treat anything but a regular file as no object, and return at once (opening a FIFO
used to block until a writer came, hanging ``ick log`` on a FIFO ``config``). A create
that finds one says what is in the way, instead of "already exists" while reads say
"not found" (which made ``ick config set`` report a config that "kept changing").
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import ObjectNotFoundError, StorageError
from icechunk_lib.storage import LocalFileSystemStorage

NOT_A_FILE = "not a regular file"


async def test_a_fifo_is_no_object_and_never_blocks(
    local_storage: LocalFileSystemStorage,
) -> None:
    fifo = local_storage.root / "config"
    os.mkfifo(fifo)
    # Were a read to block in open(), this writer would release it after 3 s.
    release = threading.Timer(3, lambda: os.close(os.open(fifo, os.O_WRONLY)))
    release.start()
    try:
        started = time.monotonic()
        for call in (
            local_storage.get("config"),
            local_storage.get("config", (0, 4)),
            local_storage.get_versioned("config"),
            local_storage.size("config"),
        ):
            with pytest.raises(ObjectNotFoundError):
                await call
        assert not await local_storage.exists("config")
        assert time.monotonic() - started < 2, "a read waited on the FIFO"
    finally:
        release.cancel()


@pytest.mark.parametrize("kind", ["directory", "fifo"])
@pytest.mark.parametrize("write", ["put_if_absent", "put_new"])
async def test_a_create_blocked_by_a_non_file_names_it(
    local_storage: LocalFileSystemStorage, kind: str, write: str
) -> None:
    path = local_storage.root / "snapshots" / "ABC"
    path.parent.mkdir()
    path.mkdir() if kind == "directory" else os.mkfifo(path)
    with pytest.raises(StorageError, match=f"'snapshots/ABC' in {local_storage.root} is "):
        await getattr(local_storage, write)("snapshots/ABC", b"x")
    with pytest.raises(StorageError, match=NOT_A_FILE):
        await getattr(local_storage, write)("snapshots/ABC", b"x")


def test_config_that_is_a_directory_is_reported_as_such(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    ic.Repository.create(ic.local_filesystem_storage(root))
    (root / "config").unlink()
    (root / "config").mkdir()
    repo = ic.Repository.open(ic.local_filesystem_storage(root))
    with pytest.raises(StorageError, match=f"'config' in {root} is .*{NOT_A_FILE}"):
        repo.set_config_value("compression.level", "5")
    repo.config.compression.level = 4
    with pytest.raises(StorageError, match=NOT_A_FILE):
        repo.save_config()


async def test_a_file_where_the_lock_directory_belongs_is_named(
    local_storage: LocalFileSystemStorage,
) -> None:
    await local_storage.put("config", b"v1")
    _, token = await local_storage.get_versioned("config")
    (local_storage.root / ".ick-locks").write_bytes(b"in the way")
    with pytest.raises(StorageError, match=f"'.ick-locks' in {local_storage.root} is "):
        await local_storage.put_if_match("config", b"v2", token)
    assert await local_storage.get("config") == b"v1"


@pytest.mark.parametrize("write", ["put", "put_new", "put_if_absent"])
async def test_a_file_where_a_key_directory_belongs_is_named(
    local_storage: LocalFileSystemStorage, write: str
) -> None:
    (local_storage.root / "refs").mkdir()
    (local_storage.root / "refs" / "branch").write_bytes(b"in the way")
    with pytest.raises(StorageError, match=f"'refs/branch' in {local_storage.root} is a file"):
        await getattr(local_storage, write)("refs/branch/dev/ref", b"x")
    assert (local_storage.root / "refs" / "branch").read_bytes() == b"in the way"


def test_a_commit_into_a_file_named_like_a_directory_names_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="x", shape=(2,), chunks=(1,), dtype="i1")
    (root / "transactions").write_bytes(b"in the way")
    with pytest.raises(StorageError, match=f"'transactions' in {root} is a file"):
        session.commit("blocked")
