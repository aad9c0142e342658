"""Repository.garbage_collect on memory and local storage: what goes, what stays, and when.

Objects are aged by changing the time the storage reports for them (``gc_support.age``),
which is all gc looks at to judge age.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import zarr
from gc_support import CountingStorage, age, keys, read_chunks, write_chunks
from hypothesis import given
from hypothesis import strategies as st

import icechunk_lib as ic
from icechunk_lib.format.ids import decode_id, encode_id, new_chunk_id, new_object_id
from icechunk_lib.ops.gc import decode_printed
from icechunk_lib.ops.gc_marks import IdSet
from icechunk_lib.storage import StorageCapabilities

WEEK = timedelta(days=7)
OLD = timedelta(days=10)


def week_ago() -> datetime:
    return datetime.now(UTC) - WEEK


def counts(summary: ic.GCSummary) -> tuple[int, ...]:
    return (
        summary.snapshots_deleted,
        summary.transaction_logs_deleted,
        summary.manifests_deleted,
        summary.chunks_deleted,
        summary.bytes_deleted,
    )


def test_gc_summary_has_icechunks_fields() -> None:
    summary = ic.GCSummary()
    for name in (
        "bytes_deleted",
        "chunks_deleted",
        "manifests_deleted",
        "snapshots_deleted",
        "attributes_deleted",
        "transaction_logs_deleted",
    ):
        assert getattr(summary, name) == 0


def _repo_with_released_branch(storage: ic.Storage) -> tuple[ic.Repository, set[str], str]:
    """main with 2 commits; branch dev with 1 commit of 5 chunks, then deleted. Returns the
    repository, the keys dev alone held, and dev's snapshot id."""
    repo = ic.Repository.create(storage)
    write_chunks(repo, "main", "a", 0, 10, 1.0)
    write_chunks(repo, "main", "a", 0, 3, 2.0)
    before = keys(storage)
    repo.create_branch("dev", repo.lookup_branch("main"))
    dev = write_chunks(repo, "dev", "a", 20, 5, 3.0)
    only_dev = keys(storage) - before
    repo.delete_branch("dev")
    return repo, only_dev, dev


def test_a_deleted_branch_is_collected_once_older_than_the_cut_off(storage: ic.Storage) -> None:
    repo, only_dev, dev = _repo_with_released_branch(storage)
    assert {f"snapshots/{dev}", f"transactions/{dev}"} <= only_dev
    assert sum(k.startswith("chunks/") for k in only_dev) == 5

    # Young: unreachable but not yet older than the cut-off, so nothing goes.
    age(storage, timedelta(days=6))
    assert counts(repo.garbage_collect(week_ago())) == (0, 0, 0, 0, 0)
    assert only_dev <= keys(storage)

    age(storage, timedelta(days=4))
    before = keys(storage)
    summary = repo.garbage_collect(week_ago())
    gone = before - keys(storage)
    assert gone == only_dev
    assert (summary.snapshots_deleted, summary.transaction_logs_deleted) == (1, 1)
    assert summary.manifests_deleted == sum(k.startswith("manifests/") for k in only_dev) >= 1
    assert summary.chunks_deleted == 5
    assert summary.bytes_deleted > 5 * 800
    assert repo.verify().ok
    assert list(read_chunks(repo, {"branch": "main"}, "a", 10)) == [2.0] * 3 + [1.0] * 7
    # A second run right after finds nothing more.
    assert counts(repo.garbage_collect(week_ago())) == (0, 0, 0, 0, 0)


