"""Hostile storage URLs and paths: no secret reaches an error, no unusable path a traceback.

No secret in a storage URL reaches an error: not in user info, a query or a malformed URL.

Presigned and SAS URLs carry their credentials in the query (``?X-Amz-Signature=``,
``?sig=``); a URL typed without ``//`` (``s3:key:secret@bucket``) still has user info.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from icechunk_lib.errors import InvalidStorageURLError
from icechunk_lib.storage import storage_from_url

SECRET = "s3cr3t-value"


@pytest.mark.parametrize(
    "url",
    [
        f"https://host/bucket/key?X-Amz-Signature={SECRET}",
        f"https://account.blob.core.windows.net/c?sv=2020&sig={SECRET}",
        f"memory://name?token={SECRET}",
        f"file:///tmp/repo?password={SECRET}",
        f"file:///tmp/repo#{SECRET}",
        f"s3:AKIA:{SECRET}@bucket/prefix",
        f"s3:/AKIA:{SECRET}@bucket/prefix",
        f"gs://{SECRET}@bucket",
        f"s3://user@x:{SECRET}@bucket/p",
        f"memory://:{SECRET}@name/extra?more={SECRET}",
    ],
)
def test_no_secret_in_url_errors(url: str) -> None:
    with pytest.raises(InvalidStorageURLError) as info:
        storage_from_url(url)
    for shown in (str(info.value), repr(info.value), info.value.url, *map(str, info.value.args)):
        assert SECRET not in shown


def test_no_secret_on_the_command_line_error(tmp_path: Path) -> None:
    ick = Path(sys.executable).with_name("ick")
    url = f"https://host/repo?sig={SECRET}"
    for args in (["-R", url, "log"], ["--json", "-R", url, "branch", "list"]):
        done = subprocess.run([ick, *args], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode != 0
        assert SECRET not in done.stdout + done.stderr
        assert "https://host/repo" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("path", "reason"),
    [("", "empty"), ("~nouser-ick-test/repo", "home directory"), ("a\x00b", "null byte")],
)
def test_unusable_local_paths_are_url_errors(path: str, reason: str) -> None:
    from icechunk_lib.storage import local_filesystem_storage

    for make in (local_filesystem_storage, storage_from_url):
        with pytest.raises(InvalidStorageURLError, match=reason) as info:
            make(path)
        assert str(info.value).count("cannot use") == 1


def test_unknown_home_directory_on_the_command_line(tmp_path: Path) -> None:
    ick = Path(sys.executable).with_name("ick")
    done = subprocess.run(
        [ick, "-R", "~nouser-ick-test/repo", "log"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "~nouser-ick-test" in done.stderr
