"""A repository served read-only by a real ``http.server`` on 127.0.0.1, opened by URL.

python's http.server ignores ``Range`` and, with directory listings on, serves an index page
for each directory; the second server here has no index pages, as most static hosts.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import ReadOnlyStorageError, StorageError
from icechunk_lib.storage.fsspec_storage import FsspecStorage


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _NoIndex(_Quiet):
    """A static host without directory index pages."""

    def list_directory(self, path: str | Any) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "no listing")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A repository on disk: main with an array, a tag and a second branch."""
    root = tmp_path_factory.mktemp("http") / "site"
    repo = ic.Repository.create(ic.local_filesystem_storage(root / "repo"))
    session = repo.writable_session("main")
    array = zarr.create_array(session.store, name="temps", shape=(20,), chunks=(5,), dtype="i4")
    array[:] = np.arange(20)
    first = session.commit("Add temps")
    repo.create_tag("v1", first)
    repo.create_branch("dev", first)
    with repo.transaction("main", message="Double") as store:
        zarr.open_array(store, path="temps")[:] = np.arange(20) * 2
    return {"root": str(root), "first": first, "second": repo.lookup_branch("main")}


def _serve(root: str, handler: type[SimpleHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def site(served: dict[str, str]) -> Iterator[str]:
    yield from _serve(served["root"], _Quiet)


@pytest.fixture(scope="module")
def bare_site(served: dict[str, str]) -> Iterator[str]:
    yield from _serve(served["root"], _NoIndex)


def test_a_served_repository_reads_whole(site: str, served: dict[str, str]) -> None:
    storage = ic.storage_from_url(f"{site}/repo")
    assert isinstance(storage, FsspecStorage)
    repo = ic.Repository.open(storage)
    assert repo.list_branches() == {"main", "dev"}
    assert repo.list_tags() == {"v1"}
    assert [s.message for s in repo.ancestry(branch="main")] == [
        "Double",
        "Add temps",
        "Repository initialized",
    ]
    now = zarr.open_array(repo.readonly_session(branch="main").store, path="temps", mode="r")
    assert (now[:] == np.arange(20) * 2).all()
    then = zarr.open_array(repo.readonly_session(tag="v1").store, path="temps", mode="r")
    assert (then[3:12] == np.arange(3, 12)).all()
    assert repo.resolve(served["first"][:8]) == served["first"]  # a prefix: listing


def test_a_served_repository_refuses_writes(site: str) -> None:
    repo = ic.Repository.open(ic.storage_from_url(f"{site}/repo"))
    with pytest.raises(ReadOnlyStorageError):
        repo.create_tag("v2", repo.lookup_branch("main"))
    with pytest.raises(ReadOnlyStorageError):
        repo.writable_session("main")
    assert repo.list_tags() == {"v1"}


async def test_ranges_from_a_server_that_ignores_range(site: str, served: dict[str, str]) -> None:
    storage = ic.storage_from_url(f"{site}/repo")
    whole = (Path(served["root"]) / "repo" / "config").read_bytes()
    assert await storage.get("config") == whole
    assert await storage.get("config", (2, 7)) == whole[2:7]
    assert await storage.get("config", (3, None)) == whole[3:]
    assert await storage.get("config", (len(whole) + 5, None)) == b""
    assert await storage.size("config") == len(whole)
    assert not await storage.exists("nope")


def test_without_index_pages_names_work_and_listing_says_why(
    bare_site: str, served: dict[str, str]
) -> None:
    repo = ic.Repository.open(ic.storage_from_url(f"{bare_site}/repo"))
    assert repo.lookup_branch("main") == served["second"]
    assert repo.lookup_tag("v1") == served["first"]
    array = zarr.open_array(repo.readonly_session(tag="v1").store, path="temps", mode="r")
    assert (array[:] == np.arange(20)).all()
    now = zarr.open_array(repo.readonly_session(snapshot_id=served["second"]).store, path="temps")
    assert (now[:] == np.arange(20) * 2).all()
    for needs_listing in (repo.list_branches, lambda: list(repo.ancestry(branch="main"))):
        with pytest.raises(StorageError, match="does not list directories") as info:
            needs_listing()
        assert "at a branch, tag or full snapshot id works without listing" in str(info.value)


class _Logged(_Quiet):
    """Keeps an access log: method and ``Range`` header of every request."""

    log: ClassVar[list[tuple[str, str | None]]] = []

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log.append((self.command, self.headers.get("Range")))


@pytest.fixture
def logged_site(served: dict[str, str]) -> Iterator[str]:
    _Logged.log.clear()
    yield from _serve(served["root"], _Logged)


async def test_a_ranged_read_is_one_request(logged_site: str, served: dict[str, str]) -> None:
    """No size lookup before a ranged read, even from a server that ignores ``Range``."""
    storage = ic.storage_from_url(f"{logged_site}/repo")
    whole = (Path(served["root"]) / "repo" / "config").read_bytes()
    size = len(whole)
    for start, end in [(2, 7), (3, None), (0, 4), (size - 2, size + 40)]:
        _Logged.log.clear()
        assert await storage.get("config", (start, end)) == whole[start:end]
        assert [method for method, _ in _Logged.log] == ["GET"], (start, end, _Logged.log)
        assert _Logged.log[0][1] is not None
    for start, end in [(size, None), (size + 5, size + 9)]:
        _Logged.log.clear()
        assert await storage.get("config", (start, end)) == b""
        assert len(_Logged.log) == 1
