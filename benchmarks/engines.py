"""One small adapter per engine, so the cases read the same for ick, Icechunk and zarr.

* ``ick`` is this project (``icechunk_lib``),
* ``icechunk`` is Icechunk 1.1 (the ``icechunk`` package),
* ``zarr`` is zarr-python's own plain store for the backend (``MemoryStore``, ``LocalStore``,
  ``FsspecStore`` on s3fs for S3): no versions and no commits, the floor the others are
  measured against.

On the ``s3`` backend every repository (or plain store) is a fresh prefix in the bucket of the
run's SeaweedFS server (``benchmarks/s3.py``); ``counted=True`` routes it through the proxy
that counts its requests.

A ``Repo`` is one repository (or plain store) on one backend. ``writable()`` starts a session
and returns its store, ``commit()`` publishes it (a no-op for a plain store), ``readonly()``
gives a read-only store at the tip of ``main`` and ``reopen()`` the same data through fresh
objects with cold caches.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

from zarr.abc.store import Store

__all__ = [
    "BACKENDS",
    "ENGINES",
    "LABELS",
    "Repo",
    "create_repo",
    "import_engine",
    "open_repo",
]

ENGINES = ("ick", "icechunk", "zarr")
LABELS = {"ick": "ick", "icechunk": "Icechunk", "zarr": "zarr plain store"}
BACKENDS = ("memory", "local", "s3")


def import_engine(engine: str) -> ModuleType | None:
    """The engine's module, fully imported (so lazy imports are not billed to a timing)."""
    if engine == "ick":
        import icechunk_lib
        import icechunk_lib.format.manifest
        import icechunk_lib.repository
        import icechunk_lib.session
        import icechunk_lib.store

        return icechunk_lib
    if engine == "icechunk":
        # Icechunk warns on every local repository that its local storage is not safe for
        # concurrent commits; the benchmark commits from one thread.
        os.environ.setdefault("ICECHUNK_LOG", "error")
        import icechunk

        icechunk.set_logs_filter("error")
        return icechunk
    if engine == "zarr":
        return None
    raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


class Repo(ABC):
    """A repository (or plain store) of one engine on one backend."""

    engine: str
    versioned: bool
    prefix: str | None = None
    """The repository's prefix in the bucket on the ``s3`` backend (None elsewhere)."""

    @abstractmethod
    def writable(self) -> Store:
        """Start a writable session on ``main`` and return its store."""

    @abstractmethod
    def commit(self, message: str) -> None:
        """Commit the session ``writable`` started (a plain store has nothing to do)."""

    @abstractmethod
    def readonly(self) -> Store:
        """A read-only store at the tip of ``main``."""

    @abstractmethod
    def reopen(self) -> Repo:
        """The same repository through new objects: nothing cached in this process."""

    def ancestry(self, limit: int) -> int:
        """Walk up to ``limit`` entries of ``main``'s history; return how many there were."""
        raise NotImplementedError(f"{self.engine} has no history")


class VersionedRepo(Repo):
    """ick and Icechunk share the Icechunk 1.1 API, so one adapter serves both."""

    versioned = True

    def __init__(
        self, engine: str, module: Any, storage: Any, repo: Any, prefix: str | None = None
    ) -> None:
        self.engine = engine
        self._module = module
        self._storage = storage
        self._repo = repo
        self._session: Any = None
        self.prefix = prefix

    def writable(self) -> Store:
        self._session = self._repo.writable_session("main")
        store: Store = self._session.store
        return store

    def commit(self, message: str) -> None:
        if self._session is None:
            raise RuntimeError("commit() without writable()")
        self._session.commit(message)
        self._session = None

    def readonly(self) -> Store:
        store: Store = self._repo.readonly_session(branch="main").store
        return store

    def reopen(self) -> Repo:
        repo = self._module.Repository.open(self._storage)
        return VersionedRepo(self.engine, self._module, self._storage, repo, self.prefix)

    def ancestry(self, limit: int) -> int:
        return sum(1 for _ in islice(self._repo.ancestry(branch="main"), limit))


class PlainRepo(Repo):
    """zarr's own store for the backend: a dict in memory, a directory, or an S3 prefix."""

    engine = "zarr"
    versioned = False

    def __init__(
        self, backend: str, path: Path, prefix: str | None = None, counted: bool = False
    ) -> None:
        self._backend = backend
        self._path = path
        self._data: dict[str, Any] = {}
        self.prefix = prefix
        self._counted = counted

    def _store(self, read_only: bool) -> Store:
        from zarr.storage import LocalStore, MemoryStore

        if self.prefix is not None:
            from benchmarks import s3

            return s3.backend().fsspec_store(self.prefix, read_only, self._counted)
        if self._backend == "memory":
            return MemoryStore(self._data, read_only=read_only)
        return LocalStore(self._path, read_only=read_only)

    def writable(self) -> Store:
        return self._store(read_only=False)

    def commit(self, message: str) -> None:
        return None

    def readonly(self) -> Store:
        return self._store(read_only=True)

    def reopen(self) -> Repo:
        # Store objects are made afresh by writable()/readonly(); there is nothing to drop.
        return self


def _storage(module: Any, backend: str, path: Path, prefix: str | None, counted: bool) -> Any:
    if backend == "memory":
        return module.in_memory_storage()
    if backend == "local":
        return module.local_filesystem_storage(str(path))
    if backend == "s3":
        from benchmarks import s3

        server = s3.backend()
        return module.s3_storage(
            bucket=server.bucket, prefix=prefix, **server.storage_kwargs(counted=counted)
        )
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def create_repo(engine: str, backend: str, path: Path, counted: bool = False) -> Repo:
    """A new, empty repository (or plain store).

    ``path`` is the directory of the local backend; on ``s3`` it names the fresh prefix.
    ``counted`` (``s3`` only) sends the requests through the counting proxy.
    """
    module = import_engine(engine)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    prefix = None
    if backend == "s3":
        from benchmarks import s3

        prefix = s3.backend().new_prefix(path)
    if module is None:
        return PlainRepo(backend, path, prefix, counted)
    storage = _storage(module, backend, path, prefix, counted)
    return VersionedRepo(engine, module, storage, module.Repository.create(storage), prefix)


def open_repo(engine: str, path: Path) -> Repo:
    """An existing local repository (or plain store directory)."""
    module = import_engine(engine)
    if module is None:
        return PlainRepo("local", path)
    storage = _storage(module, "local", path, None, False)
    return VersionedRepo(engine, module, storage, module.Repository.open(storage))
