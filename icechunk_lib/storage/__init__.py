"""Async byte-level object storage: the abstract seam, its backends and URL dispatch.

Backends load on first use (``from icechunk_lib.storage import InMemoryStorage``, a
``memory://`` URL), so importing this package never imports one, nor what it needs.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from icechunk_lib.storage._base import ObjectInfo, Storage, StorageCapabilities, check_key
from icechunk_lib.storage.url import storage_from_url

if TYPE_CHECKING:
    from icechunk_lib.storage.local import LocalFileSystemStorage
    from icechunk_lib.storage.memory import InMemoryStorage

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

_BACKENDS = {
    "InMemoryStorage": "icechunk_lib.storage.memory",
    "LocalFileSystemStorage": "icechunk_lib.storage.local",
}


def __getattr__(name: str) -> Any:
    """Import a backend class the first time it is asked for."""
    module = _BACKENDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
