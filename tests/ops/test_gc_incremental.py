"""gc whose cost follows the change: the run after a small change reads only the new
manifests and lists only the new keys, and deletes exactly what a full run would.

Storage calls are counted by ``gc_support.CountingStorage`` wrapped around real memory and
local storage. The listing bound is tested with ``skew_margin=0`` through the operation
itself: with the default hour of margin, everything a test writes within a minute is
"recent" and listed again, by design.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gc_support import OBJECT_PREFIXES, CountingStorage, age, keys, read_chunks, write_chunks

import icechunk_lib as ic
from icechunk_lib.ops.gc import garbage_collect
from icechunk_lib.storage import LocalFileSystemStorage, ObjectInfo
from icechunk_lib.storage.memory import InMemoryStorage

OLD = timedelta(days=10)
ARRAYS = ("a", "b", "c")
PER_ARRAY = 1000


def gc_now(storage: ic.Storage, *, full: bool = False) -> ic.GCSummary:
    """gc with a cut-off of now and no skew margin (see the module docstring)."""
    return ic._sync.run(
        garbage_collect(storage, datetime.now(UTC), full=full, skew_margin=timedelta(0))
    )


def clone(storage: ic.Storage, tmp_path: Path) -> ic.Storage:
    """An independent copy of a storage with the same objects and modification times."""
    if isinstance(storage, InMemoryStorage):
        copy = InMemoryStorage()
        with storage._lock:
            copy._objects.update(storage._objects)
        return copy
    assert isinstance(storage, LocalFileSystemStorage)
    target = tmp_path / "clone"
    shutil.copytree(storage.root, target, copy_function=shutil.copy2)
    return ic.local_filesystem_storage(target)


def _big_repo(storage: ic.Storage) -> ic.Repository:
    """3 arrays of 1,000 chunks, a few overwrites, and a deleted branch: all aged."""
    repo = ic.Repository.create(storage)
    for n, name in enumerate(ARRAYS):
        write_chunks(repo, "main", name, 0, PER_ARRAY, float(n))
    write_chunks(repo, "main", "a", 0, 10, 10.0)
    repo.create_branch("old", repo.lookup_branch("main"))
    write_chunks(repo, "old", "b", 0, 50, 20.0)
    repo.delete_branch("old")
    age(storage, OLD)
    return repo


def test_a_second_gc_reads_and_lists_only_what_changed(storage: ic.Storage, tmp_path: Path) -> None:
    counting = CountingStorage(storage)
    _big_repo(storage)
    total_manifests = len(keys(storage, ["manifests/"]))

    first = gc_now(counting)
    assert first.full
    assert first.chunks_deleted == 50 and first.snapshots_deleted == 1
    assert first.manifests_read == counting.gets["manifests/"] == total_manifests - 1
    assert sum(counting.listed[p] for p in OBJECT_PREFIXES) >= 3 * PER_ARRAY

    # A small change: 5 chunks on main, and a branch that comes and goes (its 7 chunks are
    # garbage, aged so this run may take them).
    repo = ic.Repository.open(storage)
    before = keys(storage)
    write_chunks(repo, "main", "c", 100, 5, 30.0)
    main_new = keys(storage) - before
    repo.create_branch("tmp", repo.lookup_branch("main"))
    write_chunks(repo, "tmp", "a", 500, 7, 40.0)
    repo.delete_branch("tmp")
    new = keys(storage) - before
    age(storage, OLD, only=new - main_new)
    full_copy = clone(storage, tmp_path)

    counting.reset()
    second = gc_now(counting)
    assert not second.full
    # Marking read the one new snapshot and its new manifest(s), nothing older.
    new_manifests = {k for k in main_new if k.startswith("manifests/")}
    assert second.snapshots_read == counting.gets["snapshots/"] == 1
    assert second.manifests_read == counting.gets["manifests/"] == len(new_manifests)
    assert counting.gets["transactions/"] == 1  # the new snapshot's log
    assert counting.gets["chunks/"] == 0
    # Listing saw exactly the manifests and chunks written since the first run, and the
    # snapshots and logs (random ids, one per commit: listed whole).
    listed = sum(counting.listed[p] for p in OBJECT_PREFIXES)
    assert listed == second.objects_listed
    big = ("manifests/", "chunks/")
    assert sum(counting.listed[p] for p in big) == sum(k.startswith(big) for k in new) < 30
    for prefix in ("snapshots/", "transactions/"):
        assert counting.listed[prefix] == len(keys(full_copy, [prefix]))
    assert second.chunks_deleted == 7 and second.snapshots_deleted == 1

    # A forced full run on an identical copy deletes exactly the same objects.
    full = gc_now(full_copy, full=True)
    assert full.full
    assert full.manifests_read > second.manifests_read
    assert full.objects_listed > 10 * second.objects_listed
    assert keys(full_copy) == keys(storage)
    fields = ("snapshots_deleted", "transaction_logs_deleted", "manifests_deleted")
    for name in (*fields, "chunks_deleted", "bytes_deleted"):
        assert getattr(full, name) == getattr(second, name), name

    assert repo.verify().ok
    assert list(read_chunks(repo, {"branch": "main"}, "c", 3)) == [2.0] * 3
    # Nothing changed: the next run reads nothing and deletes nothing.
    counting.reset()
    third = gc_now(counting)
    assert (third.full, third.manifests_read, third.chunks_deleted) == (False, 0, 0)


def test_the_public_run_after_a_small_change_reads_only_the_new_manifest(
    repo: ic.Repository,
) -> None:
    write_chunks(repo, "main", "a", 0, 20, 1.0)
    write_chunks(repo, "main", "b", 0, 20, 1.0)
    cut_off = datetime.now(UTC) - timedelta(days=7)
    assert repo.garbage_collect(cut_off).full
    write_chunks(repo, "main", "a", 0, 2, 2.0)
    second = repo.garbage_collect(cut_off)
    assert (second.full, second.snapshots_read, second.manifests_read) == (False, 1, 1)
    assert second.manifests_read < repo.garbage_collect(cut_off, full=True).manifests_read


def _recorded(storage: ic.Storage) -> ic.Repository:
    repo = ic.Repository.create(storage)
    base = write_chunks(repo, "main", "a", 0, 4, 1.0)
    write_chunks(repo, "main", "a", 4, 4, 2.0)
    repo.create_branch("dev", base)
    repo.create_tag("v1", base)
    write_chunks(repo, "dev", "a", 8, 4, 3.0)
    age(storage, OLD)
    assert gc_now(storage).full
    return repo


@pytest.mark.parametrize(
    "release",
    ["reset main", "delete branch", "reset dev", "expiration"],
)
def test_a_release_since_the_last_run_makes_the_next_run_full(
    storage: ic.Storage, release: str
) -> None:
    repo = _recorded(storage)
    main = repo.lookup_branch("main")
    if release == "reset main":
        repo.reset_branch("main", repo.lookup_tag("v1"))
    elif release == "delete branch":
        repo.delete_branch("dev")
    elif release == "reset dev":
        repo.reset_branch("dev", main)
    else:  # releases dev, v1 and the base of main's tip (re-parented onto the root)
        released = repo.expire_snapshots(
            datetime.now(UTC), delete_expired_branches=True, delete_expired_tags=True
        )
        assert released and released.record_id is not None
    before = keys(storage)
    summary = gc_now(storage)
    assert summary.full
    if release != "expiration":
        assert summary.snapshots_deleted == 1  # what the ref held alone goes now
        assert summary.chunks_deleted == 4
    assert len(before - keys(storage)) == sum(
        getattr(summary, f)
        for f in (
            "snapshots_deleted",
            "transaction_logs_deleted",
            "manifests_deleted",
            "chunks_deleted",
        )
    )
    assert repo.verify().ok


def test_a_deleted_tag_still_in_history_needs_no_full_run(storage: ic.Storage) -> None:
    repo = _recorded(storage)
    repo.delete_tag("v1")  # its snapshot is still main's ancestor: nothing was released
    summary = gc_now(storage)
    assert not summary.full and summary.snapshots_deleted == 0


def test_unreadable_or_missing_records_mean_a_full_run(storage: ic.Storage) -> None:
    repo = _recorded(storage)
    (record,) = keys(storage, ["gc/"])
    ic._sync.run(storage.put(record, b"not a record"))
    assert gc_now(storage).full
    for key in keys(storage, ["gc/"]):
        ic._sync.run(storage.delete(key))
    assert gc_now(storage).full
    assert repo.verify().ok


def test_a_branch_recreated_on_an_unreachable_snapshot_keeps_its_objects(
    storage: ic.Storage,
) -> None:
    repo = ic.Repository.create(storage)
    write_chunks(repo, "main", "a", 0, 4, 1.0)
    repo.create_branch("dev", repo.lookup_branch("main"))
    dev = write_chunks(repo, "dev", "a", 0, 4, 2.0)
    repo.delete_branch("dev")
    # The default margin: dev's objects are unreachable but young, so they stay...
    cut_off = datetime.now(UTC) - timedelta(days=7)
    assert repo.garbage_collect(cut_off).chunks_deleted == 0
    # ...and a branch made on dev's snapshot again keeps them through the next runs, however
    # old they get, though the last record did not count them as reachable.
    repo.create_branch("again", dev)
    age(storage, OLD)
    summary = repo.garbage_collect(cut_off)
    assert not summary.full and summary.chunks_deleted == 0
    assert repo.verify().ok
    assert list(read_chunks(repo, {"branch": "again"}, "a", 4)) == [2.0] * 4


def test_old_records_are_superseded(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    cut_off = datetime.now(UTC) - timedelta(days=7)
    names = []
    for _ in range(5):
        repo.garbage_collect(cut_off)
        names.append(max(keys(storage, ["gc/"])))
    assert keys(storage, ["gc/"]) == set(names[-3:])


def test_an_older_cut_off_than_last_time_keeps_judging_from_the_old_horizon(
    storage: ic.Storage,
) -> None:
    repo = _recorded(storage)
    repo.delete_branch("dev")
    # A cut-off before everything: nothing is old enough, the horizon must not move back.
    assert gc_now(storage).full  # released since the record
    summary = ic._sync.run(
        garbage_collect(storage, datetime.now(UTC) - timedelta(days=30), skew_margin=timedelta(0))
    )
    assert not summary.full and summary.chunks_deleted == 0
    assert repo.verify().ok


# --- refs that move while gc marks ------------------------------------------------------------


class MovingRefs(CountingStorage):
    """Real storage where, each time the branches are listed, branch ``side`` is reset to
    the next snapshot of ``targets`` (snapshots nothing else reaches): a ref moving to what
    the mark has not seen, as a reset or a restore from the reflog does."""

    def __init__(self, inner: ic.Storage, targets: list[str]) -> None:
        super().__init__(inner)
        self.targets = list(targets)
        self.moves = 0

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        async for info in super()._list(prefix, start_after):
            yield info
        if prefix.startswith("refs/branch") and self.targets:
            repo = await ic.Repository.open_async(self.inner)
            await repo.reset_branch_async("side", self.targets.pop(0))
            self.moves += 1


def _side_snapshots(storage: ic.Storage, count: int) -> tuple[ic.Repository, list[str]]:
    """``count`` commits of 3 chunks, each on main's tip by branch ``side``, which ends back
    at main's tip: no ref reaches them. All aged."""
    repo = ic.Repository.create(storage)
    base = write_chunks(repo, "main", "a", 0, 4, 1.0)
    repo.create_branch("side", base)
    made = []
    for i in range(count):
        made.append(write_chunks(repo, "side", "a", 10 * i, 3, float(i)))
        repo.reset_branch("side", base)
    age(storage, OLD)
    return repo, made


