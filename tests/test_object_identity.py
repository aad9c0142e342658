"""A valid object stored under another object's key is refused, never served as that object.

Each test copies or swaps intact files of one kind the way a mis-restore from a backup would,
on a real local repository and in memory, then reads through the public API: the read must
fail with an ``ObjectIdMismatchError`` naming the key and the id found, and no value of the
other object may come back.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xxhash
import zarr
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.errors import CorruptObjectError, ObjectIdMismatchError, RetiredFormatError
from icechunk_lib.format.refs import REFLOG_INLINE

Move = Callable[[str, str], None]


class Repo:
    """A repository plus a way to overwrite one key with another key's bytes."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.root = tmp_path / "repo"
        if kind == "local":
            self.storage = ic.local_filesystem_storage(str(self.root))
        else:
            self.storage = ic.in_memory_storage()
        self.repo = ic.Repository.create(self.storage)

    def copy(self, source: str, target: str) -> None:
        """Overwrite ``target`` with the bytes of ``source`` (a file copy on local disk)."""
        if self.kind == "local":
            shutil.copyfile(self.root / source, self.root / target)
        else:
            sync(self.storage.put(target, sync(self.storage.get(source))))

    def swap(self, a: str, b: str) -> None:
        data_a, data_b = sync(self.storage.get(a)), sync(self.storage.get(b))
        if self.kind == "local":
            (self.root / a).write_bytes(data_b)
            (self.root / b).write_bytes(data_a)
        else:
            sync(self.storage.put(a, data_b))
            sync(self.storage.put(b, data_a))

    def fresh(self) -> ic.Repository:
        """The repository opened anew: no object of it is in any cache."""
        return ic.Repository.open(self.storage)

    def keys(self, prefix: str) -> set[str]:
        async def collect() -> set[str]:
            return {info.key async for info in self.storage.list(prefix)}

        return sync(collect())


