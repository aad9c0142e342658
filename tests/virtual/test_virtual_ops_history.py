"""Version control of an array mixing native, inline and virtual chunks: commits, branches,
tags, time travel, diffs, reset and rebase keep every ref exactly."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from virtual_mixed import Mixed, build, chunk_ref

import icechunk_lib as ic
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL, ChunkRef


@pytest.fixture
def mixed(tmp_path: Path) -> Mixed:
    return build(tmp_path)


def _refs(session: ic.Session) -> list[ChunkRef | None]:
    return [chunk_ref(session, "/mixed", (row, 0)) for row in range(4)]


def _kinds(refs: list[ChunkRef | None]) -> list[int | None]:
    return [r.kind if r is not None else None for r in refs]


def _values(session: ic.Session, rows: slice = slice(None)) -> np.ndarray:
    """The array's values, virtual chunks read from their sources."""
    return zarr.open_array(session.store, path="mixed", mode="r")[rows]


def test_branches_tags_and_time_travel_keep_every_kind(mixed: Mixed) -> None:
    repo = mixed.repo
    first = _refs(repo.readonly_session(snapshot_id=mixed.first))
    assert _kinds(first) == [NATIVE, INLINE, VIRTUAL, VIRTUAL]
    repo.create_tag("v1", mixed.first)
    repo.create_branch("dev", mixed.first)
    time.sleep(0.01)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.01)

    # main: row 2 re-pointed at row 3's range, row 3 rewritten as native data.
    o3, l3 = mixed.ranges[1]
    session = repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=o3, length=l3)
    zarr.open_array(session.store, path="mixed")[3] = mixed.values[3] * 2
    second = session.commit("re-point row 2, write row 3")
    # dev: a virtual ref over the native row 0.
    session = repo.writable_session("dev")
    session.store.set_virtual_ref("mixed/c/0/0", mixed.blob, offset=0, length=3)
    session.commit("row 0 virtual on dev")

    tip = _refs(repo.readonly_session("main"))
    assert _kinds(tip) == [NATIVE, INLINE, VIRTUAL, NATIVE]
    assert tip[0] == first[0] and tip[1] == first[1]
    assert tip[2] == ChunkRef(VIRTUAL, offset=o3, length=l3, location=mixed.blob)
    main_values = _values(repo.readonly_session("main"))
    np.testing.assert_array_equal(main_values[:2], mixed.values[:2])
    np.testing.assert_array_equal(main_values[2], mixed.values[3])  # row 3's range
    np.testing.assert_array_equal(main_values[3], mixed.values[3] * 2)
    dev = _refs(repo.readonly_session("dev"))
    assert dev[0] == ChunkRef(VIRTUAL, offset=0, length=3, location=mixed.blob)
    assert dev[1:] == first[1:]
    # The old snapshot by id, by tag, and as of a time before the second commit.
    for old in (
        repo.readonly_session(snapshot_id=mixed.first),
        repo.readonly_session(tag="v1"),
        repo.readonly_session("main", as_of=between),
    ):
        assert old.snapshot_id == mixed.first
        assert _refs(old) == first
        np.testing.assert_array_equal(_values(old), mixed.values)
    assert repo.readonly_session(snapshot_id=second).snapshot_id == second
    # Reopened from storage (no cache): the same.
    assert _refs(mixed.open().readonly_session(tag="v1")) == first


def test_diff_and_status_show_a_virtual_chunk_re_pointed(mixed: Mixed) -> None:
    """Another location, offset, length, ETag or update time is another chunk; the same
    ref written again is no change."""
    repo = mixed.repo
    (o2, l2), (o3, l3) = mixed.ranges
    other = mixed.prefix + "other.bin"
    (mixed.sources / "other.bin").write_bytes(b"x" * 4096)
    when = dt.datetime(2031, 5, 1, tzinfo=dt.UTC)
    changes: list[tuple[str, dict[str, object]]] = [
        ("location", {"location": other, "offset": o2, "length": l2}),
        ("offset", {"location": mixed.blob, "offset": o2 + 1, "length": l2}),
        ("length", {"location": mixed.blob, "offset": o2, "length": l2 - 1}),
        ("etag", {"location": mixed.blob, "offset": o2, "length": l2, "checksum": '"v2"'}),
        ("updated", {"location": mixed.blob, "offset": o2, "length": l2, "checksum": when}),
    ]
    base = mixed.first
    for what, ref in changes:
        session = repo.writable_session("main")
        session.store.set_virtual_ref("mixed/c/2/0", **ref)  # type: ignore[arg-type]
        assert session.status().updated_chunks == {"/mixed": [[2, 0]]}, what
        new = session.commit(f"row 2: another {what}")
        diff = repo.diff(from_snapshot_id=base, to_snapshot_id=new)
        assert diff.updated_chunks == {"/mixed": [[2, 0]]}, what
        assert not (diff.new_arrays or diff.deleted_arrays or diff.updated_arrays), what
        base = new
    # Back to the first ref of row 2: the last one differs from it only by update time.
    session = repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=o2, length=l2)
    final = session.commit("row 2 as first made")
    diff = repo.diff(from_snapshot_id=mixed.first, to_snapshot_id=final)
    assert diff.is_empty(), diff
    np.testing.assert_array_equal(_values(repo.readonly_session("main")), mixed.values)
    # Row 3 (never touched) and a rewrite with the very same ref change nothing.
    session = repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/3/0", mixed.blob, offset=o3, length=l3)
    same = session.commit("row 3 again")
    assert repo.diff(from_snapshot_id=final, to_snapshot_id=same).is_empty()
    # Virtual to native and back shows too.
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="mixed")[2] = 1.0
    native = session.commit("row 2 native")
    assert repo.diff(from_snapshot_id=same, to_snapshot_id=native).updated_chunks == {
        "/mixed": [[2, 0]]
    }