def test_refs_moving_to_unmarked_snapshots_are_marked_again(storage: ic.Storage) -> None:
    repo, made = _side_snapshots(storage, 4)
    moving = MovingRefs(storage, made[1:])  # side moves three times, then stays on made[3]
    before = keys(storage, ["snapshots/"])
    summary = ic._sync.run(garbage_collect(moving, datetime.now(UTC), skew_margin=timedelta(0)))
    assert moving.moves == 3
    # The walk met made[1] and marked it; made[2] was left before any walk read it; made[3]
    # was where side stayed. Unreachable at the end and never marked: made[0] and made[2].
    gone = before - keys(storage, ["snapshots/"])
    assert gone == {f"snapshots/{made[0]}", f"snapshots/{made[2]}"}
    assert summary.snapshots_deleted == 2
    assert repo.lookup_branch("side") == made[3]
    assert repo.verify().ok
    assert list(read_chunks(repo, {"branch": "side"}, "a", 31)[30:]) == [3.0]


def test_refs_that_never_stop_moving_stop_gc_before_it_deletes(storage: ic.Storage) -> None:
    repo, made = _side_snapshots(storage, 24)  # more targets than gc makes attempts
    moving = MovingRefs(storage, made)
    before = keys(storage)
    with pytest.raises(ic.RefsKeptMovingError) as info:
        ic._sync.run(garbage_collect(moving, datetime.now(UTC)))
    assert info.value.attempts == 10
    assert moving.deleted == []
    assert keys(storage) == before
    assert repo.verify().ok


