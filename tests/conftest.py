"""Shared fixtures: one ``storage`` fixture parametrised over every writable backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import icechunk_lib as ic

BACKENDS = ["memory", "local"]


def make_storage(kind: str, path: Path) -> ic.Storage:
    """A fresh, empty storage of the given backend kind."""
    if kind == "memory":
        return ic.in_memory_storage()
    if kind == "local":
        (path / "repo").mkdir(parents=True)
        return ic.local_filesystem_storage(path / "repo")
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ic.Storage:
    """An empty storage on each backend in turn."""
    return make_storage(request.param, tmp_path)


@pytest.fixture
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], ic.Storage]:
    """Build storages of a chosen backend inside this test's temporary directory."""
    counter = iter(range(1_000_000))

    def build(kind: str) -> ic.Storage:
        return make_storage(kind, tmp_path / f"s{next(counter)}")

    return build


@pytest.fixture
def repo(storage: ic.Storage) -> ic.Repository:
    """A new repository on each backend in turn."""
    return ic.Repository.create(storage)
