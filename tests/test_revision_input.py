"""Odd snapshot ids, revisions and times get the error that names them, never a storage-key
error or a raw exception from deep inside."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

import icechunk_lib as ic


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t"])
def test_a_snapshot_id_with_trailing_whitespace_is_not_a_valid_id(
    repo: ic.Repository, suffix: str
) -> None:
    sid = repo.lookup_branch("main") + suffix
    calls: list[Callable[[], object]] = [
        lambda: repo.lookup_snapshot(sid),
        lambda: repo.readonly_session(snapshot_id=sid),
        lambda: repo.create_branch("new", sid),
        lambda: repo.create_tag("new", sid),
        lambda: repo.reset_branch("main", sid),
        lambda: list(repo.ancestry(snapshot_id=sid)),
        lambda: repo.diff(from_snapshot_id=sid, to_branch="main"),
    ]
    for call in calls:
        with pytest.raises(ic.SnapshotNotFoundError, match="not a valid snapshot id"):
            call()
    with pytest.raises(ic.RevisionNotFoundError):
        repo.resolve(sid)
    with pytest.raises(ic.RevisionNotFoundError):
        repo.resolve(sid[:8] + suffix)
    assert repo.list_branches() == {"main"} and repo.list_tags() == set()


@pytest.mark.parametrize("digits", [19, 4300, 5000])
def test_a_huge_parent_count_says_how_many_ancestors_there_are(
    repo: ic.Repository, digits: int
) -> None:
    with pytest.raises(ic.SnapshotNotFoundError, match="only 0 ancestor"):
        repo.resolve("main~" + "9" * digits)
    with pytest.raises(ic.SnapshotNotFoundError, match="only 0 ancestor"):
        repo.resolve("main" + "~1" * 3)


@pytest.mark.parametrize("when", ["2020-01-01", 1_600_000_000, dt.date(2020, 1, 1)])
def test_as_of_that_is_not_a_datetime_is_a_clear_error(repo: ic.Repository, when: object) -> None:
    with pytest.raises(ValueError, match="timezone-aware datetime"):
        repo.readonly_session("main", as_of=when)  # type: ignore[arg-type]


def test_a_stale_reset_says_nothing_was_reset(repo: ic.Repository) -> None:
    first = repo.lookup_branch("main")
    session = repo.writable_session("main")
    second = session.commit("empty", allow_empty=True)
    with pytest.raises(ic.ConflictError) as info:
        repo.reset_branch("main", first, from_snapshot_id=first)
    assert "rebase" not in str(info.value)
    assert "not reset" in str(info.value)
    assert (info.value.expected_parent, info.value.actual_parent) == (first, second)
    assert repo.lookup_branch("main") == second
