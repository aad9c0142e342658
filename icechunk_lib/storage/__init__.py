"""Async byte-level object storage: the abstract seam, its backends and URL dispatch.

Backends load on first use (``from icechunk_lib.storage import InMemoryStorage``, a
``memory://`` URL), so importing this package never imports one, nor what it needs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from icechunk_lib._lazy import LazyExports
from icechunk_lib.storage._base import ObjectInfo as ObjectInfo
from icechunk_lib.storage._base import Storage as Storage
from icechunk_lib.storage._base import StorageCapabilities as StorageCapabilities
from icechunk_lib.storage._base import check_key as check_key
from icechunk_lib.storage.url import storage_from_url as storage_from_url

if TYPE_CHECKING:
    from icechunk_lib.storage.cloud import azure_storage as azure_storage
    from icechunk_lib.storage.cloud import gcs_storage as gcs_storage
    from icechunk_lib.storage.fsspec_storage import FsspecStorage as FsspecStorage
    from icechunk_lib.storage.local import LocalFileSystemStorage as LocalFileSystemStorage
    from icechunk_lib.storage.memory import InMemoryStorage as InMemoryStorage

_EXPORTS = LazyExports(
    globals(),
    {
        "FsspecStorage": "icechunk_lib.storage.fsspec_storage",
        "InMemoryStorage": "icechunk_lib.storage.memory",
        "LocalFileSystemStorage": "icechunk_lib.storage.local",
        "azure_storage": "icechunk_lib.storage.cloud",
        "gcs_storage": "icechunk_lib.storage.cloud",
    },
    eager=[
        "ObjectInfo",
        "Storage",
        "StorageCapabilities",
        "check_key",
        "in_memory_storage",
        "local_filesystem_storage",
        "storage_from_url",
    ],
)
__all__ = _EXPORTS.names
__getattr__ = _EXPORTS.getattr
__dir__ = _EXPORTS.dir


def local_filesystem_storage(path: str | os.PathLike[str], *, fsync: bool = False) -> Storage:
    """Storage in a local directory, which ``Repository.create`` makes (Icechunk's factory name).

    ``fsync=True`` flushes every file to disk before publishing it (power-loss durability).
    """
    from icechunk_lib.storage.local import LocalFileSystemStorage

    return LocalFileSystemStorage(path, fsync=fsync)


def in_memory_storage() -> Storage:
    """A fresh, empty in-process storage (Icechunk's factory name)."""
    from icechunk_lib.storage.memory import InMemoryStorage

    return InMemoryStorage()
