"""Fixtures for the storage tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _mounts import mount

if TYPE_CHECKING:
    from icechunk_lib.storage import InMemoryStorage, LocalFileSystemStorage, Storage

# Keep the source tree importable even when the package is not installed (pytest's
# `pythonpath` is not set); spawned worker processes inherit this sys.path too.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])
if _SOURCE_ROOT not in sys.path:
    sys.path.insert(0, _SOURCE_ROOT)


@pytest.fixture
def memory_storage() -> InMemoryStorage:
    """A fresh anonymous in-memory storage."""
    from icechunk_lib.storage import InMemoryStorage

    return InMemoryStorage()


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalFileSystemStorage:
    """A local storage whose root (``tmp_path / "repo"``) is an empty directory."""
    from icechunk_lib.storage import LocalFileSystemStorage

    (tmp_path / "repo").mkdir()
    return LocalFileSystemStorage(tmp_path / "repo")


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each backend in turn, fresh and empty (``memory_storage``, then ``local_storage``)."""
    fixture: Storage = request.getfixturevalue(f"{request.param}_storage")
    return fixture


@pytest.fixture
def memory_name() -> Iterator[str]:
    """A unique name for a named in-memory storage, forgotten after the test."""
    from icechunk_lib.storage import InMemoryStorage

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    InMemoryStorage.drop_named(name)


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """A fresh 4 MiB tmpfs (to fill up, or remount read-only), unmounted afterwards.

    Tests run as root, for whom permissions change nothing: a small or read-only file
    system is the real way to make writes fail. Skipped where mounting is not allowed.
    """
    point = tmp_path / "mnt"
    point.mkdir()
    if os.geteuid() != 0 or not mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)):
        pytest.skip("needs root and a mountable tmpfs")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)
