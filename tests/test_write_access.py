"""The write check at create/open, unsafe writes by opt-in, and lost replies to ref writes.

A storage that lacks the atomic operations (``probe_capabilities`` says so, as S3 does for
a server that ignores conditional headers) is refused for every write with an error naming
why and how to opt in; opted in, writes work with one ``UnsafeWritesWarning`` per
repository. A ref write whose reply was lost, whose first attempt landed and was moved on
by others before the retry, is recognised as the writer's own by the branch's reflog: the
commit or branch is there exactly once. The storage itself recognises a write whose reply
alone was lost (its contract, ``LostReplyTests``); on real S3 servers: tests/s3/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import zarr
from faulty_storage import Call, FaultyStorage
from zarr.core.buffer import Buffer, default_buffer_prototype

import icechunk_lib as ic
from icechunk_lib.errors import ObjectExistsError, PreconditionFailedError, StorageError
from icechunk_lib.storage import Storage, StorageCapabilities

NO_ATOMICS = StorageCapabilities(create_if_absent=False, compare_and_swap=False)


class ProbedStorage(FaultyStorage):
    """A real storage whose probe finds the atomic operations missing (a server ignoring
    conditional writes), counting probes; ``unsafe`` is the user's opt-in."""

    def __init__(self, inner: Storage, *, unsafe: bool = False) -> None:
        super().__init__(inner)
        self.unsafe_writes = unsafe
        self.probes = 0

    async def probe_capabilities(self) -> StorageCapabilities:
        """What the server really does (overrides ``Storage.probe_capabilities``)."""
        self.probes += 1
        return NO_ATOMICS


def _snapshot(storage: Storage) -> dict[str, bytes]:
    async def collect() -> dict[str, bytes]:
        return {i.key: await storage.get(i.key) async for i in storage.list("")}

    return asyncio.run(collect())


def _with_data(storage: Storage) -> ic.Repository:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 3
    session.commit("data")
    repo.create_tag("v1", repo.lookup_branch("main"))
    repo.create_branch("dev", repo.lookup_branch("main"))
    return repo


# --- refused without the atomic operations -------------------------------------------------


def test_create_is_refused_naming_the_storage_and_the_opt_in() -> None:
    inner = ic.in_memory_storage()
    with pytest.raises(ic.ReadOnlyStorageError) as info:
        ic.Repository.create(ProbedStorage(inner))
    message = str(info.value)
    assert inner.url in message
    assert "create-if-absent" in message and "compare-and-swap" in message
    assert "allow_unsafe_writes=True" in message and "--unsafe-writes" in message
    assert _snapshot(inner) == {}


WRITES: dict[str, Callable[[ic.Repository, str], object]] = {
    "writable_session": lambda r, tip: r.writable_session("main"),
    "create_branch": lambda r, tip: r.create_branch("x", tip),
    "reset_branch": lambda r, tip: r.reset_branch("dev", tip),
    "delete_branch": lambda r, tip: r.delete_branch("dev"),
    "create_tag": lambda r, tip: r.create_tag("v2", tip),
    "delete_tag": lambda r, tip: r.delete_tag("v1"),
    "save_config": lambda r, tip: r.save_config(),
    "set_config_value": lambda r, tip: r.set_config_value("compression.level", "5"),
    "garbage_collect": lambda r, tip: r.garbage_collect(dt.datetime.now(dt.UTC)),
    "expire_snapshots": lambda r, tip: r.expire_snapshots(dt.datetime.now(dt.UTC)),
    "rewrite_manifests": lambda r, tip: r.rewrite_manifests("m", branch="main"),
}


def test_every_write_is_refused_and_reads_work() -> None:
    inner = ic.in_memory_storage()
    _with_data(inner)
    pickled_session = ic.Repository.open(inner).writable_session("main")
    zarr.open_array(pickled_session.store, path="a", mode="r+")[0] = 9
    before = _snapshot(inner)
    storage = ProbedStorage(inner)
    repo = ic.Repository.open(storage)
    tip = repo.lookup_branch("main")
    for name, write in WRITES.items():
        with pytest.raises(ic.ReadOnlyStorageError, match="allow_unsafe_writes=True"):
            write(repo, tip)
        assert _snapshot(inner) == before, name
    # Reads work: history, refs, data.
    assert next(e.message for e in repo.ancestry(branch="main")) == "data"
    assert repo.lookup_tag("v1") == tip and repo.list_branches() == {"main", "dev"}
    data = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(data, [3, 3, 3, 3])
    assert storage.probes == 1  # once, at open


