"""Revisions, reflogs and repository discovery."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import zarr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_names import valid_ref_names

import icechunk_lib as ic
from icechunk_cli import addressing
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


# --- every name that can be created can be addressed -------------------------------------------


@pytest.fixture(scope="module")
def two_commits() -> tuple[ic.Repository, str, str]:
    """A memory repository whose main has moved past its first snapshot."""
    repo = ic.Repository.create(ic.in_memory_storage())
    first = repo.lookup_branch("main")
    return repo, first, _commit(repo, "main", 1)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=valid_ref_names(),
    spell_prefix=st.one_of(st.none(), st.tuples(st.integers(4, 19), st.booleans())),
    as_tag=st.booleans(),
)
@example(name="beta", spell_prefix=None, as_tag=False)
@example(name="a~b", spell_prefix=None, as_tag=True)
@example(name="x", spell_prefix=(4, True), as_tag=False)
@example(name="x", spell_prefix=(19, False), as_tag=True)
def test_every_creatable_name_resolves_to_its_ref(
    two_commits: tuple[ic.Repository, str, str],
    name: str,
    spell_prefix: tuple[int, bool] | None,
    as_tag: bool,
) -> None:
    repo, first, second = two_commits
    if spell_prefix is not None:
        # A name spelling an id prefix of the *other* snapshot: the name must win.
        length, lower = spell_prefix
        name = first[:length].lower() if lower else first[:length]
    if as_tag:
        if name in repo.list_tags():
            return
        try:
            repo.create_tag(name, second)
        except ic.TagAlreadyExistsError:
            return  # deleted by an earlier example: tag names are never reused
    else:
        repo.create_branch(name, second)
    try:
        assert repo.resolve(name) == second
        assert addressing.resolve(repo, name) == second
        assert repo.resolve(name + "~") == repo.resolve(name + "~1") == first
    finally:
        if as_tag:
            repo.delete_tag(name)
        else:
            repo.delete_branch(name)


def _plant_ref(repo: ic.Repository, name: str, kind: str = "branch") -> None:
    """Write a ref named ``name`` as an older ick did, bypassing today's name rule."""
    import msgspec

    from icechunk_lib._sync import run
    from icechunk_lib.format import refs

    if kind == "branch":
        rec = refs.decode_branch(run(repo.storage.get("refs/branch/main/ref")), "main", path="")
        data = refs.encode_branch(msgspec.structs.replace(rec, name=name))
    else:
        tag = refs.decode_tag(run(repo.storage.get("refs/tag/v/ref")), "v", path="")
        data = refs.encode_tag(msgspec.structs.replace(tag, name=name))
    run(repo.storage.put(f"refs/{kind}/{name}/ref", data))


@pytest.mark.parametrize("name", ["feat~", "feat~2", "ABCDEFGHJKMNPQRSTVWX"])
def test_existing_refs_with_now_refused_names_stay_usable(repo: ic.Repository, name: str) -> None:
    first = repo.lookup_branch("main")
    second = _commit(repo, "main", 1)
    repo.create_tag("v", second)
    for kind in ("branch", "tag"):
        _plant_ref(repo, name, kind)
    assert name in repo.list_branches() and name in repo.list_tags()
    assert repo.lookup_branch(name) == repo.lookup_tag(name) == second
    # Through the revision syntax the name is found whole, and both refs match it.
    with pytest.raises(ic.AmbiguousRefError):
        repo.resolve(name)
    repo.delete_tag(name)
    assert repo.resolve(name) == second
    if "~" not in name:
        assert repo.resolve(name + "~1") == first
    repo.delete_branch(name)
    assert name not in repo.list_branches() and name not in repo.list_tags()


def test_an_old_branch_named_like_a_parent_revision_is_ambiguous(repo: ic.Repository) -> None:
    parent = repo.lookup_branch("main")
    _commit(repo, "main", 1)
    _plant_ref(repo, "main~1")  # points at main's tip, not its parent
    with pytest.raises(ic.AmbiguousRefError) as info:
        repo.resolve("main~1")
    assert info.value.candidates == ["branch main~1", "branch main, 1 back"]
    assert repo.resolve("main~01") == parent  # another spelling of the parent is still clear
