"""How the importer reads its SOURCE argument: the storage's URL rule and redaction.

A string is a URL or a directory by the same rule as ``storage_from_url`` (``url_scheme``),
and a source URL reaches a message only through ``redact_url``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import (
    ImportSourceNotFoundError,
    InvalidImportSourceError,
    InvalidStorageURLError,
)
from icechunk_lib.ops.importer import import_zarr

SECRET = "s3cr3t-value"


@pytest.fixture
def session() -> ic.Session:
    return ic.Repository.create(ic.in_memory_storage()).writable_session("main")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("source", ["s3:x", "gs:bucket/key", "data:repo", "memory:name"])
def test_a_scheme_without_slashes_is_a_url_error_not_a_directory(
    session: ic.Session, in_tmp: Path, source: str
) -> None:
    # As for storage_from_url: "s3:x" is a URL (a malformed one), never a directory "s3:x".
    with pytest.raises(InvalidStorageURLError, match=r"\./"):
        import_zarr(session, source)
    with pytest.raises(InvalidStorageURLError):
        ic.storage_from_url(source)
    assert not session.has_uncommitted_changes


@pytest.mark.parametrize("source", ["./s3:x", "./s3://x", "C:\\x", " s3://x"])
def test_path_spellings_are_directories(session: ic.Session, in_tmp: Path, source: str) -> None:
    with pytest.raises(ImportSourceNotFoundError, match="no such file"):
        import_zarr(session, source)
    target = in_tmp / source
    zarr.open_group(str(target), mode="w", attributes={"at": source})
    stats = import_zarr(session, source, "/x")
    assert stats.groups_created >= 1


def test_file_urls_follow_the_storage_rules(session: ic.Session, tmp_path: Path) -> None:
    zarr.open_group(str(tmp_path / "src"), mode="w")
    assert import_zarr(session, f"file:{tmp_path}/src", "/a").groups_created >= 1
    assert import_zarr(session, f"file://localhost{tmp_path}/src", "/b").groups_created >= 1
    for bad, reason in [
        ("file:relative/src", "absolute path"),
        ("file://host/data", "host name"),
        (f"file://{tmp_path}/src?x=1", "query"),
    ]:
        with pytest.raises(InvalidStorageURLError, match=reason):
            import_zarr(session, bad)


@pytest.mark.parametrize(
    "source",
    [
        f"nosuchproto://AKIA:{SECRET}@host/data",
        f"nosuchproto://host/data?X-Amz-Signature={SECRET}",
        f"nosuchproto://host/data#{SECRET}",
        f"s3:AKIA:{SECRET}@bucket",
        f"file://AKIA:{SECRET}@host/data",
        f"file:///no/such/dir?token={SECRET}",
    ],
)
def test_no_secret_in_source_errors(session: ic.Session, source: str) -> None:
    with pytest.raises(ic.IcechunkError) as info:
        import_zarr(session, source)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_no_secret_in_errors_about_a_url_source(session: ic.Session) -> None:
    url = f"memory://ick-import-empty-{SECRET[:3]}?token={SECRET}"
    with pytest.raises((InvalidImportSourceError, InvalidStorageURLError)) as info:
        import_zarr(session, url)
    assert SECRET not in str(info.value)