def test_a_session_reaching_unsafe_storage_cannot_commit() -> None:
    """A writable session whose storage turns out unsafe (its repository probed it) is
    refused at commit, before anything is written."""
    inner = ic.in_memory_storage()
    _with_data(inner)
    storage = ProbedStorage(inner, unsafe=True)
    with pytest.warns(ic.UnsafeWritesWarning):
        session = ic.Repository.open(storage).writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0] = 9
    storage.unsafe_writes = False  # as on another handle, opened without the opt-in
    before = _snapshot(inner)
    repo = ic.Repository.open(storage)
    fork = repo.readonly_session("main")
    with pytest.raises(ic.ReadOnlyStorageError):
        session.commit("refused")
    assert fork.snapshot_id == repo.lookup_branch("main")
    assert {k for k in _snapshot(inner) if not k.startswith("chunks/")} == {
        k for k in before if not k.startswith("chunks/")
    }


# --- unsafe writes by opt-in -----------------------------------------------------------------


def test_unsafe_writes_work_with_one_warning_per_repository() -> None:
    inner = ic.in_memory_storage()
    storage = ProbedStorage(inner, unsafe=True)
    with pytest.warns(ic.UnsafeWritesWarning) as caught:
        repo = _with_data(storage)
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[0] = 9
        session.commit("more")
        repo.delete_tag("v1")
    assert len(caught) == 1
    text = str(caught[0].message)
    assert inner.url in text and "compare-and-swap" in text
    assert "overwrite each other's commits" in text and "tag can be created twice" in text
    assert storage.probes == 1
    with pytest.warns(ic.UnsafeWritesWarning) as again:
        ic.Repository.open(storage).create_branch("other", repo.lookup_branch("main"))
    assert len(again) == 1
    assert [e.message for e in ic.Repository.open(inner).ancestry(branch="main")][:2] == [
        "more",
        "data",
    ]


def test_safe_storage_neither_warns_nor_probes_more_than_once(storage: ic.Storage) -> None:
    probes = []
    real = type(storage).probe_capabilities

    async def counting(self: Storage) -> StorageCapabilities:
        probes.append(1)
        return await real(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(storage), "probe_capabilities", counting)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            repo = _with_data(storage)
            assert len(probes) == 1
            ic.Repository.open(storage).create_tag("v3", repo.lookup_branch("main"))
    assert len(probes) == 2


async def _group_with_attrs(session: ic.Session) -> Buffer:
    """The root group's metadata with an attribute added."""
    meta = json.loads((await session.store.get("zarr.json", default_buffer_prototype())).to_bytes())  # type: ignore[union-attr]
    meta.setdefault("attributes", {})["theirs"] = True
    return default_buffer_prototype().buffer.from_bytes(json.dumps(meta).encode())


# --- lost replies ----------------------------------------------------------------------------


def _lost_reply(kind: type[StorageError], key: str) -> Callable[[Call], None]:
    """After the write landed: the error its retry got, the first outcome unknown."""

    def fail(call: Call) -> None:
        exc = kind(key)
        exc.outcome_unknown = True  # type: ignore[attr-defined]
        raise exc

    return fail


def _refs_call(method: str, prefix: str) -> Callable[[Call], bool]:
    return lambda call: call.method == method and call.key.startswith(prefix)


def test_commit_whose_swap_reply_was_lost_returns_its_id_once() -> None:
    faulty = FaultyStorage(ic.in_memory_storage())
    repo = _with_data(faulty)
    base = repo.lookup_branch("main")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0] = 9
    faulty.arm(
        0,
        when="after",
        match=_refs_call("put_if_match", "refs/branch/main"),
        on_fault=_lost_reply(PreconditionFailedError, "refs/branch/main/ref"),
    )
    new_id = session.commit("lost reply", rebase_with=ic.ConflictDetector())
    faulty.disarm()
    assert len(faulty.faults) == 1
    entries = list(ic.Repository.open(faulty.inner).ancestry(branch="main"))
    assert [e.id for e in entries[:2]] == [new_id, base]
    assert [e.message for e in entries].count("lost reply") == 1
    assert session.snapshot_id == new_id and not session.has_uncommitted_changes


