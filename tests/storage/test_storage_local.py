"""LocalFileSystemStorage: the contract suite plus on-disk layout, internals and OS errors."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import xxhash

from icechunk_lib.errors import (
    InvalidKeyError,
    LocationNotFoundError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    ReadOnlyStorageError,
    StorageError,
)
from icechunk_lib.storage import LocalFileSystemStorage, Storage
from icechunk_lib.storage import local as local_module
from icechunk_lib.testing.storage import StorageTests, collect


class TestLocalFileSystemStorage(StorageTests):
    @pytest.fixture
    def storage(self, local_storage: LocalFileSystemStorage) -> Storage:
        return local_storage


def files_under(root: Path) -> set[str]:
    """Every file below ``root`` as a relative "/" path, internal files included."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def test_create_root_makes_the_root_and_writes_make_only_subdirectories(
    tmp_path: Path,
) -> None:
    root = tmp_path / "deep" / "repo"
    storage = LocalFileSystemStorage(root)
    assert not root.exists()
    await storage.create_root()
    await storage.create_root()  # idempotent
    await storage.put("a/b/c", b"abc")
    assert (root / "a" / "b" / "c").read_bytes() == b"abc"


@pytest.mark.parametrize("write", ["put", "put_new", "put_if_absent", "put_if_match"])
async def test_writes_never_create_a_missing_root(tmp_path: Path, write: str) -> None:
    root = tmp_path / "repo"
    storage = LocalFileSystemStorage(root)
    token = ("token",) if write == "put_if_match" else ()
    args: tuple[object, ...] = ("snapshots/X", b"v", *token)
    with pytest.raises(LocationNotFoundError, match=str(root)):
        await getattr(storage, write)(*args)
    assert not root.exists()


async def test_missing_root_reads_as_empty_and_stays_missing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    storage = LocalFileSystemStorage(root)
    assert await storage.is_empty()
    assert await collect(storage) == {}
    assert await collect(storage, "refs/branch.") == {}
    assert not await storage.exists("k")
    with pytest.raises(ObjectNotFoundError):
        await storage.get("k")
    with pytest.raises(ObjectNotFoundError):
        await storage.size("k")
    await storage.delete("k")
    with pytest.raises(LocationNotFoundError):
        await storage.put_if_match("k", b"v", "token")
    assert not root.exists()


async def test_version_token_is_content_hash(local_storage: LocalFileSystemStorage) -> None:
    await local_storage.put("a", b"same")
    await local_storage.put("b", b"same")
    _, token_a = await local_storage.get_versioned("a")
    _, token_b = await local_storage.get_versioned("b")
    assert token_a == token_b == xxhash.xxh3_128_hexdigest(b"same")
    assert local_module.version_token(b"same") == token_a
    new_token = await local_storage.put_if_match("a", b"changed", token_a)
    assert new_token == xxhash.xxh3_128_hexdigest(b"changed")


@pytest.mark.parametrize("key", [".ick-locks/x", "a/.ick-tmp-123", ".ick-anything", "a/.ick-/b"])
async def test_reserved_segments_rejected(local_storage: LocalFileSystemStorage, key: str) -> None:
    with pytest.raises(InvalidKeyError, match="reserved"):
        await local_storage.put(key, b"x")
    with pytest.raises(InvalidKeyError):
        await local_storage.get(key)


async def test_reserved_prefix_lists_nothing(local_storage: LocalFileSystemStorage) -> None:
    await local_storage.put("k", b"1")
    _, token = await local_storage.get_versioned("k")
    await local_storage.put_if_match("k", b"2", token)
    assert (local_storage.root / ".ick-locks").is_dir()
    assert await collect(local_storage, ".ick-locks/") == {}
    assert await collect(local_storage, ".ick-") == {}


async def test_crash_leftovers_are_not_listed(local_storage: LocalFileSystemStorage) -> None:
    await local_storage.put("refs/main", b"1")
    (local_storage.root / "refs" / ".ick-tmp-deadbeef").write_bytes(b"half written")
    (local_storage.root / ".ick-tmp-cafe").write_bytes(b"half written")
    assert set(await collect(local_storage)) == {"refs/main"}
    await local_storage.delete("refs/main")
    assert await local_storage.is_empty()


async def test_writes_leave_no_temporary_files(local_storage: LocalFileSystemStorage) -> None:
    await local_storage.put("refs/main", b"1")
    _, token = await local_storage.get_versioned("refs/main")
    await local_storage.put_if_match("refs/main", b"2", token)
    with pytest.raises(PreconditionFailedError):
        await local_storage.put_if_match("refs/main", b"3", token)
    await local_storage.put_if_absent("refs/tag", b"t")
    with pytest.raises(ObjectExistsError):
        await local_storage.put_if_absent("refs/tag", b"t")
    names = files_under(local_storage.root)
    assert not [n for n in names if ".ick-tmp-" in n]
    locks = [n for n in names if n.startswith(".ick-locks/")]
    assert len(locks) == 1  # one lock file per compare-and-swapped key
    assert names - set(locks) == {"refs/main", "refs/tag"}


async def test_key_naming_a_directory_is_not_an_object(
    local_storage: LocalFileSystemStorage,
) -> None:
    await local_storage.put("a/b", b"1")
    assert not await local_storage.exists("a")
    with pytest.raises(ObjectNotFoundError):
        await local_storage.get("a")
    with pytest.raises(ObjectNotFoundError):
        await local_storage.size("a")
    with pytest.raises(PreconditionFailedError):
        await local_storage.put_if_match("a", b"x", "token")
    await local_storage.delete("a")
    assert await local_storage.get("a/b") == b"1"
    with pytest.raises(ObjectNotFoundError):
        await local_storage.get("a/b/c")  # a path through a file


