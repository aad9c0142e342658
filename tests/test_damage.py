"""Damage any file of a repository in any way: every read is right or refused, never wrong.

hypothesis picks a file of a small but complete repository (config, branch and tag refs,
tombstones, snapshots, manifests, transaction logs, reflog pages, chunks) and a kind of
damage: deleted, emptied, truncated, a bit flipped, garbage appended, or replaced by another
file of the repository (the mis-restore from a backup). Then everything is read back: every
snapshot by id, every branch and tag, every diff, every reflog, every history. Each read must
either give exactly what was committed or raise an ``IcechunkError``; any other exception or
any other value is a defect. Reads by snapshot id must also never come back as another
snapshot's content.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
import zarr.errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icechunk_lib as ic

ARRAYS = ("big", "small", "grp/scalar")


@dataclass
class Expected:
    """What the template repository holds, read back before any damage."""

    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Snapshot id -> {array path: values, or None when absent; "attrs": root attributes}."""
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    diffs: dict[tuple[str, str], Any] = field(default_factory=dict)
    reflogs: dict[str, list[Any]] = field(default_factory=dict)
    histories: dict[str, list[str]] = field(default_factory=dict)


def _content(session: ic.Session) -> dict[str, Any]:
    try:
        root = zarr.open_group(session.store, mode="r")
    except zarr.errors.NodeNotFoundError:
        return {"attrs": None}  # the initial snapshot: an empty repository
    found: dict[str, Any] = {"attrs": dict(root.attrs)}
    for path in ARRAYS:
        try:
            arr = zarr.open_array(session.store, path=path, mode="r")
        except zarr.errors.NodeNotFoundError:
            found[path] = None
            continue
        found[path] = np.asarray(arr[...]).copy()
    return found


def _build(path: Path) -> Expected:
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    session = repo.writable_session("main")
    root = zarr.group(session.store, attributes={"title": "t0"})
    # 2 KiB chunks are stored as chunk files; 8-byte chunks are inlined in the manifest.
    big = root.create_array("big", shape=(32, 32), chunks=(16, 16), dtype="f8", fill_value=-1)
    big[:] = np.random.default_rng(0).random((32, 32))  # incompressible
    small = root.create_array("small", shape=(6,), chunks=(2,), dtype="i4", fill_value=7)
    small[:] = np.arange(6)
    grp = root.create_group("grp")
    scalar = grp.create_array("scalar", shape=(), dtype="i8", fill_value=0)
    scalar[...] = 41
    c1 = session.commit("first")
    repo.create_tag("v1", c1)

    session = repo.writable_session("main")
    zarr.open_array(session.store, path="big")[:16, :16] = 5.0
    zarr.open_array(session.store, path="small")[2:4] = 99
    zarr.open_array(session.store, path="grp/scalar")[...] = 42
    c2 = session.commit("second")
    repo.create_branch("dev", c2)

    session = repo.writable_session("dev")
    zarr.open_array(session.store, path="big")[16:, 16:] = 6.0
    del zarr.open_group(session.store)["small"]
    c3 = session.commit("dev work")

    session = repo.writable_session("main")
    zarr.open_group(session.store).attrs["title"] = "t4"
    zarr.open_array(session.store, path="big")[16:, :16] = 8.0
    c4 = session.commit("third")
    repo.create_tag("v2", c4)
    repo.create_tag("gone", c1)
    repo.delete_tag("gone")

    # Enough branch moves to archive part of dev's reflog in a reflog page.
    for i in range(40):
        repo.reset_branch("dev", c3 if i % 2 else c2)
    repo.reset_branch("dev", c3)

    expected = Expected()
    for branch in repo.list_branches():
        expected.branches[branch] = repo.lookup_branch(branch)
        expected.reflogs[branch] = repo.reflog(branch)
        expected.histories[branch] = [s.id for s in repo.ancestry(branch=branch)]
    for tag in repo.list_tags():
        expected.tags[tag] = repo.lookup_tag(tag)
    ids = {s.id for b in expected.branches for s in repo.ancestry(branch=b)}
    for sid in ids:
        expected.snapshots[sid] = _content(repo.readonly_session(snapshot_id=sid))
    for a, b in [(c1, c2), (c2, c3), (c2, c4), (c1, c4), (c4, c3)]:
        expected.diffs[a, b] = repo.diff(from_snapshot_id=a, to_snapshot_id=b)
    assert len(expected.snapshots) == 5  # the initial commit and c1..c4
    assert list((path / "reflogs").iterdir()), "the template must hold a reflog page"
    return expected


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected, list[str]]:
    path = tmp_path_factory.mktemp("damage") / "repo"
    expected = _build(path)
    files = sorted(
        str(p.relative_to(path))
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".ick-") for part in p.parts)
    )
    return path, expected, files


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b))
        )
    return bool(a == b)


