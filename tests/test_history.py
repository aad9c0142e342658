"""Revisions, reflogs and repository discovery."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.format.refs import REFLOG_INLINE


def _commit(repo: ic.Repository, branch: str, i: int) -> str:
    session = repo.writable_session(branch)
    zarr.open_group(session.store, mode="a").attrs["i"] = i
    return session.commit(f"commit {i}")


def test_resolve_names_ids_prefixes_and_parents(repo: ic.Repository) -> None:
    ids = [_commit(repo, "main", i) for i in range(3)]
    repo.create_tag("v1", ids[0])
    assert repo.resolve("main") == ids[2]
    assert repo.resolve("v1") == ids[0]
    assert repo.resolve(ids[1]) == ids[1]
    assert repo.resolve(ids[1].lower()) == ids[1]
    assert repo.resolve(ids[1][:8]) == ids[1]
    assert repo.resolve("main~") == ids[1]
    assert repo.resolve("main~2") == ids[0]
    assert repo.resolve("main~1~1") == ids[0]
    assert repo.resolve(f"{ids[2][:10]}~1") == ids[1]
    with pytest.raises(ic.SnapshotNotFoundError, match="ancestor"):
        repo.resolve("main~10")
    with pytest.raises(ic.RevisionNotFoundError, match="'nothing'"):
        repo.resolve("nothing")
    with pytest.raises(ic.RevisionNotFoundError):
        repo.resolve("a/b")  # not a valid name: simply matches nothing
    with pytest.raises(ic.RevisionNotFoundError):
        repo.resolve(ids[0][:3])  # prefixes need at least 4 characters


def test_ambiguity_lists_candidates(repo: ic.Repository) -> None:
    first = _commit(repo, "main", 1)
    repo.create_branch("same", first)
    repo.create_tag("same", first)
    with pytest.raises(ic.AmbiguousRefError) as info:
        repo.resolve("same")
    assert info.value.candidates == ["branch same", "tag same"]
    assert isinstance(info.value, ValueError)


def test_ambiguous_id_prefix(storage: ic.Storage) -> None:
    from icechunk_lib._sync import run
    from icechunk_lib.format.snapshot import Snapshot, encode_snapshot

    repo = ic.Repository.create(storage)
    parent = repo.lookup_branch("main")
    twins = ["ABCDE" + "0" * 15, "ABCDF" + "0" * 15]
    for sid in twins:  # two snapshots whose ids share the prefix ABCD
        snap = Snapshot(id=sid, parent_id=parent, written_at=1, message=sid, metadata={})
        run(storage.put_if_absent(f"snapshots/{sid}", encode_snapshot(snap)))
    with pytest.raises(ic.AmbiguousRefError) as info:
        repo.resolve("abcd")
    assert info.value.candidates == [f"snapshot {sid}" for sid in twins]
    assert repo.resolve("ABCDF") == twins[1]


def test_resolve_far_parents_uses_ancestry_pages(repo: ic.Repository) -> None:
    ids = [_commit(repo, "main", i) for i in range(230)]
    assert repo.resolve("main~229") == ids[0]
    assert repo.resolve("main~150") == ids[79]
    root = list(repo.ancestry(branch="main"))[-1].id
    assert repo.resolve("main~230") == root
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.resolve("main~231")


def test_reflog_records_every_move(repo: ic.Repository) -> None:
    initial = repo.lookup_branch("main")
    ids = [_commit(repo, "main", i) for i in range(REFLOG_INLINE + 10)]
    repo.reset_branch("main", ids[3])
    log = repo.reflog("main")
    assert len(log) == len(ids) + 2
    assert log[0].action == "reset" and log[0].snapshot_id == ids[3]
    assert log[0].previous_id == ids[-1]
    assert [e.snapshot_id for e in log[1:-1]] == ids[::-1]
    assert [e.message for e in log[1:4]] == [f"commit {i}" for i in (41, 40, 39)]
    assert log[-1].action == "create" and log[-1].snapshot_id == initial
    assert all(a.at >= b.at for a, b in itertools.pairwise(log))
    repo.create_branch("dev", ids[0])
    assert [(e.action, e.snapshot_id) for e in repo.reflog("dev")] == [("create", ids[0])]
    with pytest.raises(ic.BranchNotFoundError):
        repo.reflog("nope")


def test_find_repository_walks_up(tmp_path: Path) -> None:
    root = tmp_path / "data" / "repo"
    ic.Repository.create(ic.local_filesystem_storage(root))
    inner = root / "snapshots"
    assert ic.find_repository(root) == root
    assert ic.find_repository(inner) == root
    assert ic.find_repository(tmp_path) is None


def test_config_values_by_key() -> None:
    config = ic.RepositoryConfig()
    assert config.to_dict()["compression"]["level"] == 3
    assert config.with_value("compression.level", "9").compression.level == 9
    assert config.with_value("inline_chunk_threshold_bytes", "0").inline_chunk_threshold_bytes == 0
    with pytest.raises(ic.ConfigError, match="unknown config key 'nope'"):
        config.with_value("nope", "1")
    with pytest.raises(ic.ConfigError, match="takes an integer"):
        config.with_value("compression.level", "high")
    with pytest.raises(ic.ConfigError, match=r"1\.\.22"):
        config.with_value("compression.level", "40")