async def test_files_get_umask_permissions(local_storage: LocalFileSystemStorage) -> None:
    umask = os.umask(0)
    os.umask(umask)
    await local_storage.put("k", b"1")
    await local_storage.put_if_absent("t", b"1")
    for key in ("k", "t"):
        assert (local_storage.root / key).stat().st_mode & 0o777 == 0o666 & ~umask


async def test_equality_and_pickle_by_resolved_root(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "repo", target_is_directory=True)
    storage = LocalFileSystemStorage(tmp_path / "repo")
    assert storage.url == str((tmp_path / "repo").resolve())
    assert Path(storage.url).is_absolute()
    for same in (
        LocalFileSystemStorage(str(tmp_path / "other" / ".." / "repo")),
        LocalFileSystemStorage(tmp_path / "link"),
        pickle.loads(pickle.dumps(storage)),
    ):
        assert same == storage
        assert hash(same) == hash(storage)
    assert storage != LocalFileSystemStorage(tmp_path / "other")
    assert repr(storage) == f"LocalFileSystemStorage({storage.url!r})"


async def test_relative_and_home_roots_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert LocalFileSystemStorage("rel").root == tmp_path.resolve() / "rel"
    assert LocalFileSystemStorage("~/x").root == (tmp_path / "home" / "x").resolve()


async def test_put_if_absent_without_hard_links(
    local_storage: LocalFileSystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    await local_storage.put_if_absent("refs/tag", b"first")
    with pytest.raises(ObjectExistsError):
        await local_storage.put_if_absent("refs/tag", b"second")
    assert await local_storage.get("refs/tag") == b"first"
    assert set(await collect(local_storage)) == {"refs/tag"}
    assert not [n for n in files_under(local_storage.root) if ".ick-tmp-" in n]


async def test_root_that_is_a_file_gives_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"not a directory")
    storage = LocalFileSystemStorage(tmp_path / "file")
    with pytest.raises(StorageError) as info:
        await storage.put("refs/main", b"1")
    assert "refs/main" in str(info.value)
    assert str(tmp_path / "file") in str(info.value)
    with pytest.raises(ObjectNotFoundError):
        await storage.get("refs/main")
    assert await storage.is_empty()


async def test_permission_denied_on_write_is_read_only_error(
    local_storage: LocalFileSystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Path, target: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "replace", denied)
    with pytest.raises(ReadOnlyStorageError) as info:
        await local_storage.put("chunks/c1", b"1")
    assert isinstance(info.value, PermissionError)
    assert "chunks/c1" in str(info.value)
    assert local_storage.url in str(info.value)
    monkeypatch.undo()
    assert not [n for n in files_under(local_storage.root) if ".ick-tmp-" in n]


async def test_permission_denied_on_read_is_storage_error(
    local_storage: LocalFileSystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await local_storage.put("config", b"cfg")
    real_open = os.open

    def denied(path: str, *args: Any, **kwargs: Any) -> int:
        # Tests may run as root, which file modes do not stop: refuse the open itself.
        if str(path).endswith("config"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(StorageError, match=r"'config'.*permission denied"):
        await local_storage.get("config")


async def test_other_os_errors_are_wrapped(
    local_storage: LocalFileSystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    durable = LocalFileSystemStorage(local_storage.root, fsync=True)
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError, match=r"'k'.*No space left") as info:
        await durable.put("k", b"1")
    assert type(info.value) is StorageError
    monkeypatch.undo()
    assert files_under(local_storage.root) == set()


async def test_fsync_only_when_asked(
    local_storage: LocalFileSystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    await local_storage.put("plain", b"1")
    assert calls == []
    durable = LocalFileSystemStorage(local_storage.root, fsync=True)
    await durable.put("durable", b"1")
    await durable.put_if_absent("created", b"1")
    assert len(calls) == 4  # each file's bytes, then the directory naming it
    assert pickle.loads(pickle.dumps(durable))._fsync


async def test_list_walks_only_matching_subtrees(
    local_storage: LocalFileSystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("refs/branch.main/1", "refs/branch.dev/1", "refs/tag.v1/1", "chunks/a/b"):
        await local_storage.put(key, b"v")
    scanned: list[str] = []
    real_scandir = os.scandir

    def spy(path: Path) -> object:
        scanned.append(Path(path).relative_to(local_storage.root).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    assert set(await collect(local_storage, "refs/branch.")) == {
        "refs/branch.main/1",
        "refs/branch.dev/1",
    }
    assert sorted(scanned) == ["refs", "refs/branch.dev", "refs/branch.main"]


async def test_list_streams_in_batches(
    local_storage: LocalFileSystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "_LIST_BATCH", 2)
    keys = {f"chunks/c{i}" for i in range(7)}
    for key in keys:
        await local_storage.put(key, b"v")
    assert set(await collect(local_storage)) == keys
    async for _ in local_storage.list("chunks/"):
        break  # stopping between batches closes the walker cleanly


async def test_range_reads_seek(local_storage: LocalFileSystemStorage) -> None:
    payload = os.urandom(4 << 20)
    await local_storage.put("big", payload)
    assert await local_storage.get("big", (3 << 20, (3 << 20) + 16)) == payload[3 << 20 :][:16]
    assert await local_storage.get("big", ((4 << 20) - 3, None)) == payload[-3:]
