"""The public names of icechunk_lib.storage and its Icechunk-named factories."""

from __future__ import annotations

from pathlib import Path

import icechunk_lib.storage as storage_package
from icechunk_lib.storage import (
    InMemoryStorage,
    LocalFileSystemStorage,
    Storage,
    in_memory_storage,
    local_filesystem_storage,
)

EXPECTED = {
    "InMemoryStorage",
    "LocalFileSystemStorage",
    "ObjectInfo",
    "S3Credentials",
    "S3StaticCredentials",
    "S3Storage",
    "Storage",
    "StorageCapabilities",
    "StorageTuning",
    "check_key",
    "in_memory_storage",
    "local_filesystem_storage",
    "r2_storage",
    "s3_anonymous_credentials",
    "s3_credentials",
    "s3_from_env_credentials",
    "s3_refreshable_credentials",
    "s3_static_credentials",
    "s3_storage",
    "storage_from_url",
    "tigris_storage",
}


def test_all_is_sorted_and_complete() -> None:
    assert storage_package.__all__ == sorted(storage_package.__all__)
    assert set(storage_package.__all__) == EXPECTED
    for name in storage_package.__all__:
        assert getattr(storage_package, name) is not None


def test_factories(tmp_path: Path) -> None:
    local = local_filesystem_storage(tmp_path / "repo")
    assert isinstance(local, LocalFileSystemStorage)
    assert local == local_filesystem_storage(str(tmp_path / "repo"))
    memory = in_memory_storage()
    assert isinstance(memory, InMemoryStorage)
    assert memory != in_memory_storage()
    assert all(isinstance(s, Storage) for s in (local, memory))
