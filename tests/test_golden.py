"""Repositories written by each format version keep reading back exactly.

``tests/data/format2`` was written by format version 2 (a 150-value int64 array in two native
chunks, committed twice, the first commit tagged ``v1``; an inline int8 array; a group
attribute). It must never need rewriting: a change that breaks it breaks every repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr

import icechunk_lib as ic

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
