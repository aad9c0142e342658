"""S3Storage on real servers (moto and SeaweedFS): the storage contract and S3 specifics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import s3_servers
import s3fs
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.errors import (
    InvalidStorageURLError,
    LocationNotFoundError,
    PreconditionFailedError,
)
from icechunk_lib.storage import s3 as s3_module
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


@pytest.fixture
async def storage(s3_server: S3Server) -> AsyncIterator[S3Storage]:
    async with s3_storage(s3_server) as opened:
        yield opened


def raw(server: S3Server) -> s3fs.S3FileSystem:
    """Another client on the same server, for writes ick did not make."""
    return s3fs.S3FileSystem(**server.client_kwargs())


async def test_stale_etag_really_fails(storage: S3Storage, s3_server: S3Server) -> None:
    await storage.put("refs/branch.main", b"v1")
    _, stale = await storage.get_versioned("refs/branch.main")
    raw(s3_server).pipe_file(f"{s3_servers.BUCKET}/{storage.prefix}/refs/branch.main", b"v2")
    with pytest.raises(PreconditionFailedError):
        await storage.put_if_match("refs/branch.main", b"mine", stale)
    assert await storage.get("refs/branch.main") == b"v2"
    assert stale.startswith('"')  # the ETag, as S3 sends it


async def test_reserved_keys_are_not_listed_and_old_probes_are_removed(
    storage: S3Storage, s3_server: S3Server
) -> None:
    fs = raw(s3_server)
    probe = f"{s3_servers.BUCKET}/{storage.prefix}/{s3_module.PROBE_PREFIX}left"
    fs.pipe_file(probe, b"p")
    await storage.put("config", b"c")
    assert [i.key async for i in storage.list("")] == ["config"]
    assert await storage.remove_leftovers(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await storage.remove_leftovers(datetime.now(UTC) + timedelta(hours=1)) == 1
    assert not fs.exists(probe)
    assert await storage.get("config") == b"c"


async def test_listing_and_deleting_span_pages(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "LIST_PAGE", 2)
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 2)
    keys = [f"chunks/c{i}" for i in range(5)]
    for key in keys:
        await storage.put(key, b"v")
    assert sorted([i.key async for i in storage.list("chunks/")]) == keys
    assert [i.key async for i in storage.list("chunks/", start_after="chunks/c1")] == keys[2:]
    assert await storage.delete_many(keys[:4]) == 4
    assert [i.key async for i in storage.list("")] == ["chunks/c4"]


async def test_missing_bucket_is_named(s3_server: S3Server) -> None:
    options = s3_server.storage_kwargs()
    async with ic.s3_storage(bucket="no-such-bucket", prefix="p", **options) as storage:
        with pytest.raises(LocationNotFoundError, match="no-such-bucket"):
            await storage.create_root()
        with pytest.raises(LocationNotFoundError, match="no-such-bucket"):
            await storage.put_if_absent("config", b"c")


async def test_identity_and_repr(s3_server: S3Server) -> None:
    first = s3_storage(s3_server)
    same = ic.s3_storage(
        bucket=s3_servers.BUCKET, prefix=f"/{first.prefix}/", **s3_server.storage_kwargs()
    )
    assert same == first
    assert hash(same) == hash(first)
    assert first.url == f"s3://{s3_servers.BUCKET}/{first.prefix}"
    assert repr(first) == f"S3Storage({first.url!r}, endpoint_url={s3_server.endpoint_url!r})"
    assert first != s3_storage(s3_server)
    with pytest.raises(InvalidStorageURLError):
        ic.s3_storage(bucket=s3_servers.BUCKET, prefix="a/../b", **s3_server.storage_kwargs())


async def test_one_client_per_event_loop(storage: S3Storage) -> None:
    await storage.put("k", b"v")

    def in_another_loop() -> bytes:
        return asyncio.run(storage.get("k"))

    assert await asyncio.to_thread(in_another_loop) == b"v"
    assert len(storage._connections) == 2
    assert await asyncio.to_thread(in_another_loop) == b"v"  # a new loop: the ended one goes
    assert len(storage._connections) == 2
    assert await storage.get("k") == b"v"
