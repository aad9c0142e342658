"""Repositories written by each format version keep reading back exactly.

``tests/data/format2`` was written by format version 2 (a 150-value int64 array in two native
chunks, committed twice, the first commit tagged ``v1``; an inline int8 array; a group
attribute). ``tests/data/format2-rich`` too, by ``tests/make_golden_rich.py`` (its docstring
lists what each commit did): two branches, tags and a deleted tag's tombstone, a moved array,
deleted chunks and arrays, an array split across three manifests, an extra key and a reflog
page. Neither may ever need rewriting: a change that breaks them breaks every repository.
tests/format/test_golden_bytes.py checks that re-encoding their objects gives the same bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.format.refs import REFLOG_INLINE

GOLDEN = Path(__file__).parent / "data" / "format2"
FIRST, SECOND = "TX9TQ7WCD13T31ZJV84G", "TVAZ0WFX6575V713B7T0"


def test_format_2_repository_reads_back_exactly(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN, root)  # reading must not need to write, but never risk the fixture
    repo = ic.Repository.open(ic.local_filesystem_storage(str(root)))
    assert [(i.id, i.message) for i in repo.ancestry(branch="main")][:2] == [
        (SECOND, "second"),
        (FIRST, "first"),
    ]
    assert repo.lookup_tag("v1") == FIRST
    for rev, scale in (("v1", 1), ("main", 100)):
        snapshot = repo.resolve(rev)
        group = zarr.open_group(repo.readonly_session(snapshot_id=snapshot).store, mode="r")
        np.testing.assert_array_equal(group["a"][:], np.arange(150) * scale)
        np.testing.assert_array_equal(group["small"][:], [1, 2, 3])
        assert group.attrs["title"] == "golden"
    diff = repo.diff(from_tag="v1", to_branch="main")
    assert diff.updated_chunks == {"/a": [[0], [1]]}
    assert sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()) == sorted(
        p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file()
    )


# --- format2-rich: branches, tags, a tombstone, moves, deletions, split manifests ---------------

RICH = Path(__file__).parent / "data" / "format2-rich"
INIT, FIRST_R, GRID, DEV_WORK, MAIN_AGAIN = (
    "GSM22057964GWJAC0FMG",
    "5797N3AX6G6SD0QH7AM0",
    "7V4CVJDAHRHDDZPQJ7KG",
    "VMFP3CD82R2TD3RP71T0",
    "BWSA23QKDQ3CCNRFCYGG",
)
NATIVE = np.arange(300, dtype="float64") / 4
GRID_VALUES = np.arange(1200, dtype="int16").reshape(40, 30) + 1


def _open_rich(tmp_path: Path) -> tuple[ic.Repository, Path]:
    root = tmp_path / "rich"
    shutil.copytree(RICH, root)
    return ic.Repository.open(ic.local_filesystem_storage(str(root))), root


def _group(repo: ic.Repository, rev: str) -> zarr.Group:
    session = repo.readonly_session(snapshot_id=repo.resolve(rev))
    return zarr.open_group(session.store, mode="r")


def test_rich_refs_and_history_read_back_exactly(tmp_path: Path) -> None:
    repo, root = _open_rich(tmp_path)
    assert repo.list_branches() == {"main", "dev"}
    assert repo.list_tags() == {"v1", "v2"}
    assert (repo.lookup_tag("v1"), repo.lookup_tag("v2")) == (FIRST_R, GRID)
    with pytest.raises(ic.TagNotFoundError):
        repo.lookup_tag("gone")
    with pytest.raises(ic.TagAlreadyExistsError):  # the tombstone keeps the name taken
        repo.create_tag("gone", GRID)
    history = {
        branch: [(s.id, s.parent_id, s.message, s.metadata) for s in repo.ancestry(branch=branch)]
        for branch in ("main", "dev")
    }
    base = [
        (GRID, FIRST_R, "grid", {"step": 2}),
        (FIRST_R, INIT, "first", {"step": 1}),
        (INIT, None, "Repository initialized", {}),
    ]
    assert history["main"] == [(MAIN_AGAIN, GRID, "main again", {"step": 4}), *base]
    assert history["dev"] == [(DEV_WORK, GRID, "dev work", {"step": 3, "branch": "dev"}), *base]
    # dev's reflog runs past what a branch record keeps inline, so its tail is read from a page.
    reflog = repo.reflog("dev")
    assert len(reflog) > REFLOG_INLINE
    assert [(e.action, e.snapshot_id, e.previous_id) for e in reflog[-2:]] == [
        ("commit", DEV_WORK, GRID),
        ("create", GRID, None),
    ]
    resets = reflog[:-2]
    assert {e.action for e in resets} == {"reset"}
    assert [e.snapshot_id for e in resets] == [DEV_WORK, GRID] * (len(resets) // 2)
    assert [e.at for e in reflog] == sorted((e.at for e in reflog), reverse=True)
    assert [e.action for e in repo.reflog("main")] == ["commit", "commit", "commit", "create"]
    assert sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()) == sorted(
        p.relative_to(RICH) for p in RICH.rglob("*") if p.is_file()
    )


def test_rich_data_reads_back_exactly(tmp_path: Path) -> None:
    repo, _ = _open_rich(tmp_path)
    v1 = _group(repo, "v1")
    assert dict(v1.attrs) == {"title": "rich golden", "version": 1}
    assert dict(v1["g"].attrs) == {"kind": "group attrs"}
    assert dict(v1["g/native"].attrs) == {"units": "m"}
    np.testing.assert_array_equal(v1["g/native"][:], NATIVE)
    np.testing.assert_array_equal(v1["small"][:], [1, 2, 3])
    assert sorted(v1.array_keys()) == ["small"]

    v2 = _group(repo, "v2")
    native_v2 = np.concatenate([NATIVE[:100], NATIVE[100:200] * 10, NATIVE[200:]])
    np.testing.assert_array_equal(v2["g/native"][:], native_v2)
    np.testing.assert_array_equal(v2["grid"][:], GRID_VALUES)  # across three manifests
    np.testing.assert_array_equal(v2["doomed"][:], [7, 7])

    dev = _group(repo, "dev")
    # Membership, not array_keys(): listing the root would meet the extra key notes.txt.
    assert ("small" in dev, "doomed" in dev) == (False, True)
    np.testing.assert_array_equal(dev["g/tiny"][:], [1, 2, 3])  # /small, moved
    assert dict(dev["g/native"].attrs) == {"units": "cm"}
    np.testing.assert_array_equal(
        dev["g/native"][:], np.concatenate([native_v2[:200], -NATIVE[200:]])
    )
    np.testing.assert_array_equal(dev["grid"][:], np.vstack([np.zeros((1, 30)), GRID_VALUES[1:]]))
    store = repo.readonly_session(branch="dev").store
    notes = sync(store.get("notes.txt", default_buffer_prototype()))
    assert notes is not None and notes.to_bytes() == b"written by make_golden_rich.py\n"

    main = _group(repo, "main")
    assert dict(main.attrs) == {"title": "rich golden", "version": 2}
    assert sorted(main.array_keys()) == ["grid", "small"]
    np.testing.assert_array_equal(main["grid"][:], GRID_VALUES)
    np.testing.assert_array_equal(main["g/native"][:], native_v2)


def test_rich_diffs_read_back_exactly(tmp_path: Path) -> None:
    repo, _ = _open_rich(tmp_path)
    everything = [[i, j] for i in range(40) for j in range(30)]
    assert repo.diff(from_tag="v1", to_tag="v2") == ic.Diff(
        new_arrays={"/grid", "/doomed"},
        updated_chunks={"/grid": everything, "/g/native": [[1]], "/doomed": [[0]]},
    )
    assert repo.diff(from_tag="v2", to_branch="dev") == ic.Diff(
        updated_arrays={"/g/native"},
        updated_chunks={"/grid": [[0, j] for j in range(30)], "/g/native": [[2]]},
        moved_nodes=[("/small", "/g/tiny")],
    )
    assert repo.diff(from_tag="v2", to_branch="main") == ic.Diff(
        deleted_arrays={"/doomed"}, updated_groups={"/"}
    )
