"""Icechunk's StorageSettings in the repository config, their translation into the storage
layer's StorageTuning, and what S3Storage does with them (requests counted by the proxy)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import s3_servers
from s3_proxy import S3FaultProxy
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.errors import ConfigError, ObjectExistsError, PreconditionFailedError
from icechunk_lib.format.config import RepositoryConfig, decode_config, encode_config
from icechunk_lib.storage.s3 import S3Storage
from icechunk_lib.storage.tuning import StorageTuning
from icechunk_lib.storage_settings import tuning_from_settings

MIB = 1024 * 1024


# --- the config ----------------------------------------------------------------------------


def test_storage_settings_keep_icechunks_names_and_defaults() -> None:
    settings = ic.StorageSettings(
        concurrency=ic.StorageConcurrencySettings(max_concurrent_requests_for_object=4),
        retries=ic.StorageRetriesSettings(max_tries=3, initial_backoff_ms=50),
        unsafe_use_conditional_create=False,
        minimum_size_for_multipart_upload=8 * MIB,
    )
    assert settings.retries is not None
    assert settings.retries.max_backoff_ms is None
    assert ic.StorageSettings().concurrency is None
    assert ic.StorageRetriesSettings(5).max_tries == 5  # positional, as in Icechunk
    config = RepositoryConfig(storage=settings)
    assert decode_config(encode_config(config), path="config") == config


def test_set_storage_keys_from_text() -> None:
    config = (
        RepositoryConfig()
        .with_value("storage.retries.max_tries", "5")
        .with_value("storage.concurrency.ideal_concurrent_request_size", "4_000_000")
        .with_value("storage.unsafe_use_conditional_update", "false")
        .with_value("storage.storage_class", "STANDARD_IA")
    )
    assert config.storage is not None
    assert config.storage.retries is not None
    assert config.storage.retries.max_tries == 5
    assert config.storage.concurrency is not None
    assert config.storage.concurrency.ideal_concurrent_request_size == 4_000_000
    assert config.storage.unsafe_use_conditional_update is False
    assert config.storage.storage_class == "STANDARD_IA"
    assert config.to_dict()["storage"]["retries"]["max_tries"] == 5
    unset = config.with_value("storage.retries.max_tries", "none")
    assert unset.storage is not None
    assert unset.storage.retries is not None
    assert unset.storage.retries.max_tries is None
    assert decode_config(encode_config(config), path="config") == config


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("storage.retries.max_tries", "0", ">= 1"),
        ("storage.retries.max_tries", "many", "integer"),
        ("storage.unsafe_use_conditional_create", "maybe", "true or false"),
        ("storage.retries.nope", "1", "unknown config key"),
        ("storage.minimum_size_for_multipart_upload", "-1", ">= 1"),
    ],
)
def test_bad_storage_values_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        RepositoryConfig().with_value(key, value)
    assert key in str(info.value)


def test_unknown_key_lists_the_storage_keys() -> None:
    with pytest.raises(ConfigError, match=r"storage\.retries\.max_tries"):
        RepositoryConfig().with_value("nope", "1")


def test_a_config_without_storage_settings_is_written_as_before() -> None:
    assert b"storage" not in encode_config(RepositoryConfig())
    assert RepositoryConfig().storage is None


# --- the translation -------------------------------------------------------------------------


def test_tuning_from_settings() -> None:
    assert tuning_from_settings(None) == StorageTuning()
    assert tuning_from_settings(ic.StorageSettings()) == StorageTuning()
    tuning = tuning_from_settings(
        ic.StorageSettings(
            concurrency=ic.StorageConcurrencySettings(
                max_concurrent_requests_for_object=3, ideal_concurrent_request_size=MIB
            ),
            retries=ic.StorageRetriesSettings(
                max_tries=2, initial_backoff_ms=20, max_backoff_ms=500
            ),
            unsafe_use_conditional_create=False,
            unsafe_use_conditional_update=True,
            storage_class="STANDARD_IA",
            chunks_storage_class="GLACIER_IR",
            minimum_size_for_multipart_upload=6 * MIB,
        )
    )
    assert tuning == StorageTuning(
        max_tries=2,
        initial_backoff_seconds=0.02,
        max_backoff_seconds=0.5,
        max_concurrent_requests_for_object=3,
        ideal_concurrent_request_size=MIB,
        minimum_size_for_multipart_upload=6 * MIB,
        use_conditional_create=False,
        use_conditional_update=True,
        storage_class="STANDARD_IA",
        chunks_storage_class="GLACIER_IR",
    )


def test_tuning_defaults() -> None:
    tuning = StorageTuning()
    assert (tuning.max_tries, tuning.initial_backoff_seconds, tuning.max_backoff_seconds) == (
        10,
        0.1,
        10.0,
    )
    assert tuning.minimum_size_for_multipart_upload == 100_000_000
    assert tuning.ideal_concurrent_request_size == 12 * MIB
    with pytest.raises(ValueError, match="max_tries"):
        StorageTuning(max_tries=0)


async def test_other_backends_ignore_tuning_and_need_no_probe() -> None:
    storage = ic.in_memory_storage()
    storage.apply_tuning(StorageTuning(max_tries=1))
    assert await storage.probe_capabilities() == storage.capabilities
    assert storage.unsafe_writes is False


# --- S3Storage under tuning ------------------------------------------------------------------


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(s3_server.endpoint_url) as running:
        yield running


@pytest.fixture
async def storage(proxy: S3FaultProxy, s3_server: S3Server) -> AsyncIterator[S3Storage]:
    options = {**s3_server.storage_kwargs(), "endpoint_url": proxy.endpoint_url}
    made = ic.s3_storage(bucket=s3_servers.BUCKET, prefix=s3_server.fresh_prefix(), **options)
    assert isinstance(made, S3Storage)
    async with made:
        yield made


async def test_multipart_upload_and_ranged_reads(storage: S3Storage, proxy: S3FaultProxy) -> None:
    storage.apply_tuning(
        StorageTuning(
            minimum_size_for_multipart_upload=6 * MIB,
            ideal_concurrent_request_size=MIB,
            max_concurrent_requests_for_object=3,
        )
    )
    data = bytes(range(256)) * (7 * MIB // 256)
    await storage.put_new("chunks/big", data)
    assert [s.method for s in proxy.requests(path_contains="chunks/big")] == [
        "POST",  # create the upload
        "PUT",  # two parts of 5 MiB at least
        "PUT",
        "POST",  # complete it, If-None-Match: *
    ]
    assert b"if-none-match" in proxy.requests(path_contains="chunks/big")[-1].headers
    before = len(proxy.requests("GET"))
    assert await storage.get("chunks/big") == data
    assert len(proxy.requests("GET")) - before == 7  # 1 MiB pieces
    assert (
        await storage.get("chunks/big", (MIB - 10, 3 * MIB + 10)) == data[MIB - 10 : 3 * MIB + 10]
    )
    with pytest.raises(ObjectExistsError):  # the completing request is conditional
        await storage.put_new("chunks/big", data[::-1])
    assert await storage.get("chunks/big") == data
    small = len(proxy.requests())
    await storage.put("chunks/small", b"x" * 100)
    assert [s.method for s in proxy.requests()[small:]] == ["PUT"]


async def test_a_large_swap_is_one_conditional_put(storage: S3Storage, proxy: S3FaultProxy) -> None:
    storage.apply_tuning(StorageTuning(minimum_size_for_multipart_upload=6 * MIB))
    data = b"r" * (7 * MIB)
    await storage.put("refs/big", data)
    _, token = await storage.get_versioned("refs/big")
    await storage.put_if_match("refs/big", data[:-1], token)
    with pytest.raises(PreconditionFailedError):
        await storage.put_if_match("refs/big", data, token)
    swaps = [s for s in proxy.requests(path_contains="refs/big") if b"if-match" in s.headers]
    assert [s.method for s in swaps] == ["PUT", "PUT"]


async def test_max_tries_from_settings(storage: S3Storage, proxy: S3FaultProxy) -> None:
    settings = RepositoryConfig().with_value("storage.retries.max_tries", "2")
    settings = settings.with_value("storage.retries.max_backoff_ms", "10")
    storage.apply_tuning(tuning_from_settings(settings.storage))
    proxy.slow_down(10, path_contains="config")
    with pytest.raises(ic.StorageError, match="after 2 tries"):
        await storage.get("config")
    assert len(proxy.requests("GET", "config")) == 2


async def test_conditions_turned_off_are_unsafe_writes(
    storage: S3Storage, proxy: S3FaultProxy
) -> None:
    assert not storage.unsafe_writes
    storage.apply_tuning(
        tuning_from_settings(
            ic.StorageSettings(
                unsafe_use_conditional_create=False, unsafe_use_conditional_update=False
            )
        )
    )
    assert storage.unsafe_writes
    assert not storage.capabilities.create_if_absent
    assert not storage.capabilities.compare_and_swap
    await storage.put_if_absent("refs/tag.v1", b"1")
    with pytest.raises(ObjectExistsError):
        await storage.put_if_absent("refs/tag.v1", b"2")
    _, token = await storage.get_versioned("refs/tag.v1")
    await storage.put_if_match("refs/tag.v1", b"3", token)
    puts = proxy.requests("PUT", "refs/tag.v1")
    assert len(puts) == 2
    assert all(b"if-none-match" not in s.headers and b"if-match" not in s.headers for s in puts)
    storage.apply_tuning(StorageTuning())
    assert storage.capabilities.safe_writes
    assert not storage.unsafe_writes
