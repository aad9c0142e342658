"""Keys every backend can hold: segments of at most 255 bytes, valid Unicode, same on all.

A key the local file system cannot name (a segment over ``NAME_MAX``) used to be a raw
"File name too long" there while memory accepted it; a lone surrogate was written to disk as
a stray byte. Both are now an ``InvalidKeyError`` on every backend, and a file whose name is
not valid Unicode (put there by something else) is not listed as a key.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import icechunk_lib as ic
from icechunk_lib.errors import InvalidKeyError
from icechunk_lib.storage import LocalFileSystemStorage, Storage, check_key
from icechunk_lib.storage._base import check_prefix
from icechunk_lib.testing.storage import collect


@pytest.mark.parametrize(
    "key",
    [
        "a/" + "x" * 256,
        "é" * 128,  # 128 characters, 256 bytes
        "chunks/" + "\U0001f600" * 64,  # 256 bytes of 4-byte characters
        "/".join(["y" * 200] * 6),  # every segment fits, the key is over 1024 bytes
    ],
    ids=["ascii-segment", "two-byte-segment", "four-byte-segment", "long-key"],
)
async def test_too_long_keys_are_invalid_everywhere(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKeyError, match="bytes"):
        check_key(key)
    with pytest.raises(InvalidKeyError):
        await storage.put(key, b"x")
    with pytest.raises(InvalidKeyError):
        await storage.put_new(key, b"x")
    with pytest.raises(InvalidKeyError):
        await storage.get(key)
    assert await collect(storage) == {}


@pytest.mark.parametrize(
    "key",
    ["a/" + "x" * 255, "é" * 127 + "x", "/".join(["y" * 200] * 5)],
    ids=["ascii-segment", "two-byte-segment", "long-key"],
)
async def test_longest_keys_work_everywhere(storage: Storage, key: str) -> None:
    assert check_key(key) == key
    await storage.put(key, b"x")
    assert await storage.get(key) == b"x"
    assert set(await collect(storage)) == {key}


@pytest.mark.parametrize("key", ["a\udcff", "refs/branch/\ud800/ref", "\udfff"])
async def test_lone_surrogates_are_invalid_everywhere(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKeyError, match="Unicode"):
        check_key(key)
    with pytest.raises(InvalidKeyError):
        check_prefix(key)
    with pytest.raises(InvalidKeyError):
        await storage.put(key, b"x")
    with pytest.raises(InvalidKeyError):
        await storage.exists(key)
    assert await collect(storage) == {}


async def test_files_named_with_invalid_unicode_are_not_listed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "refs").mkdir(parents=True)
    undecodable = root / "refs" / os.fsdecode(b"\xff")  # the OS decodes it as "\udcff"
    undecodable.mkdir()
    (undecodable / "ref").write_bytes(b"foreign")
    storage = LocalFileSystemStorage(root)
    await storage.put("refs/fine", b"ok")
    assert set(await collect(storage)) == {"refs/fine"}
    assert set(await collect(storage, "refs/")) == {"refs/fine"}


def test_a_foreign_undecodable_branch_directory_breaks_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    first = repo.lookup_branch("main")
    foreign = root / "refs" / "branch" / os.fsdecode(b"\xff")
    foreign.mkdir()
    shutil.copy(root / "refs" / "branch" / "main" / "ref", foreign / "ref")
    reopened = ic.Repository.open(ic.local_filesystem_storage(root))
    assert reopened.list_branches() == {"main"}
    assert [s.id for s in reopened.ancestry(branch="main")] == [first]


@pytest.mark.parametrize("kind", ["branch", "tag"])
@pytest.mark.parametrize("name", [".hidden", " padded", "tab\tname", "x" * 2 + "\x85"])
def test_a_directory_no_ref_could_be_named_is_not_listed(
    tmp_path: Path, kind: str, name: str
) -> None:
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    first = repo.lookup_branch("main")
    repo.create_tag("v1", first)
    source = root / "refs" / kind / ("main" if kind == "branch" else "v1") / "ref"
    (root / "refs" / kind / name).mkdir()
    shutil.copy(source, root / "refs" / kind / name / "ref")
    reopened = ic.Repository.open(ic.local_filesystem_storage(root))
    assert reopened.list_branches() == {"main"}
    assert reopened.list_tags() == {"v1"}
    assert [s.id for s in reopened.ancestry(branch="main")] == [first]
