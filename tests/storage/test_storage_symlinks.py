"""Symbolic links inside a local repository are never followed: no key leaves the root.

A repository copied from elsewhere (or a user's mistake) can hold a link such as
``chunks -> /home/me/.ssh``; following it would read, write and delete files outside the
repository. Every operation through a link fails with an error naming it, and the files the
link points at stay untouched. The root itself may be a link: it is resolved once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from icechunk_lib.errors import StorageError
from icechunk_lib.storage import LocalFileSystemStorage
from icechunk_lib.testing.storage import collect

LINKED = "is a symbolic link"


def snapshot_of(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its bytes, to prove nothing outside changed."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the repository holding a file a link could expose."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret").write_bytes(b"SECRET")
    (target / "ref").write_bytes(b"not a ref")
    return target


async def test_linked_directory_is_never_traversed(
    local_storage: LocalFileSystemStorage, outside: Path
) -> None:
    (local_storage.root / "chunks").symlink_to(outside)
    before = snapshot_of(outside)
    calls = {
        "get": local_storage.get("chunks/secret"),
        "exists": local_storage.exists("chunks/secret"),
        "size": local_storage.size("chunks/secret"),
        "put": local_storage.put("chunks/NEW", b"x"),
        "put_new": local_storage.put_new("chunks/NEW", b"x"),
        "put_if_absent": local_storage.put_if_absent("chunks/NEW", b"x"),
        "put_if_match": local_storage.put_if_match("chunks/ref", b"x", "token"),
        "delete": local_storage.delete("chunks/secret"),
        "delete_many": local_storage.delete_many(["chunks/secret"]),
        "list": collect(local_storage, "chunks/"),
        "list all": collect(local_storage, ""),
    }
    for name, call in calls.items():
        with pytest.raises(StorageError, match=LINKED) as info:
            await call
        assert "'chunks'" in str(info.value), name
        assert str(local_storage.root) in str(info.value), name
    assert snapshot_of(outside) == before


async def test_linked_directory_deeper_down_is_refused(
    local_storage: LocalFileSystemStorage, outside: Path
) -> None:
    (local_storage.root / "refs" / "branch").mkdir(parents=True)
    (local_storage.root / "refs" / "branch" / "evil").symlink_to(outside)
    with pytest.raises(StorageError, match="'refs/branch/evil' .*" + LINKED):
        await local_storage.delete("refs/branch/evil/ref")
    with pytest.raises(StorageError, match=LINKED):
        await local_storage.put("refs/branch/evil/ref", b"overwritten")
    with pytest.raises(StorageError, match=LINKED):
        await collect(local_storage, "refs/")
    assert (outside / "ref").read_bytes() == b"not a ref"


async def test_linked_file_is_not_an_object(
    local_storage: LocalFileSystemStorage, outside: Path
) -> None:
    (local_storage.root / "config").symlink_to(outside / "secret")
    for call in (
        local_storage.get("config"),
        local_storage.get_versioned("config"),
        local_storage.get("config", (0, 3)),
        local_storage.exists("config"),
        local_storage.size("config"),
        local_storage.put_if_match("config", b"x", "token"),
        collect(local_storage, ""),
    ):
        with pytest.raises(StorageError, match="'config' .*" + LINKED):
            await call
    assert (outside / "secret").read_bytes() == b"SECRET"


async def test_writes_replace_a_linked_file_never_its_target(
    local_storage: LocalFileSystemStorage, outside: Path
) -> None:
    link = local_storage.root / "config"
    link.symlink_to(outside / "secret")
    await local_storage.put("config", b"mine")
    assert not link.is_symlink()
    assert await local_storage.get("config") == b"mine"
    (local_storage.root / "gone").symlink_to(outside / "ref")
    await local_storage.delete("gone")
    assert not os.path.lexists(local_storage.root / "gone")
    assert snapshot_of(outside) == {"ref": b"not a ref", "secret": b"SECRET"}


async def test_linked_lock_directory_creates_nothing_outside(
    local_storage: LocalFileSystemStorage, outside: Path
) -> None:
    await local_storage.put("config", b"v1")
    _, token = await local_storage.get_versioned("config")
    (local_storage.root / ".ick-locks").symlink_to(outside)
    with pytest.raises(StorageError, match="'.ick-locks' .*" + LINKED):
        await local_storage.put_if_match("config", b"v2", token)
    assert await local_storage.get("config") == b"v1"
    assert sorted(p.name for p in outside.iterdir()) == ["ref", "secret"]


async def test_a_linked_root_is_resolved_and_works(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    storage = LocalFileSystemStorage(tmp_path / "alias")
    assert storage.root == real
    await storage.put("chunks/A", b"a")
    assert set(await collect(storage, "")) == {"chunks/A"}
