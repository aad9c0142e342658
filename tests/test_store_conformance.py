"""zarr-python's own store contract suite, run against IcechunkStore on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.testing.store import StoreTests

import icechunk_lib as ic
from icechunk_lib.store import IcechunkStore


class _IcechunkStoreTests(StoreTests[IcechunkStore, cpu.Buffer]):
    store_cls = IcechunkStore
    buffer_cls = cpu.Buffer

    def make_storage(self, tmp_path: Any) -> ic.Storage:
        raise NotImplementedError

    async def set(self, store: IcechunkStore, key: str, value: Buffer) -> None:
        # Bypass the store under test: write through a second store over the same session.
        await IcechunkStore(store.session, read_only=False).set(key, value)

    async def get(self, store: IcechunkStore, key: str) -> Buffer:
        other = IcechunkStore(store.session, read_only=True)
        result = await other.get(key, prototype=default_buffer_prototype())
        assert result is not None
        return result

    @pytest.fixture
    def store_kwargs(self, tmp_path: Any) -> dict[str, Any]:
        repo = ic.Repository.create(self.make_storage(tmp_path))
        return {"session": repo.writable_session("main"), "read_only": False}

    def test_store_repr(self, store: IcechunkStore) -> None:
        assert repr(store).startswith("IcechunkStore(<Session writable branch 'main'")

    def test_store_supports_writes(self, store: IcechunkStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: IcechunkStore) -> None:
        assert store.supports_listing


class TestStoreInMemory(_IcechunkStoreTests):
    def make_storage(self, tmp_path: Any) -> ic.Storage:
        return ic.in_memory_storage()


class TestStoreLocal(_IcechunkStoreTests):
    def make_storage(self, tmp_path: Any) -> ic.Storage:
        return ic.local_filesystem_storage(tmp_path / "repo")