def test_commit_landed_then_others_committed_on_top_before_the_retry() -> None:
    """The retry finds the branch moved on past our commit: still ours, not a conflict."""
    faulty = FaultyStorage(ic.in_memory_storage())
    repo = _with_data(faulty)
    other = ic.Repository.open(faulty.inner)
    mine = repo.writable_session("main")
    zarr.open_array(mine.store, path="a", mode="r+")[0] = 9

    def others_then_lost(call: Call) -> None:
        async def commit_on_top() -> None:
            # A writer who started from our landed commit, on its own loop in a thread:
            # the engine's loop is blocked here.
            theirs = await other.writable_session_async("main")
            await theirs.store.set("zarr.json", await _group_with_attrs(theirs))
            await theirs.commit_async("theirs")

        thread = threading.Thread(target=asyncio.run, args=(commit_on_top(),))
        thread.start()
        thread.join()
        _lost_reply(PreconditionFailedError, "refs/branch/main/ref")(call)

    faulty.arm(
        0,
        when="after",
        match=_refs_call("put_if_match", "refs/branch/main"),
        on_fault=others_then_lost,
    )
    new_id = mine.commit("mine", rebase_with=ic.ConflictDetector())
    faulty.disarm()
    messages = [e.message for e in other.ancestry(branch="main")]
    assert messages[:3] == ["theirs", "mine", "data"]
    assert other.lookup_snapshot(new_id).message == "mine"


def test_a_commit_retried_after_a_lost_reply_error_is_not_made_twice() -> None:
    """The swap landed but the caller got an error: committing again returns that commit."""
    faulty = FaultyStorage(ic.in_memory_storage())
    repo = _with_data(faulty)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0] = 9
    faulty.arm(0, when="after", match=_refs_call("put_if_match", "refs/branch/main"))
    with pytest.raises(StorageError):
        session.commit("once")
    faulty.disarm()
    new_id = session.commit("once", rebase_with=ic.ConflictDetector())
    entries = list(ic.Repository.open(faulty.inner).ancestry(branch="main"))
    assert entries[0].id == new_id
    assert [e.message for e in entries].count("once") == 1


def test_branch_created_then_moved_by_others_before_the_retry_exists_once() -> None:
    """The creation landed, its reply was lost, and another writer committed on the new
    branch before the retry: the storage finds other bytes there (``ObjectExistsError``,
    outcome unknown, as its contract says) and the branch's reflog shows ours landed.
    A creation whose reply alone was lost the storage itself recognises (tests/s3/)."""
    faulty = FaultyStorage(ic.in_memory_storage())
    repo = _with_data(faulty)
    other = ic.Repository.open(faulty.inner)
    tip = repo.lookup_branch("main")

    def others_then_lost(call: Call) -> None:
        async def commit_on_top() -> None:
            theirs = await other.writable_session_async("b2")
            await theirs.store.set("zarr.json", await _group_with_attrs(theirs))
            await theirs.commit_async("theirs")

        thread = threading.Thread(target=asyncio.run, args=(commit_on_top(),))
        thread.start()
        thread.join()
        _lost_reply(ObjectExistsError, "refs/branch/b2/ref")(call)

    faulty.arm(
        0,
        when="after",
        match=_refs_call("put_if_absent", "refs/branch/b2"),
        on_fault=others_then_lost,
    )
    repo.create_branch("b2", tip)
    faulty.disarm()
    assert len(faulty.faults) == 1
    assert [e.action for e in repo.reflog("b2")] == ["commit", "create"]
    assert [e.message for e in repo.ancestry(branch="b2")][:2] == ["theirs", "data"]
    # Someone else's branch of the same name is still refused, lost reply or not.
    with pytest.raises(ic.BranchAlreadyExistsError):
        repo.create_branch("b2", tip)
    faulty.arm(  # a lost reply to a try that never landed: the branch holds theirs
        0,
        when="before",
        match=_refs_call("put_if_absent", "refs/branch/b2"),
        on_fault=_lost_reply(ObjectExistsError, "refs/branch/b2/ref"),
    )
    with pytest.raises(ic.BranchAlreadyExistsError):
        repo.create_branch("b2", tip)
    assert len(faulty.faults) == 2