def test_a_deleted_tag_and_a_reset_branch_release_their_objects(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    base = write_chunks(repo, "main", "a", 0, 4, 1.0)
    tagged = write_chunks(repo, "main", "a", 4, 2, 2.0)
    repo.create_tag("v1", tagged)
    repo.reset_branch("main", base)
    age(storage, OLD)
    # The tag still holds the snapshot main left: nothing is unreachable yet.
    assert counts(repo.garbage_collect(week_ago())) == (0, 0, 0, 0, 0)
    assert list(read_chunks(repo, {"tag": "v1"}, "a", 6)) == [1.0] * 4 + [2.0] * 2

    repo.delete_tag("v1")
    summary = repo.garbage_collect(week_ago())
    assert summary.full  # a ref the last run marked from was released
    assert (summary.snapshots_deleted, summary.chunks_deleted) == (1, 2)
    assert not any(k.endswith(tagged) for k in keys(storage))
    assert repo.verify().ok
    assert list(read_chunks(repo, {"branch": "main"}, "a", 4)) == [1.0] * 4


def test_dry_run_deletes_nothing_and_reports_what_the_real_run_deletes(
    storage: ic.Storage,
) -> None:
    repo, only_dev, _ = _repo_with_released_branch(storage)
    age(storage, OLD)
    before = keys(storage)
    dry = repo.garbage_collect(week_ago(), dry_run=True)
    assert keys(storage) == before
    assert dry.dry_run and counts(dry) != (0, 0, 0, 0, 0)
    real = repo.garbage_collect(week_ago())
    assert not real.dry_run
    assert counts(real) == counts(dry)
    assert before - keys(storage) == only_dev
    assert counts(repo.garbage_collect(week_ago(), dry_run=True)) == (0, 0, 0, 0, 0)


def test_a_dry_run_writes_no_record(storage: ic.Storage) -> None:
    repo, _, _ = _repo_with_released_branch(storage)
    repo.garbage_collect(week_ago(), dry_run=True)
    assert keys(storage, ["gc/"]) == set()
    repo.garbage_collect(week_ago())
    assert len(keys(storage, ["gc/"])) == 1


def test_the_cut_off_is_what_protects_a_session_still_writing(storage: ic.Storage) -> None:
    """The right cut-off is older than the oldest write of any session still open.

    A session's chunks are named by nothing until it commits, so only their age protects
    them: with a cut-off before the session's first write they survive; with one after
    it (a grace period shorter than the session) they would be deleted.
    """
    repo = ic.Repository.create(storage)
    write_chunks(repo, "main", "a", 0, 2, 1.0)
    age(storage, OLD)
    session_started = datetime.now(UTC)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[: 3 * 100] = 7.0
    pending = keys(storage, ["chunks/"])
    # gc with a cut-off before the session began: its 3 chunks survive and the commit lands.
    summary = repo.garbage_collect(session_started - timedelta(seconds=1))
    assert summary.chunks_deleted == 0
    assert keys(storage, ["chunks/"]) == pending
    session.commit("late")
    assert list(read_chunks(repo, {"branch": "main"}, "a", 3)) == [7.0] * 3
    assert repo.verify().ok

    # The same situation with the session's chunks older than the cut-off: gc takes them,
    # which is why the grace period must be longer than any session stays open.
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:100] = 8.0
    fresh = keys(storage, ["chunks/"]) - pending
    assert len(fresh) == 1
    age(storage, OLD, only=fresh)
    assert repo.garbage_collect(week_ago()).chunks_deleted == 1


def test_a_cut_off_in_the_future_spares_what_is_written_during_the_run(
    storage: ic.Storage,
) -> None:
    repo = ic.Repository.create(storage)
    write_chunks(repo, "main", "a", 0, 2, 1.0)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    summary = repo.garbage_collect(tomorrow)
    assert counts(summary) == (0, 0, 0, 0, 0)
    assert repo.verify().ok


def test_a_naive_cut_off_is_local_time(storage: ic.Storage) -> None:
    repo, only_dev, _ = _repo_with_released_branch(storage)
    age(storage, OLD)
    naive = datetime.now() - WEEK  # local time, no zone: the point of the test
    assert repo.garbage_collect(naive).snapshots_deleted == 1
    assert not only_dev & keys(storage)


def test_damage_stops_gc_before_it_deletes_anything(storage: ic.Storage) -> None:
    repo, only_dev, _ = _repo_with_released_branch(storage)
    age(storage, OLD)
    manifest = next(k for k in keys(storage, ["manifests/"]) if k not in only_dev)
    ic._sync.run(storage.delete(manifest))
    before = keys(storage)
    with pytest.raises(ic.IntegrityError, match="manifests/"):
        repo.garbage_collect(week_ago())
    assert keys(storage) == before


def test_limits_must_be_positive(repo: ic.Repository) -> None:
    with pytest.raises(ValueError, match="max_concurrent_manifest_fetches"):
        repo.garbage_collect(week_ago(), max_concurrent_manifest_fetches=0)


