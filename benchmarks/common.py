"""Small zarr helpers the cases share: buffers, the event loop, metadata documents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import zarr
from zarr.abc.store import Store
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import MemoryStore

__all__ = [
    "PROTOTYPE",
    "array_metadata",
    "as_buffer",
    "chunk_pool",
    "group_metadata",
    "random_bytes",
    "run",
    "set_many",
]

T = TypeVar("T")

PROTOTYPE: BufferPrototype = default_buffer_prototype()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on zarr's own event loop, the loop zarr itself calls stores from."""
    return sync(coro)


def as_buffer(data: bytes) -> Buffer:
    return PROTOTYPE.buffer.from_bytes(data)


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def array_metadata(**kwargs: Any) -> bytes:
    """The ``zarr.json`` zarr writes for ``zarr.create_array(**kwargs)``."""
    store = MemoryStore()
    zarr.create_array(store, name="x", **kwargs)
    buf = sync(store.get("x/zarr.json", PROTOTYPE))
    assert buf is not None
    return buf.to_bytes()


def group_metadata() -> bytes:
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}).encode()


async def set_many(store: Store, items: Iterable[tuple[str, Buffer]], batch: int = 1000) -> None:
    """Write many keys, ``batch`` at a time concurrently (as zarr does for a region write)."""
    pending: list[tuple[str, Buffer]] = []
    for item in items:
        pending.append(item)
        if len(pending) >= batch:
            await asyncio.gather(*(store.set(k, v) for k, v in pending))
            pending = []
    if pending:
        await asyncio.gather(*(store.set(k, v) for k, v in pending))


def chunk_pool(size: int, count: int, seed: int = 0) -> Sequence[Buffer]:
    """``count`` distinct random chunks of ``size`` bytes, to cycle through."""
    return [as_buffer(random_bytes(size, seed + i)) for i in range(count)]
