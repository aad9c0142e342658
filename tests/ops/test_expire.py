"""``Repository.expire_snapshots``: Icechunk 1.1's rules, each proven on memory and local storage.

Times come from real commits: the cut-off is the write time of a chosen commit, so the
commits before it are older and it and those after are not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import zarr
from expire_helpers import SIZE, commit, new_repo, values, written_at

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.conflicts import ConflictType
from icechunk_lib.objects import EXPIRATIONS, TRANSACTIONS
from icechunk_lib.ops.reachable import SnapshotFound, TransactionLogFound, walk


def _keys(storage: ic.Storage) -> dict[str, bytes]:
    async def read() -> dict[str, bytes]:
        return {i.key: await storage.get(i.key) async for i in storage.list("")}

    return _sync.run(read())


def _record_keys(storage: ic.Storage) -> list[str]:
    return [k for k in _keys(storage) if k.startswith(EXPIRATIONS)]


def _history(repo: ic.Repository, **ref: str) -> list[str]:
    return [info.id for info in repo.ancestry(**ref)]


def _root(repo: ic.Repository) -> str:
    return _history(repo, branch="main")[-1]


def _linear(repo: ic.Repository, n: int) -> list[str]:
    """``n`` commits on main after the one creating ``a``; ids oldest first (with it)."""
    ids = [repo.lookup_branch("main")]
    ids += [commit(repo, "main", i, i + 1) for i in range(n)]
    return ids


def _contents(repo: ic.Repository, ids: list[str]) -> dict[str, list[int]]:
    return {sid: values(repo, sid) for sid in ids}


# --- the rules ----------------------------------------------------------------------------------


def test_old_history_of_main_is_released_root_and_tip_kept(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    root = _root(repo)
    ids = _linear(repo, 4)
    tip = ids[-1]
    before = values(repo, tip)
    released = repo.expire_snapshots(written_at(repo, tip) + dt.timedelta(seconds=1))
    assert released == set(ids[:-1])
    assert isinstance(released, set)
    assert _history(repo, branch="main") == [tip, root]
    assert repo.lookup_snapshot(tip).parent_id == root
    assert values(repo, tip) == before
    assert repo.list_branches() == {"main"}
    assert repo.verify().ok


def test_main_is_never_deleted_even_with_the_flags(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 2)
    late = written_at(repo, ids[-1]) + dt.timedelta(seconds=1)
    released = repo.expire_snapshots(late, delete_expired_branches=True, delete_expired_tags=True)
    assert repo.lookup_branch("main") == ids[-1]
    assert ids[-1] not in released
    assert released.deleted_branches == ()


def test_snapshots_at_or_after_the_cutoff_are_kept(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    root = _root(repo)
    ids = _linear(repo, 5)
    cut = written_at(repo, ids[3])
    released = repo.expire_snapshots(cut)
    assert released == set(ids[:3])
    assert _history(repo, branch="main") == [ids[5], ids[4], ids[3], root]
    assert released.reparented == (ids[3],)


def test_branch_and_tag_tips_are_kept_without_the_flags(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    root = _root(repo)
    ids = _linear(repo, 2)
    repo.create_branch("side", ids[1])
    side = commit(repo, "side", 8, 80)
    repo.create_tag("v1", ids[2])
    tip = commit(repo, "main", 3, 4)
    cut = written_at(repo, tip)
    released = repo.expire_snapshots(cut)
    assert released == {ids[0], ids[1]}
    assert repo.lookup_branch("side") == side
    assert repo.lookup_tag("v1") == ids[2]
    assert _history(repo, branch="side") == [side, root]
    assert _history(repo, tag="v1") == [ids[2], root]
    # main's tip keeps v1's snapshot, its kept parent, as parent
    assert _history(repo, branch="main") == [tip, ids[2], root]
    assert repo.verify().ok


def test_delete_expired_branches_deletes_branches_whose_tip_is_released(
    storage: ic.Storage,
) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 1)
    repo.create_branch("old", ids[1])
    old_tip = commit(repo, "old", 9, 90)
    repo.create_tag("t", old_tip)
    repo.create_branch("fresh", ids[1])
    tip = commit(repo, "main", 2, 3)
    fresh_tip = commit(repo, "fresh", 10, 100)
    released = repo.expire_snapshots(written_at(repo, tip), delete_expired_branches=True)
    # the tag still holds old's tip, so the branch is not expired: a ref that stays keeps it
    assert repo.list_branches() == {"main", "old", "fresh"}
    assert old_tip not in released
    repo.delete_tag("t")
    released = repo.expire_snapshots(written_at(repo, tip), delete_expired_branches=True)
    assert released.deleted_branches == ("old",)
    assert repo.list_branches() == {"main", "fresh"}
    assert old_tip in released
    assert values(repo, fresh_tip)[10] == 100
    assert repo.verify().ok


def test_delete_expired_tags_deletes_tags_whose_tip_is_released(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 2)
    repo.create_tag("old", ids[1])
    repo.create_tag("held", ids[2])
    repo.create_branch("b", ids[2])  # a branch that stays keeps the snapshot of tag held
    tip = commit(repo, "main", 5, 6)
    released = repo.expire_snapshots(written_at(repo, tip), delete_expired_tags=True)
    assert released.deleted_tags == ("old",)
    assert repo.list_tags() == {"held"}
    assert ids[1] in released and ids[2] not in released
    assert released.deleted_branches == ()
    assert repo.verify().ok


def test_a_snapshot_only_a_deleted_branch_reached_is_released_even_if_new(
    storage: ic.Storage,
) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 1)
    repo.create_branch("gone", ids[1])
    gone_tip = commit(repo, "gone", 4, 4)
    cut = written_at(repo, gone_tip) + dt.timedelta(seconds=1)
    released = repo.expire_snapshots(cut, delete_expired_branches=True)
    assert gone_tip in released
    assert released.deleted_branches == ("gone",)


def test_expiring_a_repository_with_only_the_root(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    root = repo.lookup_branch("main")
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    released = repo.expire_snapshots(now, delete_expired_branches=True, delete_expired_tags=True)
    assert released == set()
    assert released.record_id is None
    assert _record_keys(storage) == []
    assert _history(repo, branch="main") == [root]


def test_running_twice_releases_nothing_more_and_writes_nothing(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 3)
    cut = written_at(repo, ids[-1])
    assert repo.expire_snapshots(cut) == set(ids[:-1])
    before = _keys(storage)
    again = repo.expire_snapshots(cut)
    assert again == set()
    assert _keys(storage) == before


def test_nothing_is_deleted_and_released_snapshots_stay_readable(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 3)
    contents = _contents(repo, ids)
    before = set(_keys(storage))
    released = repo.expire_snapshots(written_at(repo, ids[-1]))
    after = set(_keys(storage))
    assert before <= after
    assert {k for k in after - before if not k.startswith(EXPIRATIONS)} == set()
    for sid in released:
        assert values(repo, sid) == contents[sid]


def test_naive_cutoff_is_refused(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    with pytest.raises(ValueError, match="timezone-aware"):
        repo.expire_snapshots(dt.datetime(2020, 1, 1))


def test_dry_run_reports_what_the_run_does_and_changes_nothing(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 2)
    repo.create_tag("t", ids[1])
    repo.create_branch("b", ids[0])
    tip = commit(repo, "main", 9, 9)
    cut = written_at(repo, tip)
    before = _keys(storage)
    dry = repo.expire_snapshots(
        cut, delete_expired_branches=True, delete_expired_tags=True, dry_run=True
    )
    assert _keys(storage) == before
    assert dry.dry_run and dry.record_id is None
    real = repo.expire_snapshots(cut, delete_expired_branches=True, delete_expired_tags=True)
    assert set(dry) == set(real) == set(ids)
    assert (dry.deleted_branches, dry.deleted_tags) == (("b",), ("t",))
    assert (real.deleted_branches, real.deleted_tags) == (("b",), ("t",))
    assert dry.reparented == real.reparented == (tip,)
    assert real.record_id is not None


# --- reading after expiry -----------------------------------------------------------------------


def _forked_history(repo: ic.Repository) -> tuple[list[str], dict[str, str]]:
    """main, a branch and tags over a history with old and new commits; returns all ids
    (oldest first) and the refs (label -> tip)."""
    ids = _linear(repo, 3)
    repo.create_tag("old-tag", ids[2])
    repo.create_branch("feature", ids[1])
    ids.append(commit(repo, "feature", 12, 120))
    ids.append(commit(repo, "main", 13, 130))
    ids.append(commit(repo, "feature", 14, 140))
    ids.append(commit(repo, "main", 15, 150))
    repo.create_tag("new-tag", ids[-1])
    refs = {
        "main": repo.lookup_branch("main"),
        "feature": repo.lookup_branch("feature"),
        "old-tag": ids[2],
        "new-tag": ids[-1],
    }
    return ids, refs


def test_every_kept_snapshot_reads_completely_and_verify_is_clean(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids, refs = _forked_history(repo)
    contents = _contents(repo, ids)
    cut = written_at(repo, ids[5])  # after feature's first commit and main's 13
    released = repo.expire_snapshots(cut)
    kept = set(ids) - released
    assert set(refs.values()) <= kept
    for sid in kept:
        assert values(repo, sid) == contents[sid]
    for label in ("main", "feature"):
        assert values(repo, repo.lookup_branch(label)) == contents[refs[label]]
    for label in ("old-tag", "new-tag"):
        assert values(repo, repo.lookup_tag(label)) == contents[refs[label]]
    report = repo.verify()
    assert report.ok, report.problems
    assert report.expiration_records == 1


def test_ancestry_of_kept_tips_goes_through_kept_snapshots_to_the_root(
    storage: ic.Storage,
) -> None:
    repo = new_repo(storage)
    root = _root(repo)
    ids, refs = _forked_history(repo)
    before = {label: _history(repo, snapshot_id=sid) for label, sid in refs.items()}
    released = repo.expire_snapshots(written_at(repo, ids[5]))
    for label, sid in refs.items():
        after = _history(repo, snapshot_id=sid)
        assert after[0] == sid and after[-1] == root
        assert not set(after) & released
        # a subsequence of the old history: nothing invented, order kept
        it = iter(before[label])
        assert all(s in it for s in after), label
        infos = list(repo.ancestry(snapshot_id=sid))
        assert [i.parent_id for i in infos] == [*after[1:], None]


def test_revisions_and_as_of_step_over_the_gap(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    root = _root(repo)
    ids = _linear(repo, 4)
    repo.expire_snapshots(written_at(repo, ids[-2]))
    assert repo.resolve("main~1") == ids[-2]
    assert repo.resolve("main~2") == root
    with pytest.raises(ic.SnapshotNotFoundError, match="only 2 ancestor"):
        repo.resolve("main~3")
    # as of a time inside the gap: the newest kept snapshot written by then is the root
    session = repo.readonly_session("main", as_of=written_at(repo, ids[2]))
    assert session.snapshot_id == root


def test_a_long_history_is_cut_where_the_summaries_cross_the_gap(storage: ic.Storage) -> None:
    """Snapshots embed ~100 ancestor summaries: past an override they must not be used."""
    repo = new_repo(storage)
    root = _root(repo)
    ids = _linear(repo, 3)
    cut_id = commit(repo, "main", 4, 5)
    later = [commit(repo, "main", 5 + i % 8, 100 + i) for i in range(4)]
    released = repo.expire_snapshots(written_at(repo, cut_id))
    assert released == set(ids)
    assert _history(repo, branch="main") == [*reversed(later), cut_id, root]


def test_diff_across_the_gap_equals_the_diff_before(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    root = _root(repo)
    ids, refs = _forked_history(repo)
    pairs = [
        (root, refs["main"]),
        (refs["old-tag"], refs["main"]),
        (root, refs["feature"]),
        (refs["feature"], refs["main"]),
    ]
    before = [repr(repo.diff(from_snapshot_id=a, to_snapshot_id=b)) for a, b in pairs]
    repo.expire_snapshots(written_at(repo, ids[5]))
    after = [repr(repo.diff(from_snapshot_id=a, to_snapshot_id=b)) for a, b in pairs]
    assert after == before
    assert "a: " in before[0]


# --- rebasing across the gap --------------------------------------------------------------------


def _stale_session_and_conflict(repo: ic.Repository) -> tuple[ic.Session, str, str]:
    """A session opened on main, then commits on main, one writing the chunk the session
    writes (a[7]); returns the session, that commit and the tip. With the tip as cut-off,
    the session's base and the conflicting commit are released."""
    _linear(repo, 2)
    # its own repository object: nothing of the later history is in its caches
    stale = ic.Repository.open(repo.storage).writable_session("main")
    zarr.open_array(stale.store, path="a")[7] = -1
    commit(repo, "main", 6, 60)
    conflicting = commit(repo, "main", 7, 70)
    commit(repo, "main", 8, 80)
    tip = commit(repo, "main", 9, 90)
    return stale, conflicting, tip