def test_no_repository_is_an_error(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    for key in keys(storage, ["", "config"]):
        ic._sync.run(storage.delete(key))
    with pytest.raises(ic.RepositoryNotFoundError):
        repo.garbage_collect(week_ago())


def test_extra_keys_kept_as_chunks_survive(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="a")
    big = os.urandom(4096)
    ic._sync.run(session.store.set("notes/blob", _buffer(big)))
    session.commit("extra")
    age(storage, OLD)
    assert repo.garbage_collect(week_ago()).chunks_deleted == 0
    assert repo.verify().ok
    got = ic._sync.run(repo.readonly_session(branch="main").store.get("notes/blob", _prototype()))
    assert got is not None and got.to_bytes() == big


def _prototype() -> object:
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype()


def _buffer(data: bytes) -> object:
    from zarr.core.buffer import cpu

    return cpu.Buffer.from_bytes(data)


def test_progress_hears_every_phase(storage: ic.Storage) -> None:
    repo, _, _ = _repo_with_released_branch(storage)
    age(storage, OLD)
    heard: dict[str, int] = {}

    def progress(phase: str, done: int, total: int) -> None:
        assert done >= heard.get(phase, 0)
        heard[phase] = done

    summary = repo.garbage_collect(week_ago(), progress=progress)
    assert set(heard) == {"mark", "list", "delete"}
    assert heard["delete"] == sum(counts(summary)[:4])
    assert heard["list"] == summary.objects_listed


async def test_the_async_twin(storage: ic.Storage) -> None:
    repo = await ic.Repository.create_async(storage)
    summary = await repo.garbage_collect_async(week_ago(), dry_run=True)
    assert summary.dry_run and counts(summary) == (0, 0, 0, 0, 0)


# --- the id columns ---------------------------------------------------------------------------


def test_printed_ids_decode_all_at_once_as_one_at_a_time() -> None:
    ids = [encode_id(new_chunk_id()) for _ in range(500)] + [
        new_object_id(),
        "0" * 20,
        "Z" * 19 + "1",
    ]
    raw, canonical = decode_printed(ids)
    assert [bytes(r).ljust(12, b"\0") for r in raw[:-1]] == [decode_id(i) for i in ids[:-1]]
    assert canonical[:-1].all()
    assert not canonical[-1]  # padding bits set: not a spelling ick writes


def test_id_set_finds_exactly_its_members() -> None:
    members = [new_chunk_id() for _ in range(3000)]
    others = [new_chunk_id() for _ in range(300)]
    ids = IdSet()
    for start in range(0, 3000, 70):
        piece = np.frombuffer(b"".join(members[start : start + 70]), dtype="S12")
        ids.add(piece)
        ids.add(piece[:5])  # duplicates are fine
    probe = np.frombuffer(b"".join(members + others), dtype="S12")
    found = ids.contains(probe)
    assert found[:3000].all() and not found[3000:].any()
    assert len(ids) == 3000
    column = ids.column()
    assert list(column) == sorted(column)


@given(
    st.lists(st.tuples(st.integers(0, 3), st.binary(min_size=4, max_size=4)), max_size=60),
    st.lists(st.tuples(st.integers(0, 3), st.binary(min_size=4, max_size=4)), max_size=60),
    st.integers(1, 7),
)
def test_id_set_is_exact_when_ids_share_their_first_eight_bytes(
    members: list[tuple[int, bytes]], probes: list[tuple[int, bytes]], piece: int
) -> None:
    # Few distinct first halves, so runs of equal first 8 bytes are long: the lookup must
    # check the last 4 bytes along the whole run, whatever order the pieces came in.
    heads = [bytes([h]) * 8 for h in range(4)]
    wanted = [heads[h] + tail for h, tail in members]
    ids = IdSet()
    for start in range(0, len(wanted), piece):
        ids.add(np.array(wanted[start : start + piece], dtype="S12"))
    asked = [heads[h] + tail for h, tail in probes] + wanted
    found = ids.contains(np.array(asked, dtype="S12")) if asked else np.zeros(0, bool)
    assert found.tolist() == [a in set(wanted) for a in asked]


def test_a_storage_that_cannot_write_safely_allows_only_dry_runs(storage: ic.Storage) -> None:
    _, only_dev, _ = _repo_with_released_branch(storage)
    age(storage, OLD)
    unsafe = CountingStorage(storage)
    unsafe.capabilities = StorageCapabilities(create_if_absent=False, compare_and_swap=False)
    reader = ic.Repository.open(unsafe)
    assert reader.garbage_collect(week_ago(), dry_run=True).snapshots_deleted == 1
    with pytest.raises(ic.ReadOnlyStorageError):
        reader.garbage_collect(week_ago())
    assert unsafe.deleted == [] and only_dev <= keys(storage)


def test_temporary_files_of_killed_writes_go_once_old(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    write_chunks(repo, "main", "a", 0, 4, 1.0)
    # What a write killed between writing its temporary file and renaming it leaves.
    old = [root / "refs" / ".ick-tmp-0123456789abcdef", root / ".ick-tmp-0a"]
    young = root / "snapshots" / ".ick-tmp-fedcba9876543210"
    for path in [*old, young]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a ref")
    ten_days = (datetime.now(UTC) - OLD).timestamp()
    for path in old:
        os.utime(path, (ten_days, ten_days))
    before = keys(repo.storage)

    repo.garbage_collect(week_ago(), dry_run=True)
    assert all(p.exists() for p in [*old, young]), "a dry run deletes nothing"
    repo.garbage_collect(week_ago())
    assert not any(p.exists() for p in old)
    assert young.exists(), "a write may still be renaming it"
    assert keys(repo.storage) <= before and repo.verify().ok
    assert list(read_chunks(repo, {"branch": "main"}, "a", 4)) == [1.0] * 4