def _check(read: Callable[[], Any], want: Any, what: str) -> bool:
    """Run one read: equal to ``want`` or an ``IcechunkError``. Returns whether it read."""
    try:
        got = read()
    except ic.IcechunkError:
        return False
    if isinstance(want, dict):
        assert set(got) == set(want), what
        for key in want:
            assert _same(got[key], want[key]), f"{what}: {key} differs"
    else:
        assert _same(got, want), f"{what}: {got!r} != {want!r}"
    return True


def _read_everything(path: Path, expected: Expected) -> None:
    try:
        repo = ic.Repository.open(ic.local_filesystem_storage(path))
    except ic.IcechunkError:
        return
    for sid, want in expected.snapshots.items():
        _check(
            lambda sid=sid: _content(repo.readonly_session(snapshot_id=sid)),
            want,
            f"snapshot {sid}",
        )
    for name, sid in expected.tags.items():
        _check(lambda name=name: repo.lookup_tag(name), sid, f"tag {name}")
        _check(
            lambda name=name: _content(repo.readonly_session(tag=name)),
            expected.snapshots[sid],
            f"tag {name} content",
        )
    for name, sid in expected.branches.items():
        _check(lambda name=name: repo.lookup_branch(name), sid, f"branch {name}")
        _check(
            lambda name=name: _content(repo.readonly_session(branch=name)),
            expected.snapshots[sid],
            f"branch {name} content",
        )
        _check(lambda name=name: repo.reflog(name), expected.reflogs[name], f"reflog {name}")
        _check(
            lambda name=name: [s.id for s in repo.ancestry(branch=name)],
            expected.histories[name],
            f"history of {name}",
        )
    for (a, b), want in expected.diffs.items():
        _check(
            lambda a=a, b=b: repo.diff(from_snapshot_id=a, to_snapshot_id=b),
            want,
            f"diff {a}..{b}",
        )


DAMAGES = ("delete", "empty", "truncate", "flip", "append", "replace")


@settings(
    max_examples=int(os.environ.get("ICK_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_damage_is_refused_or_harmless(
    template: tuple[Path, Expected, list[str]], tmp_path: Path, data: st.DataObject
) -> None:
    source, expected, files = template
    target = data.draw(st.sampled_from(files), label="file")
    damage = data.draw(st.sampled_from(DAMAGES), label="damage")
    work = Path(tempfile.mkdtemp(dir=tmp_path)) / "repo"
    shutil.copytree(source, work)
    victim = work / target
    raw = victim.read_bytes()
    if damage == "delete":
        victim.unlink()
    elif damage == "empty":
        victim.write_bytes(b"")
    elif damage == "truncate":
        victim.write_bytes(raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)), label="at")])
    elif damage == "flip":
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        bit = data.draw(st.integers(0, 7), label="bit")
        flipped = bytearray(raw)
        flipped[at] ^= 1 << bit
        victim.write_bytes(bytes(flipped))
    elif damage == "append":
        victim.write_bytes(raw + data.draw(st.binary(min_size=1, max_size=16), label="tail"))
    else:
        other = data.draw(st.sampled_from([f for f in files if f != target]), label="other")
        victim.write_bytes((source / other).read_bytes())
    try:
        _read_everything(work, expected)
    finally:
        shutil.rmtree(work.parent)


@pytest.mark.parametrize("kind", ["snapshots", "manifests", "transactions", "chunks", "reflogs"])
def test_every_file_swapped_with_its_own_kind_is_refused(
    template: tuple[Path, Expected, list[str]], tmp_path: Path, kind: str
) -> None:
    """The mis-restore, exhaustively: each immutable file replaced by each other of its kind."""
    source, expected, files = template
    same_kind = [f for f in files if f.startswith(kind + "/")]
    if kind != "reflogs":
        assert len(same_kind) >= 2, same_kind
    for target in same_kind:
        for other in same_kind:
            if other == target:
                continue
            work = Path(tempfile.mkdtemp(dir=tmp_path)) / "repo"
            shutil.copytree(source, work)
            (work / target).write_bytes((source / other).read_bytes())
            try:
                _read_everything(work, expected)
            finally:
                shutil.rmtree(work.parent)
