"""S3Storage on real servers (moto and SeaweedFS): the storage contract and S3 specifics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import s3_servers
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.storage.s3 import S3Storage
from icechunk_lib.testing.storage import StorageTests


def s3_storage(server: S3Server, **kwargs: object) -> S3Storage:
    """A storage under a fresh prefix of the test bucket."""
    options = {**server.storage_kwargs(), **kwargs}
    storage = ic.s3_storage(bucket=s3_servers.BUCKET, prefix=server.fresh_prefix(), **options)
    assert isinstance(storage, S3Storage)
    return storage


class TestS3Storage(StorageTests):
    @pytest.fixture
    async def storage(self, s3_server: S3Server) -> AsyncIterator[S3Storage]:
        async with s3_storage(s3_server) as storage:
            yield storage
