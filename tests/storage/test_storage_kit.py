"""The shipped test kit: a backend written as anyone would passes it, and it ships cleanly.

``DictStorage`` implements only the abstract methods of ``Storage``, so the contract suite
also checks the base class's defaults (``put_new``, ``delete_many``, ``is_empty``, ``close``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icechunk_lib.errors import ObjectExistsError, ObjectNotFoundError, PreconditionFailedError
from icechunk_lib.storage import ObjectInfo, Storage, StorageCapabilities, check_key
from icechunk_lib.storage._base import check_byte_range, check_prefix, listed_after
from icechunk_lib.testing import StorageTests

ROOT = Path(__file__).resolve().parents[2]
_SHELVES: dict[str, dict[str, tuple[bytes, int]]] = {}


def _reopen(uid: str) -> DictStorage:
    return DictStorage(uid)


class DictStorage(Storage):
    """A third-party backend in miniature: a dict per id, no optional method overridden."""

    capabilities = StorageCapabilities(create_if_absent=True, compare_and_swap=True)

    def __init__(self, uid: str | None = None) -> None:
        self._uid = uid or uuid.uuid4().hex
        self._objects = _SHELVES.setdefault(self._uid, {})
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"dict://{self._uid}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DictStorage) and other._uid == self._uid

    def __hash__(self) -> int:
        return hash(self._uid)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_reopen, (self._uid,))

    def _entry(self, key: str) -> tuple[bytes, int]:
        self._check_open()
        try:
            return self._objects[check_key(key)]
        except KeyError:
            raise ObjectNotFoundError(key, self.url) from None

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        data = self._entry(key)[0]
        if byte_range is None:
            return data
        start, end = check_byte_range(byte_range)
        return data[start:end]

    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        data, version = self._entry(key)
        return data, str(version)

    def _write(self, key: str, data: bytes) -> str:
        version = max((v for _, v in self._objects.values()), default=0) + 1
        self._objects[key] = (bytes(data), version)
        return str(version)

    async def put(self, key: str, data: bytes) -> None:
        self._check_open()
        with self._lock:
            self._write(check_key(key), data)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        self._check_open()
        with self._lock:
            if check_key(key) in self._objects:
                raise ObjectExistsError(key)
            self._write(key, data)

    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        self._check_open()
        with self._lock:
            current = self._objects.get(check_key(key))
            if current is None or str(current[1]) != version:
                raise PreconditionFailedError(key)
            return self._write(key, data)

    async def exists(self, key: str) -> bool:
        self._check_open()
        return check_key(key) in self._objects

    async def size(self, key: str) -> int:
        return len(self._entry(key)[0])

    async def delete(self, key: str) -> None:
        self._check_open()
        with self._lock:
            self._objects.pop(check_key(key), None)

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        now = datetime.now(UTC)
        infos = [
            ObjectInfo(key, len(data), now)
            for key, (data, _) in list(self._objects.items())
            if key.startswith(prefix)
        ]
        for info in infos if start_after is None else listed_after(infos, start_after):
            yield info

    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        self._check_open()
        return self._list(check_prefix(prefix), start_after)


class TestDictStorage(StorageTests):
    @pytest.fixture
    def storage(self) -> Storage:
        return DictStorage()


class TestClosingFixture(StorageTests):
    """A fixture that closes its storage afterwards, as a backend with connections would."""

    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        async with DictStorage() as storage:
            yield storage


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_importing_the_library_loads_no_test_tools_or_backends() -> None:
    _run(
        "import sys, icechunk_lib, icechunk_lib.storage;"
        "from icechunk_lib.storage import Storage, storage_from_url;"
        "bad = {'pytest', 'icechunk_lib.testing', 'icechunk_lib.storage.local',"
        " 'icechunk_lib.storage.memory'} & set(sys.modules);"
        "assert not bad, bad"
    )


def test_backends_load_when_used() -> None:
    _run(
        "import sys; from icechunk_lib.storage import storage_from_url, InMemoryStorage;"
        "assert 'icechunk_lib.storage.memory' in sys.modules;"
        "assert 'icechunk_lib.storage.local' not in sys.modules;"
        "storage_from_url('./somewhere');"
        "assert 'icechunk_lib.storage.local' in sys.modules"
    )


def test_the_kit_depends_on_nothing_in_tests() -> None:
    kit = ROOT / "icechunk_lib" / "testing"
    local = {p.stem for p in (ROOT / "tests").rglob("*.py")} | {"tests", "conftest"}
    for path in kit.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in local, (path.name, name)


def test_the_kit_is_packaged() -> None:
    from setuptools import find_packages

    assert "icechunk_lib.testing" in find_packages(str(ROOT), include=["icechunk_lib*"])
