"""Repositories on the real S3-compatible test servers (moto and SeaweedFS, each in turn).

Every test gets a fresh prefix in the one bucket; the servers start once per run
(tests/conftest.py). Repository settings keep retries short, so a fault costs little time.
"""

from __future__ import annotations

import pytest
from s3_servers import S3Server, StorageFactory, s3_at

import icechunk_lib as ic


@pytest.fixture
def new_s3(s3_server: S3Server) -> StorageFactory:
    """Make storages on the server: a fresh prefix, or ``prefix=`` to share one."""

    def make(prefix: str | None = None, **kwargs: object) -> ic.Storage:
        return s3_at(s3_server, prefix or s3_server.fresh_prefix(), **kwargs)

    return make


@pytest.fixture
def s3(new_s3: StorageFactory) -> ic.Storage:
    """An empty location on each server in turn."""
    return new_s3()
