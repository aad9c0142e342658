"""S3Storage through a fault-injecting proxy (tests/s3_proxy.py) in front of real servers:
lost replies, throttling, give-up errors, servers that ignore conditions, unsafe writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import s3_servers
import s3fs
from s3_proxy import S3FaultProxy
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.errors import (
    ObjectExistsError,
    PreconditionFailedError,
    ReadOnlyStorageError,
    StorageError,
)
from icechunk_lib.storage import s3 as s3_module
from icechunk_lib.storage._base import StorageCapabilities
from icechunk_lib.storage.s3 import S3Storage
from icechunk_lib.storage.tuning import StorageTuning

FAST = StorageTuning(max_tries=4, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(s3_server.endpoint_url) as running:
        yield running


def through(proxy: S3FaultProxy, server: S3Server, prefix: str, **kwargs: object) -> S3Storage:
    """A storage at ``prefix`` reaching ``server`` through ``proxy``."""
    options = {**server.storage_kwargs(), "endpoint_url": proxy.endpoint_url, **kwargs}
    storage = ic.s3_storage(bucket=s3_servers.BUCKET, prefix=prefix, **options)
    assert isinstance(storage, S3Storage)
    storage.apply_tuning(FAST)
    return storage


@pytest.fixture
async def storage(proxy: S3FaultProxy, s3_server: S3Server) -> AsyncIterator[S3Storage]:
    async with through(proxy, s3_server, s3_server.fresh_prefix()) as opened:
        yield opened


@pytest.fixture
async def direct(s3_server: S3Server, storage: S3Storage) -> AsyncIterator[S3Storage]:
    """Another writer on the same prefix, straight to the server (no faults)."""
    other = ic.s3_storage(
        bucket=s3_servers.BUCKET, prefix=storage.prefix, **s3_server.storage_kwargs()
    )
    assert isinstance(other, S3Storage)
    async with other:
        yield other


# --- lost replies ------------------------------------------------------------------------


async def test_lost_reply_to_create_is_recognised(storage: S3Storage, proxy: S3FaultProxy) -> None:
    rule = proxy.drop_replies(1, method="PUT", path_contains="refs/tag.v1")
    await storage.put_if_absent("refs/tag.v1", b"mine")  # the retry gets 412: our own bytes
    assert rule.hits == 1
    assert len(proxy.requests("PUT", "refs/tag.v1")) == 2
    assert await storage.get("refs/tag.v1") == b"mine"


async def test_lost_reply_to_swap_is_recognised(storage: S3Storage, proxy: S3FaultProxy) -> None:
    await storage.put("refs/branch.main", b"v1")
    _, token = await storage.get_versioned("refs/branch.main")
    proxy.drop_replies(1, method="PUT", path_contains="refs/branch.main")
    new_token = await storage.put_if_match("refs/branch.main", b"v2", token)
    assert await storage.get_versioned("refs/branch.main") == (b"v2", new_token)
    assert len(proxy.requests("PUT", "refs/branch.main")) == 3  # put, lost swap, retry


async def test_lost_reply_then_someone_else_wrote_is_still_a_conflict(
    storage: S3Storage, proxy: S3FaultProxy, s3_server: S3Server
) -> None:
    await storage.put("refs/branch.main", b"v1")
    _, token = await storage.get_versioned("refs/branch.main")
    other = s3fs.S3FileSystem(**s3_server.client_kwargs())
    path = f"{s3_servers.BUCKET}/{storage.prefix}/refs/branch.main"
    # Our swap lands and its reply is lost; before the retry, another writer writes on top.
    proxy.drop_replies(
        1, path_contains="refs/branch.main", then=lambda: other.pipe_file(path, b"theirs")
    )
    with pytest.raises(PreconditionFailedError) as info:
        await storage.put_if_match("refs/branch.main", b"mine", token)
    assert info.value.outcome_unknown  # it may have landed: the caller checks ancestry
    assert await storage.get("refs/branch.main") == b"theirs"


async def test_create_of_a_key_someone_holds_after_lost_reply_is_a_conflict(
    storage: S3Storage, direct: S3Storage, proxy: S3FaultProxy
) -> None:
    await direct.put_if_absent("refs/tag.v1", b"theirs")
    proxy.drop_replies(1, method="PUT", path_contains="refs/tag.v1")
    # The first try reaches the server (and fails there, 412), its reply is lost; the
    # retry fails too, and the bytes are not ours.
    with pytest.raises(ObjectExistsError) as info:
        await storage.put_if_absent("refs/tag.v1", b"mine")
    assert info.value.outcome_unknown
    assert await direct.get("refs/tag.v1") == b"theirs"


async def test_a_plain_conflict_is_not_marked_unknown(
    storage: S3Storage, direct: S3Storage
) -> None:
    await direct.put_if_absent("refs/tag.v1", b"theirs")
    with pytest.raises(ObjectExistsError) as exists:
        await storage.put_if_absent("refs/tag.v1", b"mine")
    assert not exists.value.outcome_unknown
    with pytest.raises(PreconditionFailedError) as failed:
        await storage.put_if_match("refs/tag.v1", b"mine", '"0123456789abcdef"')
    assert not failed.value.outcome_unknown


# --- throttling and giving up --------------------------------------------------------------


async def test_slow_down_is_retried_then_succeeds(storage: S3Storage, proxy: S3FaultProxy) -> None:
    rule = proxy.slow_down(3, path_contains="chunks/c1")
    await storage.put_new("chunks/c1", b"data")
    assert await storage.get("chunks/c1") == b"data"
    assert rule.hits == 3
    assert [s.action for s in proxy.requests("PUT", "chunks/c1")] == ["slow_down"] * 3 + ["forward"]


async def test_gives_up_after_max_tries_naming_the_key(
    storage: S3Storage, proxy: S3FaultProxy
) -> None:
    proxy.slow_down(100, path_contains="snapshots/S1")
    with pytest.raises(StorageError) as info:
        await storage.get("snapshots/S1")
    message = str(info.value)
    assert "'snapshots/S1'" in message
    assert "4 tries" in message
    assert "SlowDown" in message
    assert len(proxy.requests("GET", "snapshots/S1")) == FAST.max_tries


async def test_precondition_and_missing_are_never_retried(
    storage: S3Storage, proxy: S3FaultProxy
) -> None:
    await storage.put_if_absent("refs/tag.v1", b"1")
    with pytest.raises(ObjectExistsError):
        await storage.put_if_absent("refs/tag.v1", b"2")
    with pytest.raises(ic.StorageError):
        await storage.get("missing")
    assert len(proxy.requests("PUT", "refs/tag.v1")) == 2
    assert len(proxy.requests("GET", "missing")) == 1


# --- servers that ignore conditions ----------------------------------------------------------


async def test_probe_finds_a_server_honouring_conditions(
    storage: S3Storage, proxy: S3FaultProxy
) -> None:
    s3_module._probed.clear()
    found = await storage.probe_capabilities()
    assert found == StorageCapabilities(create_if_absent=True, compare_and_swap=True)
    probes = proxy.requests(path_contains=s3_module.PROBE_PREFIX)
    assert probes  # it wrote, and deleted, its probe object
    assert probes[-1].method == "DELETE"
    assert [i.key async for i in storage.list("")] == []
    again = len(proxy.requests())
    assert await storage.probe_capabilities() == found  # once per process
    assert len(proxy.requests()) == again


async def test_probe_detects_stripped_conditions_and_writes_are_refused(
    storage: S3Storage, proxy: S3FaultProxy
) -> None:
    s3_module._probed.clear()
    proxy.strip_conditions()
    found = await storage.probe_capabilities()
    assert not found.create_if_absent
    assert not found.compare_and_swap
    assert storage.capabilities == found
    assert not storage.unsafe_writes
    with pytest.raises(ReadOnlyStorageError, match="lacks atomic create-if-absent"):
        await storage.put_if_absent("refs/tag.v1", b"1")
    assert not await storage.exists("refs/tag.v1")
    s3_module._probed.clear()


async def test_unsafe_writes_emulate_conditions(proxy: S3FaultProxy, s3_server: S3Server) -> None:
    s3_module._probed.clear()
    proxy.strip_conditions()
    async with through(
        proxy, s3_server, s3_server.fresh_prefix(), allow_unsafe_writes=True
    ) as storage:
        assert storage.unsafe_writes
        found = await storage.probe_capabilities()
        assert not found.safe_writes
        await storage.put_if_absent("refs/tag.v1", b"1")
        with pytest.raises(ObjectExistsError):  # a HEAD first: caught when not racing
            await storage.put_if_absent("refs/tag.v1", b"2")
        _, token = await storage.get_versioned("refs/tag.v1")
        await storage.put("refs/tag.v1", b"other")
        with pytest.raises(PreconditionFailedError):  # the ETag is compared first
            await storage.put_if_match("refs/tag.v1", b"3", token)
        assert await storage.get("refs/tag.v1") == b"other"
        assert all(
            b"if-none-match" not in s.headers and b"if-match" not in s.headers
            for s in proxy.requests("PUT", "refs/tag.v1")
        )
    s3_module._probed.clear()
