"""Async byte-level object storage: the abstract seam, its backends and URL dispatch."""

from __future__ import annotations

import os

from icechunk_lib.storage._base import ObjectInfo, Storage, StorageCapabilities, check_key
from icechunk_lib.storage.local import LocalFileSystemStorage
from icechunk_lib.storage.memory import InMemoryStorage
from icechunk_lib.storage.url import storage_from_url

__all__ = [
    "InMemoryStorage",
    "LocalFileSystemStorage",
    "ObjectInfo",
    "Storage",
    "StorageCapabilities",
    "check_key",
    "in_memory_storage",
    "local_filesystem_storage",
    "storage_from_url",
]


def local_filesystem_storage(path: str | os.PathLike[str], *, fsync: bool = False) -> Storage:
    """Storage in a local directory, which ``Repository.create`` makes (Icechunk's factory name).

    ``fsync=True`` flushes every file to disk before publishing it (power-loss durability).
    """
    return LocalFileSystemStorage(path, fsync=fsync)


def in_memory_storage() -> Storage:
    """A fresh, empty in-process storage (Icechunk's factory name)."""
    return InMemoryStorage()
