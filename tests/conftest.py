"""Shared fixtures: one ``storage`` fixture parametrised over every writable backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import s3_servers
from s3_servers import S3Server

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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, for the whole test run."""
    server = s3_servers.start("moto")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[S3Server]:
    """A SeaweedFS server with its S3 gateway on free loopback ports, for the whole run."""
    server = s3_servers.start("seaweedfs")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_auth_server() -> Iterator[S3Server]:
    """A SeaweedFS that checks credentials (the test keys, and a reader that may only read
    and list); the others accept any, so that a proxy may rewrite requests to them."""
    server = s3_servers.start("seaweedfs", checks_credentials=True)
    yield server
    server.stop()


@pytest.fixture(params=s3_servers.SERVER_KINDS)
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each real S3-compatible server in turn (started once per run, on first use)."""
    server: S3Server = request.getfixturevalue(f"{request.param.replace('-', '_')}_server")
    return server


SharedLocation = tuple[str, ic.Storage]
"""A repository location other processes can open: its URL for ``crash_worker.open_storage``
(a local path or ``s3://bucket/prefix``) and a storage on it for this process."""


@pytest.fixture
def shared_location(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], SharedLocation]:
    """Fresh locations for tests with worker processes, on the backend given by indirect
    parametrisation: ``"local"`` (the default) or an S3 server kind. For S3 the children
    find the credentials and endpoint in the environment (a pickle carries no secret)."""
    kind = getattr(request, "param", "local")
    counter = itertools.count()
    if kind == "local":

        def local() -> SharedLocation:
            path = tmp_path / f"shared{next(counter)}"
            return str(path), ic.local_filesystem_storage(path)

        return local
    server: S3Server = request.getfixturevalue(f"{kind.replace('-', '_')}_server")
    for name, value in (
        ("AWS_ACCESS_KEY_ID", s3_servers.ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3_servers.SECRET_KEY),
        ("AWS_DEFAULT_REGION", s3_servers.REGION),
        ("ICK_TEST_S3_ENDPOINT", server.endpoint_url),
    ):
        monkeypatch.setenv(name, value)

    def s3() -> SharedLocation:
        prefix = server.fresh_prefix()
        return f"s3://{s3_servers.BUCKET}/{prefix}", s3_servers.s3_at(server, prefix)

    return s3