def test_an_expiration_the_last_run_saw_does_not_make_the_next_run_full(
    storage: ic.Storage,
) -> None:
    repo = _recorded(storage)
    released = repo.expire_snapshots(
        datetime.now(UTC), delete_expired_branches=True, delete_expired_tags=True
    )
    assert released
    first = gc_now(storage)
    assert first.full and first.snapshots_deleted == len(released)
    write_chunks(repo, "main", "a", 12, 2, 4.0)
    second = gc_now(storage)
    assert not second.full, "the only expiration record was marked under by the last run"
    assert second.snapshots_read == 1  # the new commit only
    assert repo.verify().ok
    # A later expiration (even one releasing nothing new) is a record the last run did not see.
    write_chunks(repo, "main", "a", 14, 2, 5.0)
    again = repo.expire_snapshots(datetime.now(UTC))
    assert again.record_id is not None
    assert gc_now(storage).full


def test_a_week_after_the_last_full_run_the_next_run_is_full(
    storage: ic.Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _recorded(storage)
    write_chunks(repo, "main", "a", 12, 2, 4.0)
    assert not gc_now(storage).full
    # The clock cannot be moved a week; the period can be shortened to nothing.
    monkeypatch.setattr("icechunk_lib.ops.gc.FULL_EVERY", timedelta(0))
    write_chunks(repo, "main", "a", 14, 2, 5.0)
    assert gc_now(storage).full