@pytest.fixture(params=["local", "memory"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Repo:
    return Repo(request.param, tmp_path)


def commit_values(repo: ic.Repository, values: np.ndarray, message: str) -> str:
    """Write ``values`` as array ``a`` (one uncompressed native chunk) on main and commit."""
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="a")
    if "a" not in root:
        root.create_array("a", shape=values.shape, dtype=values.dtype, compressors=None)
    root["a"][:] = values
    return session.commit(message)


def read_values(repo: ic.Repository, snapshot_id: str) -> np.ndarray:
    store = repo.readonly_session(snapshot_id=snapshot_id).store
    return np.asarray(zarr.open_array(store, path="a", mode="r")[:])


def assert_refused(
    exc: pytest.ExceptionInfo[ObjectIdMismatchError], key: str, expected: str, found: str
) -> None:
    err = exc.value
    assert key in err.path and key in str(err)
    assert (err.expected_id, err.found_id) == (expected, found)
    assert found in str(err) and "wrong name" in str(err)


FIRST = np.arange(1000, dtype="int64")
SECOND = np.arange(1000, dtype="int64") * 7


def two_versions(repo: Repo) -> tuple[str, str]:
    c1 = commit_values(repo.repo, FIRST, "first")
    c2 = commit_values(repo.repo, SECOND, "second")
    return c1, c2


# --- snapshots -------------------------------------------------------------------------------


def test_snapshot_copied_over_another_is_refused(repo: Repo) -> None:
    c1, c2 = two_versions(repo)
    repo.copy(f"snapshots/{c1}", f"snapshots/{c2}")
    fresh = repo.fresh()
    key = f"snapshots/{c2}"
    with pytest.raises(ObjectIdMismatchError) as exc:
        read_values(fresh, c2)
    assert_refused(exc, key, c2, c1)
    # The branch tip is c2: a zarr read of main, the history and a diff all refuse it too.
    with pytest.raises(ObjectIdMismatchError) as exc:
        zarr.open_array(fresh.readonly_session("main").store, path="a", mode="r")[:]
    assert_refused(exc, key, c2, c1)
    with pytest.raises(ObjectIdMismatchError) as exc:
        list(fresh.ancestry(branch="main"))
    assert_refused(exc, key, c2, c1)
    with pytest.raises(ObjectIdMismatchError) as exc:
        fresh.diff(from_snapshot_id=c1, to_snapshot_id=c2)
    assert_refused(exc, key, c2, c1)
    with pytest.raises(ObjectIdMismatchError) as exc:
        commit_values(fresh, FIRST, "third")
    assert_refused(exc, key, c2, c1)
    # The snapshot under its own name still reads.
    np.testing.assert_array_equal(read_values(fresh, c1), FIRST)


def test_swapped_snapshots_are_both_refused(repo: Repo) -> None:
    c1, c2 = two_versions(repo)
    repo.swap(f"snapshots/{c1}", f"snapshots/{c2}")
    fresh = repo.fresh()
    for wanted, held in ((c1, c2), (c2, c1)):
        with pytest.raises(ObjectIdMismatchError) as exc:
            read_values(fresh, wanted)
        assert_refused(exc, f"snapshots/{wanted}", wanted, held)
        with pytest.raises(ObjectIdMismatchError):
            fresh.lookup_snapshot(wanted)


# --- manifests -------------------------------------------------------------------------------


def manifest_of(repo: ic.Repository, snapshot_id: str) -> str:
    """The id of the manifest holding array ``a``'s chunks in ``snapshot_id``."""
    (node,) = [n for n in sync(repo._objects.snapshot(snapshot_id)).nodes if n.path == "/a"]
    (piece,) = node.manifests
    return piece.manifest_id


def test_swapped_manifests_are_refused(repo: Repo) -> None:
    c1, c2 = two_versions(repo)
    m1, m2 = manifest_of(repo.repo, c1), manifest_of(repo.repo, c2)
    assert m1 != m2
    repo.swap(f"manifests/{m1}", f"manifests/{m2}")
    fresh = repo.fresh()
    for snap, wanted, held in ((c1, m1, m2), (c2, m2, m1)):
        with pytest.raises(ObjectIdMismatchError) as exc:
            read_values(fresh, snap)
        assert_refused(exc, f"manifests/{wanted}", wanted, held)
    with pytest.raises(ObjectIdMismatchError) as exc:
        fresh.diff(from_snapshot_id=c1, to_snapshot_id=c2)
    assert exc.value.path.startswith("manifests/")


def test_manifest_copied_over_another_is_refused(repo: Repo) -> None:
    c1, c2 = two_versions(repo)
    m1, m2 = manifest_of(repo.repo, c1), manifest_of(repo.repo, c2)
    repo.copy(f"manifests/{m1}", f"manifests/{m2}")
    fresh = repo.fresh()
    with pytest.raises(ObjectIdMismatchError) as exc:
        read_values(fresh, c2)
    assert_refused(exc, f"manifests/{m2}", m2, m1)
    np.testing.assert_array_equal(read_values(fresh, c1), FIRST)


# --- transaction logs ------------------------------------------------------------------------


def test_swapped_transaction_logs_are_refused_on_rebase(repo: Repo) -> None:
    commit_values(repo.repo, FIRST, "first")
    stale = repo.repo.writable_session("main")
    c2 = commit_values(repo.repo, SECOND, "second")
    c3 = commit_values(repo.repo, FIRST + 1, "third")
    repo.swap(f"transactions/{c2}", f"transactions/{c3}")
    zarr.open_group(stale.store, mode="a").attrs["x"] = 1
    with pytest.raises(ObjectIdMismatchError) as exc:
        stale.rebase(ic.BasicConflictSolver())
    key = exc.value.path.split(" ")[0]
    assert key in (f"transactions/{c2}", f"transactions/{c3}")
    wanted = key.removeprefix("transactions/")
    assert_refused(exc, key, wanted, c3 if wanted == c2 else c2)


# --- reflog pages ----------------------------------------------------------------------------


def test_reflog_page_copied_over_another_is_refused(repo: Repo) -> None:
    tip = repo.repo.lookup_branch("main")
    for branch in ("one", "two"):
        repo.repo.create_branch(branch, tip)
        for _ in range(REFLOG_INLINE + 1):  # one move more than a record holds: one page
            repo.repo.reset_branch(branch, tip)
    pages = sorted(repo.keys("reflogs/"))
    assert len(pages) == 2
    entries = {b: repo.fresh().reflog(b) for b in ("one", "two")}
    repo.copy(pages[0], pages[1])
    fresh = repo.fresh()
    wanted, held = pages[1].removeprefix("reflogs/"), pages[0].removeprefix("reflogs/")
    refused = []
    for branch in ("one", "two"):
        try:
            assert fresh.reflog(branch) == entries[branch]
        except ObjectIdMismatchError as err:
            refused.append(branch)
            assert pages[1] in err.path
            assert (err.expected_id, err.found_id) == (wanted, held)
    assert len(refused) == 1  # the branch whose page was overwritten, and only it


# --- refs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["branch", "tag"])
def test_a_ref_copied_over_another_is_refused(repo: Repo, kind: str) -> None:
    """Refs have no id: they prove their name, so main never silently points at dev's tip."""
    first = repo.repo.lookup_branch("main")
    second = commit_values(repo.repo, np.arange(4), "second")
    create = repo.repo.create_branch if kind == "branch" else repo.repo.create_tag
    lookup = repo.repo.lookup_branch if kind == "branch" else repo.repo.lookup_tag
    create("old", first)
    create("new", second)
    repo.copy(f"refs/{kind}/old/ref", f"refs/{kind}/new/ref")
    fresh = repo.fresh()
    with pytest.raises(ObjectIdMismatchError) as err:
        (fresh.lookup_branch if kind == "branch" else fresh.lookup_tag)("new")
    assert f"refs/{kind}/new/ref" in err.value.path
    assert "'old'" in str(err.value) and first not in str(err.value)
    with pytest.raises(ObjectIdMismatchError):
        fresh.resolve("new")
    assert lookup("old") == first  # the ref that was copied is untouched


# --- chunks ----------------------------------------------------------------------------------


def test_chunk_copied_over_another_is_refused(repo: Repo) -> None:
    # Chunks are raw bytes; the manifest's content checksum proves which chunk a file holds.
    commit_values(repo.repo, FIRST, "first")
    chunks = repo.keys("chunks/")
    c2 = commit_values(repo.repo, SECOND, "second")
    (old,) = chunks
    (new,) = repo.keys("chunks/") - chunks
    assert sync(repo.storage.size(old)) == sync(repo.storage.size(new))  # a same-size swap
    repo.copy(old, new)
    fresh = repo.fresh()
    with pytest.raises(CorruptObjectError, match="does not match the manifest") as exc:
        read_values(fresh, c2)
    assert new in exc.value.path


def test_untouched_repository_reads_back(repo: Repo) -> None:
    # The control: without any copy, every read above succeeds with the right values.
    c1, c2 = two_versions(repo)
    fresh = repo.fresh()
    np.testing.assert_array_equal(read_values(fresh, c1), FIRST)
    np.testing.assert_array_equal(read_values(fresh, c2), SECOND)
    assert [i.id for i in fresh.ancestry(branch="main")][:2] == [c2, c1]
    assert fresh.diff(from_snapshot_id=c1, to_snapshot_id=c2).updated_chunks == {"/a": [[0]]}


# --- format version 1 ------------------------------------------------------------------------


def _as_version_1(data: bytes) -> bytes:
    """A format-2 metadata file rewritten as the pre-release format 1 wrote it."""
    magic, _, kind, codec, _, length, _ = struct.unpack_from("<4sHBB12sQQ", data)
    payload = data[36:]
    checksum = xxhash.xxh3_64_intdigest(payload)
    return struct.pack("<4sHBBQQ", magic, 1, kind, codec, length, checksum) + payload


def test_a_pre_release_repository_is_refused_with_what_to_do(repo: Repo) -> None:
    two_versions(repo)
    for info in repo.keys(""):
        if not info.startswith("chunks/"):
            data = sync(repo.storage.get(info))
            sync(repo.storage.put(info, _as_version_1(data)))
    with pytest.raises(RetiredFormatError, match="pre-release") as exc:
        list(repo.fresh().ancestry(branch="main"))
    assert "format version 1" in str(exc.value)
