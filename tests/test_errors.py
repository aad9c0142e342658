"""Every bad input gets a specific ``IcechunkError`` that names the thing and changes nothing.

``Unchanged`` lists every key and its bytes (on local disk also the file tree) before the bad
call and compares afterwards.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import xxhash
import zarr
from zarr.core.buffer import cpu
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.errors import (
    InvalidStorageURLError,
    NodeNotFoundError,
    ProtectedBranchError,
)
from icechunk_lib.format import new_object_id
from icechunk_lib.format.snapshot import NodeSnapshot
from icechunk_lib.session import workspace_of
from icechunk_lib.storage import LocalFileSystemStorage
from icechunk_lib.store import IcechunkStore

Listing = dict[str, bytes]


def listing(storage: ic.Storage) -> Listing:
    """Every key in the storage with its bytes."""

    async def collect() -> Listing:
        return {info.key: await storage.get(info.key) async for info in storage.list("")}

    return sync(collect())


def _tree(root: Path) -> set[str]:
    """Every file and directory under ``root``, hidden ones too, except the lock files.

    Lock files are created on first use and never deleted, by design of the local storage.
    """
    if not root.exists():
        return set()
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.relative_to(root).parts[0] != ".ick-locks"
    }


class Unchanged:
    """Context manager asserting the storage holds the same keys and bytes afterwards.

    On local storage the directory tree must be unchanged too: no stray temporary files.
    """

    def __init__(self, storage: ic.Storage) -> None:
        self.storage = storage
        self.root = storage.root if isinstance(storage, LocalFileSystemStorage) else None

    def __enter__(self) -> Unchanged:
        self.before = listing(self.storage)
        self.tree = _tree(self.root) if self.root else set()
        return self

    def __exit__(self, *exc: object) -> None:
        assert listing(self.storage) == self.before
        if self.root:
            assert _tree(self.root) == self.tree


def _commit_array(repo: ic.Repository, values: Any = None, message: str = "data") -> str:
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="a")
    if "a" in root:
        arr = zarr.open_array(session.store, path="a", mode="r+")
    else:
        arr = root.create_array("a", shape=(8,), chunks=(4,), dtype="i8")
    arr[:] = np.arange(8) if values is None else values
    return session.commit(message)


E = TypeVar("E", bound=BaseException)


@contextmanager
def _raises(exc_type: type[E], *names: str) -> Iterator[pytest.ExceptionInfo[E]]:
    """``pytest.raises`` that also checks each of ``names`` appears in the message."""
    with pytest.raises(exc_type) as info:
        yield info
    message = str(info.value)
    for name in names:
        assert name in message, (name, message)


# --- opening and creating ----------------------------------------------------------------------


def test_open_where_there_is_no_repository(storage: ic.Storage) -> None:
    with Unchanged(storage), _raises(ic.RepositoryNotFoundError, storage.url) as exc:
        ic.Repository.open(storage)
    assert isinstance(exc.value, FileNotFoundError)
    assert exc.value.location == storage.url
    assert not ic.Repository.exists(storage)
    assert ic.Repository.fetch_config(storage) is None


def test_open_a_directory_of_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a repository")
    (tmp_path / "refs").mkdir()
    storage = ic.local_filesystem_storage(tmp_path)
    with (
        Unchanged(storage),
        pytest.raises(ic.RepositoryNotFoundError, match=re.escape(str(tmp_path))),
    ):
        ic.Repository.open(storage)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "refs"]


def test_open_a_missing_directory_does_not_create_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ic.Repository.open(ic.local_filesystem_storage(tmp_path / "absent"))
    assert not (tmp_path / "absent").exists()


def test_create_over_a_repository(storage: ic.Storage) -> None:
    ic.Repository.create(storage)
    with Unchanged(storage), _raises(ic.RepositoryAlreadyExistsError, storage.url) as exc:
        ic.Repository.create(storage)
    assert isinstance(exc.value, FileExistsError)


def test_create_in_a_location_holding_other_data(storage: ic.Storage) -> None:
    sync(storage.put("data/file.bin", b"precious"))
    with Unchanged(storage), _raises(ic.RepositoryAlreadyExistsError, "not empty", storage.url):
        ic.Repository.create(storage)
    assert listing(storage) == {"data/file.bin": b"precious"}


def test_create_in_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    storage = ic.local_filesystem_storage(tmp_path)
    with pytest.raises(ic.RepositoryAlreadyExistsError, match="not empty"):
        ic.Repository.create(storage)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_create_with_an_invalid_config_writes_nothing(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=-1)
    with Unchanged(storage), _raises(ic.ConfigError, "inline_chunk_threshold_bytes"):
        ic.Repository.create(storage, config=config)
    assert not ic.Repository.exists(storage)


def test_unknown_storage_url() -> None:
    with pytest.raises(InvalidStorageURLError, match="nope://x"):
        ic.storage_from_url("nope://x")


# --- unknown refs and snapshots ------------------------------------------------------------------


def test_unknown_branch(repo: ic.Repository) -> None:
    sid = repo.lookup_branch("main")
    calls: list[Callable[[], object]] = [
        lambda: repo.lookup_branch("nope"),
        lambda: repo.writable_session("nope"),
        lambda: repo.readonly_session("nope"),
        lambda: repo.readonly_session(branch="nope"),
        lambda: repo.delete_branch("nope"),
        lambda: repo.reset_branch("nope", sid),
        lambda: list(repo.ancestry(branch="nope")),
        lambda: repo.diff(from_branch="nope", to_branch="main"),
    ]
    with Unchanged(repo.storage):
        for call in calls:
            with _raises(ic.BranchNotFoundError, "'nope'", "branch") as exc:
                call()
            assert isinstance(exc.value, KeyError) and isinstance(exc.value, ic.RefNotFoundError)
            assert exc.value.name == "nope"


def test_unknown_tag(repo: ic.Repository) -> None:
    calls: list[Callable[[], object]] = [
        lambda: repo.lookup_tag("nope"),
        lambda: repo.readonly_session(tag="nope"),
        lambda: repo.delete_tag("nope"),
        lambda: list(repo.ancestry(tag="nope")),
        lambda: repo.diff(from_tag="nope", to_branch="main"),
    ]
    with Unchanged(repo.storage):
        for call in calls:
            with _raises(ic.TagNotFoundError, "'nope'", "tag") as exc:
                call()
            assert isinstance(exc.value, KeyError)
            assert exc.value.name == "nope"


@pytest.mark.parametrize(
    "snapshot_id",
    ["MISSING", "", "0" * 19, "0" * 21, "I" * 20, "valid-but-lowercase"],
)
def test_unknown_snapshot(repo: ic.Repository, snapshot_id: str) -> None:
    if snapshot_id == "MISSING":
        snapshot_id = new_object_id()
    if snapshot_id == "valid-but-lowercase":
        snapshot_id = repo.lookup_branch("main").lower()
    calls: list[Callable[[], object]] = [
        lambda: repo.lookup_snapshot(snapshot_id),
        lambda: repo.readonly_session(snapshot_id=snapshot_id),
        lambda: repo.create_branch("new", snapshot_id),
        lambda: repo.create_tag("new", snapshot_id),
        lambda: repo.reset_branch("main", snapshot_id),
        lambda: list(repo.ancestry(snapshot_id=snapshot_id)),
        lambda: repo.diff(from_snapshot_id=snapshot_id, to_branch="main"),
    ]
    with Unchanged(repo.storage):
        for call in calls:
            with _raises(ic.SnapshotNotFoundError, repr(snapshot_id)) as exc:
                call()
            assert isinstance(exc.value, KeyError)
            assert exc.value.snapshot_id == snapshot_id
    assert repo.list_branches() == {"main"} and repo.list_tags() == set()


def test_ambiguous_or_naive_requests(repo: ic.Repository) -> None:
    sid = repo.lookup_branch("main")
    with Unchanged(repo.storage):
        with pytest.raises(ValueError, match="exactly one"):
            repo.readonly_session("main", snapshot_id=sid)
        with pytest.raises(ValueError, match="timezone"):
            repo.readonly_session("main", as_of=dt.datetime(2020, 1, 1))
        with _raises(ic.SnapshotNotFoundError, "'main'", "2001"):
            repo.readonly_session("main", as_of=dt.datetime(2001, 1, 1, tzinfo=dt.UTC))


# --- refs that must not change -------------------------------------------------------------------


def test_main_cannot_be_deleted(repo: ic.Repository) -> None:
    with Unchanged(repo.storage), _raises(ProtectedBranchError, "'main'") as exc:
        repo.delete_branch("main")
    assert isinstance(exc.value, PermissionError) and exc.value.name == "main"


def test_branch_names_cannot_be_taken_twice(repo: ic.Repository) -> None:
    sid = repo.lookup_branch("main")
    repo.create_branch("dev", sid)
    for name in ("dev", "main"):
        with Unchanged(repo.storage), _raises(ic.BranchAlreadyExistsError, repr(name)) as exc:
            repo.create_branch(name, sid)
        assert isinstance(exc.value, FileExistsError) and exc.value.name == name


def test_tag_names_are_never_reused(repo: ic.Repository) -> None:
    first = repo.lookup_branch("main")
    second = _commit_array(repo)
    repo.create_tag("v1", first)
    with Unchanged(repo.storage), _raises(ic.TagAlreadyExistsError, "'v1'", "already") as exc:
        repo.create_tag("v1", second)
    assert not exc.value.deleted
    repo.delete_tag("v1")
    with Unchanged(repo.storage):
        with _raises(ic.TagAlreadyExistsError, "'v1'", "deleted") as exc:
            repo.create_tag("v1", second)
        assert exc.value.deleted and isinstance(exc.value, FileExistsError)
        with _raises(ic.TagNotFoundError, "'v1'"):
            repo.delete_tag("v1")
        with _raises(ic.TagNotFoundError, "'v1'"):
            repo.readonly_session(tag="v1")
    assert "v1" not in repo.list_tags()


def test_reset_branch_from_a_stale_snapshot(repo: ic.Repository) -> None:
    first = repo.lookup_branch("main")
    second = _commit_array(repo)
    with Unchanged(repo.storage), _raises(ic.ConflictError, "'main'", first, second) as exc:
        repo.reset_branch("main", first, from_snapshot_id=first)
    assert (exc.value.branch, exc.value.expected_parent, exc.value.actual_parent) == (
        "main",
        first,
        second,
    )
    assert repo.lookup_branch("main") == second
    repo.reset_branch("main", first, from_snapshot_id=second)
    assert repo.lookup_branch("main") == first


# --- sessions ------------------------------------------------------------------------------------


def test_commit_without_changes(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    with Unchanged(repo.storage), _raises(ic.NoChangesToCommitError, "allow_empty"):
        session.commit("nothing")
    assert not session.read_only
    assert session.snapshot_id == repo.lookup_branch("main")


def test_commit_after_the_branch_moved(repo: ic.Repository) -> None:
    stale = repo.writable_session("main")
    zarr.open_group(stale.store, mode="a").attrs["who"] = "stale"
    base = stale.snapshot_id
    tip = _commit_array(repo)
    # The stale session's commit may leave unreachable objects, but never moves the branch.
    with _raises(ic.ConflictError, base, tip) as exc:
        stale.commit("lost the race")
    assert exc.value.expected_parent == base and exc.value.actual_parent == tip
    assert repo.lookup_branch("main") == tip


def _readonly_calls(session: ic.Session) -> list[Callable[[], object]]:
    ws = workspace_of(session)

    async def node() -> NodeSnapshot:
        return (await ws.nodes())["/"]

    root = sync(node())
    return [
        lambda: session.commit("x"),
        lambda: session.commit("x", allow_empty=True),
        lambda: session.discard_changes(),
        lambda: session.rebase(ic.BasicConflictSolver()),
        lambda: sync(ws.set_node("/g", b'{"zarr_format":3,"node_type":"group"}')),
        lambda: sync(ws.delete_node("/")),
        lambda: sync(ws.delete_tree("/")),
        lambda: session.move("/a", "/b"),
        lambda: sync(ws.set_chunk(root, (0,), b"x")),
        lambda: sync(ws.delete_chunk(root, (0,))),
        lambda: sync(ws.set_extra("k", b"x")),
        lambda: sync(ws.delete_extras(["k"])),
        lambda: IcechunkStore(session, read_only=False),
        lambda: session.store.with_read_only(False),
    ]


@pytest.mark.parametrize("how", ["readonly_session", "committed", "snapshot_id"])
def test_writes_through_a_read_only_session(repo: ic.Repository, how: str) -> None:
    _commit_array(repo)
    if how == "readonly_session":
        session = repo.readonly_session("main")
    elif how == "snapshot_id":
        session = repo.readonly_session(snapshot_id=repo.lookup_branch("main"))
    else:
        session = repo.writable_session("main")
        zarr.open_group(session.store, mode="a").attrs["x"] = 1
        session.commit("made read-only by committing")
    assert session.read_only
    with Unchanged(repo.storage):
        for call in _readonly_calls(session):
            with _raises(ic.ReadOnlySessionError, "read-only", "writable_session") as exc:
                call()
            assert isinstance(exc.value, ValueError)
        store = session.store
        assert store.read_only
        # Through the store, zarr's own read-only check answers first.
        with pytest.raises(ValueError, match="read-only"):
            sync(store.set("a/c/0", cpu.Buffer.from_bytes(b"x")))
        with pytest.raises(ValueError, match="read-only"):
            sync(store.delete("a/zarr.json"))
        with pytest.raises(ValueError, match="read-only"):
            zarr.open_array(store, path="a")[:] = 5
        with pytest.raises(ValueError, match="read-only"):
            zarr.create_array(store, name="b", shape=(2,), dtype="i1")
    np.testing.assert_array_equal(zarr.open_array(store, path="a", mode="r")[:], np.arange(8))
    assert not session.has_uncommitted_changes


def test_moving_a_missing_node_or_onto_a_node(repo: ic.Repository) -> None:
    _commit_array(repo)
    session = repo.writable_session("main")
    with _raises(NodeNotFoundError, "'/missing'") as exc:
        session.move("/missing", "/b")
    assert isinstance(exc.value, KeyError)
    with _raises(ic.InvalidNameError, "'/'"):
        session.move("/a", "/")
    with _raises(ic.InvalidNameError, "'/a/inside'"):
        session.move("/a", "/a/inside")
    assert not session.has_uncommitted_changes
    assert session.status().is_empty()


# --- damaged metadata on disk --------------------------------------------------------------------


LocalRepo = tuple[ic.Repository, Path, ic.Session]


@pytest.fixture
def local_repo(tmp_path: Path) -> Iterator[LocalRepo]:
    """A local repository with two commits and a session still based on the first."""
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    _commit_array(repo, message="first")
    # Opened from its own Repository, so none of the later objects are in its caches.
    stale = ic.Repository.open(ic.local_filesystem_storage(root)).writable_session("main")
    _commit_array(repo, np.arange(8) * 10, message="second")
    yield repo, root, stale


def _key_of(repo: ic.Repository, root: Path, target: str) -> str:
    tip = repo.lookup_branch("main")
    if target == "snapshot":
        return f"snapshots/{tip}"
    if target == "transaction":
        return f"transactions/{tip}"
    if target == "ref":
        return "refs/branch/main/ref"
    if target == "config":
        return "config"
    # The manifest the tip's array reads from.
    snapshot = sync(repo._objects.snapshot(tip))
    (node,) = [n for n in snapshot.nodes if n.path == "/a"]
    return f"manifests/{node.manifests[0].manifest_id}"


def _rechecked(data: bytes) -> bytes:
    checksum = xxhash.xxh3_64_intdigest(data[:28] + data[36:])
    return data[:28] + checksum.to_bytes(8, "little") + data[36:]


DAMAGE: dict[str, Callable[[bytearray], bytes]] = {
    "flip-magic": lambda b: bytes(b[:1]) + bytes([b[1] ^ 0x40]) + bytes(b[2:]),
    "flip-id": lambda b: bytes(b[:10]) + bytes([b[10] ^ 4]) + bytes(b[11:]),
    "flip-length": lambda b: bytes(b[:20]) + bytes([b[20] ^ 1]) + bytes(b[21:]),
    "flip-checksum": lambda b: bytes(b[:28]) + bytes([b[28] ^ 0x80]) + bytes(b[29:]),
    "flip-last": lambda b: bytes(b[:-1]) + bytes([b[-1] ^ 0xFF]),
    "truncate-half": lambda b: bytes(b[: len(b) // 2]),
    "truncate-header": lambda b: bytes(b[:10]),
    "empty": lambda b: b"",
    "flip-version": lambda b: bytes(b[:4]) + struct.pack("<H", 4) + bytes(b[6:]),
    # A file a newer ick wrote: a version after the newest (3, snapshots only), and a
    # checksum that matches it.
    "version": lambda b: _rechecked(bytes(b[:4]) + struct.pack("<H", 4) + bytes(b[6:])),
}


def _read_everything(storage: ic.Storage, stale: ic.Session) -> None:
    """Open the repository and read every kind of metadata the way a user would."""
    repo = ic.Repository.open(storage)
    tip = repo.lookup_branch("main")
    assert len(list(repo.ancestry(branch="main"))) == 3
    repo.readonly_session(snapshot_id=tip)
    store = repo.readonly_session("main").store
    np.testing.assert_array_equal(zarr.open_array(store, path="a", mode="r")[:], 10 * np.arange(8))
    # Rebasing reads the transaction logs of the commits that landed meanwhile.
    zarr.open_group(stale.store, mode="a").attrs["x"] = 1
    stale.rebase(ic.BasicConflictSolver())
    assert stale.snapshot_id == tip


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("target", ["config", "ref", "snapshot", "manifest", "transaction"])
def test_damaged_metadata_file(local_repo: LocalRepo, target: str, damage: str) -> None:
    repo, root, stale = local_repo
    key = _key_of(repo, root, target)
    file = root / key
    file.write_bytes(DAMAGE[damage](bytearray(file.read_bytes())))
    storage = ic.local_filesystem_storage(root)
    expected = ic.UnsupportedFormatError if damage == "version" else ic.CorruptObjectError
    with Unchanged(storage), _raises(expected, key, str(root)) as exc:
        _read_everything(storage, stale)
    assert key in exc.value.path
    if damage == "version":
        assert "upgrade" in str(exc.value)
    else:
        assert not isinstance(exc.value, ic.UnsupportedFormatError)


def test_undamaged_repository_reads_cleanly(local_repo: LocalRepo) -> None:
    # The control for test_damaged_metadata_file: the same reads succeed on intact files.
    _, root, stale = local_repo
    storage = ic.local_filesystem_storage(root)
    with Unchanged(storage):
        _read_everything(storage, stale)
