"""Object storage URLs: s3:// options and AWS environment variables, and fsspec protocols."""

from __future__ import annotations

import pytest
import s3_servers

from icechunk_lib.errors import InvalidStorageURLError, StorageError
from icechunk_lib.storage import storage_from_url
from icechunk_lib.storage.fsspec_storage import FsspecStorage
from icechunk_lib.storage.url import S3_OPTIONS, parse_bool, s3_keywords

SECRET = "s3cr3t-value"
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_text_options_become_typed_keywords() -> None:
    keywords = s3_keywords(
        "s3://bucket",
        {
            "endpoint_url": "http://127.0.0.1:9000",
            "allow_http": "true",
            "force_path_style": "YES",
            "anonymous": "0",
            "requester_pays": "off",
            "region": "eu-west-1",
            "network_stream_timeout_seconds": "30",
            "secret_access_key": SECRET,
        },
    )
    assert keywords == {
        "endpoint_url": "http://127.0.0.1:9000",
        "allow_http": True,
        "force_path_style": True,
        "anonymous": False,
        "requester_pays": False,
        "region": "eu-west-1",
        "network_stream_timeout_seconds": 30,
        "secret_access_key": SECRET,
    }


@pytest.mark.parametrize("value", ["", "maybe", "tru", "2", "none"])
def test_booleans_are_parsed_strictly(value: str) -> None:
    with pytest.raises(InvalidStorageURLError, match=f"bad value {value!r} for storage option"):
        s3_keywords("s3://bucket", {"allow_http": value})
    with pytest.raises(ValueError, match="true or false"):
        parse_bool("allow_http", value)


def test_unknown_option_is_named_with_the_known_ones() -> None:
    with pytest.raises(InvalidStorageURLError) as info:
        storage_from_url("s3://bucket/p", storage_options={"secret_acess_key": SECRET})
    message = str(info.value)
    assert "unknown storage option 'secret_acess_key'" in message
    for known in S3_OPTIONS:
        assert known in message
    assert SECRET not in message + repr(info.value)


def test_a_bad_number_shows_no_secret_value() -> None:
    with pytest.raises(InvalidStorageURLError, match="network_stream_timeout_seconds"):
        s3_keywords("s3://bucket", {"network_stream_timeout_seconds": "soon"})


def test_aws_environment_fills_what_options_leave_out(monkeypatch: pytest.MonkeyPatch) -> None:
    assert s3_keywords("s3://bucket", {}) == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert s3_keywords("s3://bucket", {}) == {
        "endpoint_url": "http://127.0.0.1:9000",
        "allow_http": True,  # an http:// endpoint chosen in the environment
        "region": "eu-north-1",
    }
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.example.com")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert s3_keywords("s3://bucket", {}) == {
        "endpoint_url": "https://s3.example.com",
        "region": "ap-south-1",
    }
    given = {"endpoint_url": "http://other:1", "region": "us-west-2", "allow_http": "false"}
    assert s3_keywords("s3://bucket", given) == {
        "endpoint_url": "http://other:1",
        "region": "us-west-2",
        "allow_http": False,
    }


@pytest.mark.parametrize("url", ["./repo", "memory://", "file:///tmp/x"])
def test_local_and_memory_take_no_options(url: str) -> None:
    with pytest.raises(InvalidStorageURLError, match="apply to object storage URLs"):
        storage_from_url(url, storage_options={"region": "x"})


def test_http_urls_open_the_generic_backend_read_only() -> None:
    storage = storage_from_url("https://data.example.com/a/repo/")
    assert isinstance(storage, FsspecStorage)
    assert storage.url == "https://data.example.com/a/repo"
    assert storage.root == "https://data.example.com/a/repo"
    assert not storage.capabilities.safe_writes
    assert not storage.unsafe_writes
    unsafe = storage_from_url("http://h/r", allow_unsafe_writes=True)
    assert isinstance(unsafe, FsspecStorage)
    assert unsafe.unsafe_writes


def test_other_fsspec_protocols_take_their_own_options() -> None:
    storage = storage_from_url(
        "https://data.example.com/repo",
        storage_options={"block_size": 1024, "simple_links": "false"},
    )
    assert isinstance(storage, FsspecStorage)
    assert storage.fs.block_size == 1024
    assert storage.fs.simple_links is False


def test_what_the_url_says_reaches_the_filesystem_and_a_failed_connection_is_an_error() -> None:
    port = s3_servers.free_port()  # nothing listens there
    with pytest.raises(StorageError, match=f"cannot open ftp://127.0.0.1:{port}/pub/repo"):
        storage_from_url(f"ftp://127.0.0.1:{port}/pub/repo")


def test_cloud_factories_name_the_package_to_install() -> None:
    import icechunk_lib as ic

    with pytest.raises(InvalidStorageURLError, match=r'gcsfs package: pip install "ick\[gcs\]"'):
        ic.gcs_storage(bucket="bucket", prefix="p", anonymous=True)
    with pytest.raises(InvalidStorageURLError, match=r'adlfs package: pip install "ick\[azure\]"'):
        ic.azure_storage(account="acct", container="c", prefix="p", access_key=SECRET)
    with pytest.raises(InvalidStorageURLError) as info:
        ic.azure_storage(account="acct", container="c", prefix="p", sas_token=SECRET)
    assert SECRET not in str(info.value)
    with pytest.raises(InvalidStorageURLError, match="get_credentials is not supported"):
        ic.gcs_storage(bucket="bucket", prefix=None, get_credentials=lambda: None)


def test_s3_urls_open_s3_storage_and_keep_a_secret_option_out_of_reprs_and_pickles() -> None:
    import pickle

    from icechunk_lib.storage.s3 import S3Storage

    storage = storage_from_url(
        "s3://my-bucket/some/prefix/",
        storage_options={
            "endpoint_url": "http://127.0.0.1:1",
            "allow_http": "true",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": SECRET,
        },
    )
    assert isinstance(storage, S3Storage)
    assert storage.url == "s3://my-bucket/some/prefix"
    for shown in (repr(storage), storage.url, str(pickle.dumps(storage))):
        assert SECRET not in shown
    assert storage_from_url("s3://my-bucket").url == "s3://my-bucket"
    unsafe = storage_from_url("s3://my-bucket/p", allow_unsafe_writes=True)
    assert unsafe.unsafe_writes
