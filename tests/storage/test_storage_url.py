"""storage_from_url: every accepted form, and clear errors for the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from icechunk_lib.errors import InvalidStorageURLError
from icechunk_lib.storage import InMemoryStorage, LocalFileSystemStorage, storage_from_url
from icechunk_lib.storage.url import supported_schemes


def local_root(url: str | Path) -> Path:
    storage = storage_from_url(url)
    assert isinstance(storage, LocalFileSystemStorage)
    return storage.root


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()


def test_relative_paths(cwd: Path) -> None:
    assert local_root("./repo") == cwd / "repo"
    assert local_root("repo") == cwd / "repo"
    assert local_root("a/../repo") == cwd / "repo"
    assert local_root("./with:colon") == cwd / "with:colon"


def test_absolute_and_home_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert local_root(str(tmp_path / "repo")) == tmp_path.resolve() / "repo"
    assert local_root("~/repo") == (tmp_path / "home" / "repo").resolve()
    assert local_root(tmp_path / "repo") == tmp_path.resolve() / "repo"  # os.PathLike


def test_file_urls(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert local_root(f"file://{root}/repo") == root / "repo"
    assert local_root(f"FILE://{root}/repo") == root / "repo"
    assert local_root(f"file://localhost{root}/repo") == root / "repo"
    assert local_root(f"file:{root}/repo") == root / "repo"
    assert local_root(f"file://{root}/my%20repo") == root / "my repo"


def test_memory_urls(memory_name: str) -> None:
    fresh = storage_from_url("memory://")
    assert isinstance(fresh, InMemoryStorage)
    assert storage_from_url("memory://") != fresh
    named = storage_from_url(f"memory://{memory_name}")
    assert named is InMemoryStorage.named(memory_name)
    assert storage_from_url(f"memory://{memory_name}") is named
    assert named.url == f"memory://{memory_name}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("file://relative/repo", "host name.*file:///abs/repo.*./relative"),
        ("file://", "absolute path"),
        ("file:relative", "absolute path"),
        ("file:///tmp/repo?x=1", "query"),
        ("file:///tmp/repo#frag", "fragment"),
        ("memory://name/path", "memory://<name>"),
        ("memory://bad:name", "invalid memory storage name"),
        ("memory://x?y=1", "query"),
        ("s3://Bad_Bucket/prefix", "'Bad_Bucket' is not a valid S3 bucket name"),
        ("s3:///prefix", "no bucket"),
        ("s3://ab/prefix", "'ab' is not a valid S3 bucket name"),
        (f"s3://{'b' * 64}/p", "not a valid S3 bucket name"),
        ("s3://bucket..name/p", "not a valid S3 bucket name"),
        ("s3://-bucket/p", "not a valid S3 bucket name"),
        ("s3://192.168.1.1/p", "not a valid S3 bucket name"),
        ("s3://bucket/a//b", "empty, '.' or '..' segment"),
        ("s3://bucket/a/../b", "empty, '.' or '..' segment"),
        ("s3://bucket/./b", "empty, '.' or '..' segment"),
        ("s3://bucket/a/.ick-x", "invalid segment '.ick-x'"),
        ("gs://bucket/prefix", r"needs the gcsfs package: pip install \"ick\[gcs\]\""),
        ("gcs://bucket/prefix", "needs the gcsfs package"),
        ("az://container/prefix", r"needs the adlfs package: pip install \"ick\[azure\]\""),
        ("abfs://container/prefix", "needs the adlfs package"),
        ("nosuchproto://x/y", r"'nosuchproto' scheme is not supported.*s3://.*gs://"),
        ("data:repo", "start it with './'"),
        ("zip://a/b", "'zip' scheme is not supported"),
        ("local:///tmp/x", "'local' scheme is not supported"),
        ("https://", "names no location"),
        ("http://[::1/repo", "Invalid IPv6"),
    ],
)
def test_invalid_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidStorageURLError, match=message) as info:
        storage_from_url(url)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIAEXAMPLE:s3cr3t-value@bucket/prefix",
        "memory://user:s3cr3t-value@name",
        "file://user:s3cr3t-value@host/tmp/repo",
    ],
)
def test_credentials_never_appear_in_errors(url: str) -> None:
    with pytest.raises(InvalidStorageURLError) as info:
        storage_from_url(url)
    assert "s3cr3t-value" not in str(info.value)
    assert "s3cr3t-value" not in info.value.url


def test_nul_byte_path_is_a_url_error() -> None:
    with pytest.raises(InvalidStorageURLError):
        storage_from_url("repo\x00x")


def test_supported_schemes_listed() -> None:
    assert supported_schemes() == ["file://", "memory://", "s3://"]


def test_backends_import_no_cloud_libraries() -> None:
    # fsspec itself arrives with zarr; the S3 stack must only load for s3:// URLs.
    code = (
        "import sys; from icechunk_lib.storage import storage_from_url;"
        "storage_from_url('memory://'); storage_from_url('./x');"
        "loaded = {'s3fs', 'aiobotocore', 'botocore'} & set(sys.modules);"
        "assert not loaded, loaded"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)
