"""InMemoryStorage: the contract suite plus identity, naming, pickling and thread races."""

from __future__ import annotations

import asyncio
import gc
import pickle
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from _storage_workers import claim, increment

from icechunk_lib.errors import InvalidNameError, ObjectExistsError
from icechunk_lib.storage import InMemoryStorage, Storage, storage_from_url
from icechunk_lib.testing.storage import StorageTests

T = TypeVar("T")


class TestInMemoryStorage(StorageTests):
    @pytest.fixture
    def storage(self, memory_storage: InMemoryStorage) -> Storage:
        return memory_storage


def test_fresh_storages_are_distinct() -> None:
    first, second = InMemoryStorage(), InMemoryStorage()
    assert first != second
    assert first.url != second.url
    assert first.url.startswith("memory://")
    assert first.name is None


async def test_named_storage_is_process_wide(memory_name: str) -> None:
    storage = InMemoryStorage.named(memory_name)
    assert InMemoryStorage.named(memory_name) is storage
    assert storage.name == memory_name
    assert storage.url == f"memory://{memory_name}"
    await storage.put("k", b"v")
    assert await InMemoryStorage.named(memory_name).get("k") == b"v"
    assert InMemoryStorage.named(f"{memory_name}-other") != storage
    InMemoryStorage.drop_named(f"{memory_name}-other")


async def test_drop_named_forgets_the_name(memory_name: str) -> None:
    storage = InMemoryStorage.named(memory_name)
    await storage.put("k", b"v")
    InMemoryStorage.drop_named(memory_name)
    assert await storage.get("k") == b"v"  # held handles keep working
    assert await InMemoryStorage.named(memory_name).is_empty()


@pytest.mark.parametrize("name", ["", "a/b", "has space", "a:b", "x@y", "é"])
def test_invalid_names_rejected(name: str) -> None:
    with pytest.raises(InvalidNameError):
        InMemoryStorage.named(name)


async def test_tokens_change_even_for_identical_content(memory_storage: InMemoryStorage) -> None:
    await memory_storage.put("k", b"same")
    _, first = await memory_storage.get_versioned("k")
    await memory_storage.put("k", b"same")
    _, second = await memory_storage.get_versioned("k")
    assert first != second


async def test_stored_bytes_do_not_alias_caller_buffer(memory_storage: InMemoryStorage) -> None:
    buffer = bytearray(b"abc")
    await memory_storage.put("k", buffer)  # type: ignore[arg-type]  # callers may pass buffers
    buffer[0] = ord("z")
    assert await memory_storage.get("k") == b"abc"


async def test_unpickle_in_same_process_is_the_live_storage(
    memory_storage: InMemoryStorage,
) -> None:
    await memory_storage.put("config", b"cfg")
    clone = pickle.loads(pickle.dumps(memory_storage))
    assert clone is memory_storage


async def test_unpickle_without_live_original_rebuilds(memory_name: str) -> None:
    anonymous = InMemoryStorage()
    await anonymous.put("config", b"cfg")
    _, token = await anonymous.get_versioned("config")
    payload = pickle.dumps(anonymous)
    url = anonymous.url
    del anonymous
    gc.collect()
    rebuilt = pickle.loads(payload)
    assert rebuilt.url == url
    assert await rebuilt.get("config") == b"cfg"
    await rebuilt.put_if_match("config", b"new", token)  # pickled tokens stay valid
    assert pickle.loads(payload) is rebuilt  # now it is the live one


async def test_unpickled_named_storage_registers_its_name(memory_name: str) -> None:
    named = InMemoryStorage.named(memory_name)
    await named.put("k", b"v")
    payload = pickle.dumps(named)
    InMemoryStorage.drop_named(memory_name)
    del named
    gc.collect()
    rebuilt = pickle.loads(payload)
    assert InMemoryStorage.named(memory_name) is rebuilt
    assert await rebuilt.get("k") == b"v"


def _in_threads(count: int, work: Callable[[int], Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``work(i)`` in ``count`` threads, each with its own event loop, started together."""
    barrier = threading.Barrier(count)
    results: dict[int, T] = {}

    def run(i: int) -> None:
        barrier.wait()
        results[i] = asyncio.run(work(i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == count, "a thread failed"
    return [results[i] for i in range(count)]


def test_thread_race_compare_and_swap_loses_no_update(memory_storage: InMemoryStorage) -> None:
    asyncio.run(memory_storage.put("counter", b"0"))
    _in_threads(8, lambda i: increment(memory_storage, "counter", 50))
    assert asyncio.run(memory_storage.get("counter")) == b"400"


def test_thread_race_put_if_absent_has_one_winner(memory_storage: InMemoryStorage) -> None:
    keys = [f"tags/t{i}" for i in range(20)]
    won = _in_threads(8, lambda i: claim(memory_storage, keys, i))
    for key in keys:
        winners = [i for i, keys_won in enumerate(won) if key in keys_won]
        assert len(winners) == 1
        assert asyncio.run(memory_storage.get(key)) == f"worker {winners[0]}".encode()


async def test_put_if_absent_error_is_file_exists(memory_storage: InMemoryStorage) -> None:
    await memory_storage.put_if_absent("k", b"1")
    with pytest.raises(FileExistsError):
        await memory_storage.put_if_absent("k", b"2")
    with pytest.raises(ObjectExistsError):
        await memory_storage.put_if_absent("k", b"2")


async def test_closed_named_storage_reopens_by_name(memory_name: str) -> None:
    first = InMemoryStorage.named(memory_name)
    await first.put("k", b"v")
    held = storage_from_url(f"memory://{memory_name}")
    assert held is first
    await first.close()
    again = InMemoryStorage.named(memory_name)
    assert again is not first and again == first
    assert not again.closed and held.closed
    assert await again.get("k") == b"v"
    await again.put("k2", b"w")  # the same objects, one version counter
    _, token = await again.get_versioned("k2")
    assert int(token) > int((await again.get_versioned("k"))[1])
    assert InMemoryStorage.named(memory_name) is again
    assert pickle.loads(pickle.dumps(first)) is again