def _conflicts(stale: ic.Session) -> list[tuple[ConflictType, str]]:
    with pytest.raises(ic.RebaseFailedError) as info:
        stale.commit("stale", rebase_with=ic.ConflictDetector())
    return [(c.conflict_type, c.path) for c in info.value.conflicts]


@pytest.mark.parametrize("expire", [False, True], ids=["kept", "expired"])
def test_rebase_across_the_gap_detects_the_same_conflicts(
    storage: ic.Storage, expire: bool
) -> None:
    repo = new_repo(storage)
    stale, conflicting, tip = _stale_session_and_conflict(repo)
    if expire:
        released = repo.expire_snapshots(written_at(repo, tip))
        assert {stale.snapshot_id, conflicting} <= released
    assert _conflicts(stale) == [(ConflictType.ChunkDoubleUpdate, "/a")]


def test_rebase_across_the_gap_keeps_every_landed_change(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    stale, _, tip = _stale_session_and_conflict(repo)
    repo.expire_snapshots(written_at(repo, tip))
    new = stale.commit("stale, ours win", rebase_with=ic.BasicConflictSolver())
    got = values(repo, new)
    assert got[6:10] == [60, -1, 80, 90]
    assert got[:2] == [1, 2]
    assert _history(repo, branch="main")[:2] == [new, tip]


def test_rebase_across_the_gap_fails_loudly_when_a_skipped_log_is_missing(
    storage: ic.Storage,
) -> None:
    repo = new_repo(storage)
    stale, conflicting, tip = _stale_session_and_conflict(repo)
    repo.expire_snapshots(written_at(repo, tip))
    _sync.run(storage.delete(TRANSACTIONS + conflicting))
    with pytest.raises(ic.IntegrityError, match=conflicting):
        stale.commit("stale", rebase_with=ic.ConflictDetector())


def test_a_second_expiration_composes_the_skipped_logs(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    stale, _, tip = _stale_session_and_conflict(repo)
    first = repo.expire_snapshots(written_at(repo, tip))
    more = [commit(repo, "main", 10 + i, 100 + i) for i in range(2)]
    second = repo.expire_snapshots(written_at(repo, more[-1]))
    assert second == {tip, more[0]}
    assert stale.snapshot_id in first
    assert _conflicts(stale) == [(ConflictType.ChunkDoubleUpdate, "/a")]
    # and the walk still reaches every log the gap needs
    logs = {
        f.snapshot_id
        for f in _sync.run(_collect(storage))
        if isinstance(f, TransactionLogFound) and f.error is None
    }
    assert first | second <= logs


async def _collect(storage: ic.Storage) -> list[object]:
    return [found async for found in walk(storage)]


# --- what gc and verify see ---------------------------------------------------------------------


def test_the_walk_does_not_reach_released_snapshots_but_keeps_their_logs(
    storage: ic.Storage,
) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 3)
    released = repo.expire_snapshots(written_at(repo, ids[-1]))
    found = _sync.run(_collect(storage))
    snapshots = {f.snapshot_id for f in found if isinstance(f, SnapshotFound)}
    logs = {f.snapshot_id for f in found if isinstance(f, TransactionLogFound)}
    assert not snapshots & released
    assert snapshots == {ids[-1], _root(repo)}
    assert released <= logs


def test_verify_names_a_damaged_expiration_record(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 2)
    released = repo.expire_snapshots(written_at(repo, ids[-1]))
    (key,) = _record_keys(storage)
    data = bytearray(_sync.run(storage.get(key)))
    data[-3] ^= 0xFF

    async def damage() -> None:
        await storage.delete(key)
        await storage.put(key, bytes(data))

    _sync.run(damage())
    report = ic.Repository.open(storage).verify()
    assert [(p.kind, p.key) for p in report.problems] == [("expiration_record", key)]
    assert "checksum" in report.problems[0].message
    # history refuses to guess: the damage is reported, not silently ignored
    with pytest.raises(ic.IntegrityError, match=key):
        list(ic.Repository.open(storage).ancestry(branch="main"))
    assert released


def test_history_sees_records_written_by_another_process_object(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, 2)
    reader = ic.Repository.open(storage)
    assert len(_history(reader, branch="main")) == 4
    repo.expire_snapshots(written_at(repo, ids[-1]))
    assert len(_history(reader, branch="main")) == 2


def test_values_after_expiry_cover_the_whole_array(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    ids = _linear(repo, SIZE)
    want = values(repo, ids[-1])
    repo.expire_snapshots(written_at(repo, ids[-1]))
    assert values(repo, repo.lookup_branch("main")) == want == list(range(1, SIZE + 1))


def _delete_snapshots(storage: ic.Storage, ids: set[str]) -> None:
    """What gc does to released snapshots (their logs stay: the records still name them)."""
    _sync.run(storage.delete_many(f"snapshots/{sid}" for sid in ids))


def test_everything_kept_works_once_released_snapshots_are_gone(storage: ic.Storage) -> None:
    repo = new_repo(storage)
    stale, conflicting, tip = _stale_session_and_conflict(repo)
    root = _root(repo)
    want = values(repo, tip)
    diff_before = repr(repo.diff(from_snapshot_id=root, to_snapshot_id=tip))
    released = repo.expire_snapshots(written_at(repo, tip))
    assert {stale.snapshot_id, conflicting} <= released
    _delete_snapshots(storage, set(released))
    fresh = ic.Repository.open(storage)
    assert _history(fresh, branch="main") == [tip, root]
    assert fresh.resolve("main~1") == root
    assert values(fresh, tip) == want
    assert repr(fresh.diff(from_snapshot_id=root, to_snapshot_id=tip)) == diff_before
    report = fresh.verify()
    assert report.ok, report.problems
    # the stale session's base is gone, yet the rebase finds the conflict through the logs
    assert _conflicts(stale) == [(ConflictType.ChunkDoubleUpdate, "/a")]
    new = stale.commit("stale, ours win", rebase_with=ic.BasicConflictSolver())
    assert values(fresh, new)[6:10] == [60, -1, 80, 90]


def test_without_records_a_walk_costs_one_listing_and_a_read_none(storage: ic.Storage) -> None:
    from faulty_storage import FaultyStorage

    base = new_repo(storage)
    ids = _linear(base, 3)
    counting = FaultyStorage(storage)
    repo = ic.Repository.open(counting)

    def listings(work: Callable[[], object]) -> int:
        counting.reset()
        work()
        return sum(1 for c in counting.calls if c.method == "list" and c.key == EXPIRATIONS)

    assert listings(lambda: list(repo.ancestry(branch="main"))) == 1
    assert listings(lambda: repo.resolve("main~2")) == 1
    assert listings(lambda: values(repo, ids[1])) == 0
    repo.expire_snapshots(written_at(repo, ids[-1]))
    # with records: still one listing per walk, and the records are read once per process
    counting.reset()
    assert len(list(repo.ancestry(branch="main"))) == 2
    assert len(list(repo.ancestry(branch="main"))) == 2
    reads = [c for c in counting.calls if c.method == "get" and c.key.startswith(EXPIRATIONS)]
    assert reads == []


def test_a_history_walk_steps_over_snapshots_collected_while_it_ran() -> None:
    """A reader half way through a long history when an expiration and a gc remove the
    snapshot it was about to read looks at the records again and goes on from there."""
    memory_storage = ic.in_memory_storage()  # one backend: this history is long to write
    repo = new_repo(memory_storage)
    ids = [commit(repo, "main", i % SIZE, i + 1) for i in range(104)]
    root = _root(repo)
    reader = ic.Repository.open(memory_storage)
    walk = reader.ancestry(branch="main")
    first_page = [next(walk) for _ in range(101)]  # the tip and the 100 it summarises
    last = first_page[-1]
    assert last.id in ids and last.parent_id in ids
    released = repo.expire_snapshots(last.written_at)
    assert last.parent_id in released
    _delete_snapshots(memory_storage, set(released))
    assert [info.id for info in walk] == [root]


def test_a_walk_that_meets_a_collected_snapshot_is_retried_with_fresh_records(
    storage: ic.Storage,
) -> None:
    from icechunk_lib.lineage import Lineage, with_lineage

    repo = new_repo(storage)
    ids = _linear(repo, 3)
    root = _root(repo)
    reader = ic.Repository.open(storage)
    objects = reader._objects
    cut = written_at(repo, ids[-1])
    seen: list[frozenset[str]] = []

    async def parents_of_tip(lineage: Lineage) -> list[str]:
        seen.append(lineage.record_ids)
        if len(seen) == 1:  # meanwhile, an expiration and a gc
            released = await repo.expire_snapshots_async(cut)
            await storage.delete_many(f"snapshots/{sid}" for sid in released)
        out, cursor = [], ids[-1]
        while cursor is not None:
            header = await objects.snapshot_header(cursor)
            out.append(header.id)
            cursor = lineage.parent(header.id, header.parent_id)
        return out

    assert _sync.run(with_lineage(objects, parents_of_tip)) == [ids[-1], root]
    assert seen[0] == frozenset() and len(seen[1]) == 1