def test_reset_branch_brings_the_old_refs_back(mixed: Mixed) -> None:
    repo = mixed.repo
    first = _refs(repo.readonly_session("main"))
    session = repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/1/0", mixed.blob, offset=5, length=5)
    zarr.open_array(session.store, path="mixed")[2] = mixed.values[3]  # random: native
    session.commit("replace the inline and a virtual chunk")
    assert _kinds(_refs(repo.readonly_session("main"))) == [NATIVE, VIRTUAL, NATIVE, VIRTUAL]
    repo.reset_branch("main", mixed.first)
    assert _refs(repo.readonly_session("main")) == first
    np.testing.assert_array_equal(_values(repo.readonly_session("main")), mixed.values)


def test_rebase_merges_virtual_refs_and_resolves_a_conflict(mixed: Mixed) -> None:
    repo = mixed.repo
    o2, l2 = mixed.ranges[0]
    ours = repo.writable_session("main")
    theirs = repo.writable_session("main")
    theirs.store.set_virtual_ref("mixed/c/3/0", mixed.blob, offset=1, length=11)
    theirs.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=2, length=22)
    theirs.commit("theirs")
    ours.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=o2, length=l2, checksum='"o"')
    ours.store.set_virtual_ref("mixed/c/0/0", mixed.blob, offset=3, length=33)
    with pytest.raises(ic.ConflictError):
        ours.commit("ours")
    # Both wrote row 2: the default solver fails and says which chunk.
    with pytest.raises(ic.RebaseFailedError) as failed:
        ours.rebase(ic.ConflictDetector())
    assert "/mixed" in str(failed.value)
    ours.rebase(ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseOurs))
    ours.commit("ours, rebased")
    tip = _refs(repo.readonly_session("main"))
    assert tip[0] == ChunkRef(VIRTUAL, offset=3, length=33, location=mixed.blob)
    assert tip[1] is not None and tip[1].kind == INLINE
    assert tip[2] == ChunkRef(VIRTUAL, offset=o2, length=l2, location=mixed.blob, etag='"o"')
    assert tip[3] == ChunkRef(VIRTUAL, offset=1, length=11, location=mixed.blob)

    # Theirs wins this time.
    ours = repo.writable_session("main")
    theirs = repo.writable_session("main")
    theirs.store.set_virtual_ref("mixed/c/0/0", mixed.blob, offset=4, length=44)
    theirs.commit("theirs again")
    ours.store.set_virtual_ref("mixed/c/0/0", mixed.blob, offset=5, length=55)
    ours.rebase(ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseTheirs))
    with pytest.raises(ic.NoChangesToCommitError):
        ours.commit("nothing of ours is left")
    assert _refs(repo.readonly_session("main"))[0] == ChunkRef(
        VIRTUAL, offset=4, length=44, location=mixed.blob
    )


def test_a_moved_array_keeps_its_virtual_refs(mixed: Mixed) -> None:
    repo = mixed.repo
    first = _refs(repo.readonly_session("main"))
    session = repo.writable_session("main")
    session.move("/mixed", "/renamed")
    session.commit("rename")
    moved = repo.readonly_session("main")
    assert [chunk_ref(moved, "/renamed", (row, 0)) for row in range(4)] == first
    renamed = zarr.open_array(moved.store, path="renamed", mode="r")
    np.testing.assert_array_equal(renamed[:], mixed.values)
    diff = repo.diff(from_snapshot_id=mixed.first, to_branch="main")
    assert diff.moved_nodes == [("/mixed", "/renamed")] and not diff.updated_chunks
