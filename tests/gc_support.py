"""Helpers for the gc tests: age objects the way time would, list what a repository holds,
write commits whose chunks are native (not inlined), and count storage calls.

Ageing changes only what the storage reports as the objects' modification time: on local
storage the files' mtimes (``os.utime``), in memory the time each object records.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import zarr

import icechunk_lib as ic
from icechunk_lib.storage import LocalFileSystemStorage, ObjectInfo, Storage, StorageCapabilities
from icechunk_lib.storage.memory import InMemoryStorage

__all__ = [
    "OBJECT_PREFIXES",
    "CountingStorage",
    "age",
    "keys",
    "write_chunks",
]

OBJECT_PREFIXES = ("snapshots/", "transactions/", "manifests/", "chunks/")
CHUNK = 100
"""float64 elements per chunk: 800 bytes, above the inline threshold, so each is a file."""


def keys(storage: Storage, prefixes: Iterable[str] = OBJECT_PREFIXES) -> set[str]:
    """Every key under ``prefixes`` (the object kinds gc may delete)."""

    async def collect() -> set[str]:
        return {i.key for p in prefixes async for i in storage.list(p)}

    return ic._sync.run(collect())


def age(storage: Storage, by: timedelta, only: Iterable[str] | None = None) -> None:
    """Make objects (all, or those in ``only``) look ``by`` older to the storage."""
    wanted = None if only is None else set(only)
    seconds = by.total_seconds()
    if isinstance(storage, InMemoryStorage):
        with storage._lock:
            for key, obj in list(storage._objects.items()):
                if wanted is None or key in wanted:
                    storage._objects[key] = obj._replace(mtime=obj.mtime - seconds)
        return
    assert isinstance(storage, LocalFileSystemStorage)
    root = Path(storage.root)
    for path in root.rglob("*"):
        key = path.relative_to(root).as_posix()
        chosen = wanted is None or key in wanted
        if chosen and path.is_file() and not path.name.startswith(".ick-"):
            st = path.stat()
            os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))


def write_chunks(
    repo: ic.Repository, branch: str, array: str, start: int, count: int, value: float
) -> str:
    """Commit ``count`` native chunks of ``array`` from chunk ``start``, all set to ``value``
    (the array is created, 100,000 chunks long, if missing); return the snapshot id."""
    session = repo.writable_session(branch)
    group = zarr.open_group(session.store, mode="a")
    if array not in group:
        group.create_array(
            array, shape=(CHUNK * 100_000,), chunks=(CHUNK,), dtype="f8", fill_value=-1,
            compressors=None,
        )  # fmt: skip
    arr = group[array]
    assert isinstance(arr, zarr.Array)
    arr[start * CHUNK : (start + count) * CHUNK] = value
    return session.commit(f"{array} {start}+{count} = {value}")


def read_chunks(repo: ic.Repository, ref: dict[str, Any], array: str, count: int) -> np.ndarray:
    """The first ``count`` chunks of ``array`` at a ref (``branch=``, ``tag=`` or
    ``snapshot_id=``), one value per chunk (checked uniform)."""
    session = repo.readonly_session(**ref)
    data = zarr.open_array(session.store, path=array, mode="r")[: count * CHUNK]
    blocks = np.asarray(data).reshape(count, CHUNK)
    assert (blocks == blocks[:, :1]).all()
    return blocks[:, 0]


class CountingStorage(Storage):
    """A real storage behind a counter of reads by prefix and of keys listed by prefix."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.capabilities: StorageCapabilities = inner.capabilities
        self.gets: Counter[str] = Counter()
        self.listed: Counter[str] = Counter()
        self.deleted: list[str] = []

    @staticmethod
    def _prefix(key: str) -> str:
        return key.split("/", 1)[0] + "/" if "/" in key else key

    def reset(self) -> None:
        self.gets.clear()
        self.listed.clear()
        self.deleted.clear()

    @property
    def url(self) -> str:
        return self.inner.url

    async def create_root(self) -> None:
        await self.inner.create_root()

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        self.gets[self._prefix(key)] += 1
        return await self.inner.get(key, byte_range)

    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        self.gets[self._prefix(key)] += 1
        return await self.inner.get_versioned(key)

    async def put(self, key: str, data: bytes) -> None:
        await self.inner.put(key, data)

    async def put_new(self, key: str, data: bytes) -> None:
        await self.inner.put_new(key, data)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        await self.inner.put_if_absent(key, data)

    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        return await self.inner.put_if_match(key, data, version)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def size(self, key: str) -> int:
        return await self.inner.size(key)

    async def delete(self, key: str) -> None:
        self.deleted.append(key)
        await self.inner.delete(key)

    async def delete_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        self.deleted.extend(keys)
        return await self.inner.delete_many(keys)

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        async for info in self.inner.list(prefix, start_after=start_after):
            self.listed[self._prefix(info.key)] += 1
            yield info

    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        return self._list(prefix, start_after)
