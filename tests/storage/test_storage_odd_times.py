"""Files with modification times outside what ``datetime`` holds still list.

A file restored from an archive, or touched by hand, can carry a time in year 36812 or
before year 1 on file systems with 64-bit times (tmpfs, XFS, btrfs); listing it raised a
raw ``ValueError``, so ``ick show <id prefix>`` failed with "unexpected ValueError".
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

import icechunk_lib as ic
from icechunk_lib.storage import LocalFileSystemStorage
from icechunk_lib.testing.storage import collect


@pytest.mark.parametrize(("seconds", "expected"), [(2**40, datetime.max), (-(2**40), datetime.min)])
async def test_out_of_range_times_are_clamped(
    mount_point: Path, seconds: int, expected: datetime
) -> None:
    root = mount_point / "repo"
    root.mkdir()
    storage = LocalFileSystemStorage(root)
    await storage.put("snapshots/ODD", b"x")
    await storage.put("snapshots/FINE", b"y")
    os.utime(root / "snapshots" / "ODD", (0, seconds))
    if (root / "snapshots" / "ODD").stat().st_mtime != seconds:
        pytest.skip("this file system cannot hold such a time")
    listed = await collect(storage, "snapshots/")
    assert set(listed) == {"snapshots/ODD", "snapshots/FINE"}
    assert listed["snapshots/ODD"].last_modified == expected.replace(tzinfo=UTC)
    assert listed["snapshots/FINE"].last_modified.year == datetime.now(UTC).year


def test_a_snapshot_with_an_odd_time_is_found_by_prefix(mount_point: Path) -> None:
    root = mount_point / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    first = repo.lookup_branch("main")
    os.utime(root / "snapshots" / first, (0, 2**40))
    assert repo.resolve(first[:8]) == first
