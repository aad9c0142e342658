"""``ick commit --from`` reads SOURCE by the library's URL rule and never shows a secret in it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import zarr
from zarr.storage import FsspecStore

from .conftest import Ick

SECRET = "s3cr3t-value"


@pytest.mark.parametrize("source", ["s3:x", "gs:bucket/key", "file:relative"])
def test_a_scheme_without_slashes_is_a_url_error(
    ick: Ick, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = ick.fails(2, "commit", "-m", "x", "--from", source, "--path", "/m")
        assert "no such directory" not in result.stderr
        assert "cannot use" in result.stderr and source in result.stderr
        (tmp_path / source).mkdir(parents=True, exist_ok=True)  # a directory changes nothing


@pytest.mark.parametrize("source", ["./s3:x", "./s3://x"])
def test_path_spellings_are_directories(
    ick: Ick, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = ick.fails(3, "commit", "-m", "x", "--from", source, "--path", "/m")
    assert f"no such directory: {source}" in result.stderr
    zarr.open_group(str(tmp_path / source), mode="w")
    ick.ok("commit", "-m", "x", "--from", source, "--path", "/m")


@pytest.fixture
def url_with_secret() -> Iterator[str]:
    """An fsspec memory URL with user info: a store the importer can read."""
    name = f"ick-cli-{uuid.uuid4().hex}"
    url = f"memory://AKIA:{SECRET}@{name}/src"
    zarr.open_group(FsspecStore.from_url(url), mode="w", attributes={"x": 1})
    zarr.open_group(FsspecStore.from_url(url + "/old"), mode="w", zarr_format=2)
    yield url
    fs = fsspec.filesystem("memory")
    for leftover in fs.ls("/", detail=False):
        if name in leftover:
            fs.rm(leftover, recursive=True)


def test_no_secret_in_what_commit_from_prints(ick: Ick, url_with_secret: str) -> None:
    for _ in range(2):  # committed, then "nothing to commit: ... already matches SOURCE"
        result = ick.ok("commit", "-m", "x", "--from", url_with_secret, "--path", "/m")
        shown = result.stdout + result.stderr
        assert SECRET not in shown and "AKIA" not in shown
        assert "memory://***@" in shown
    refused = ick.fails(1, "commit", "-m", "x", "--from", url_with_secret)  # would delete
    assert SECRET not in refused.stdout + refused.stderr
    bad = ick.fails(2, "commit", "-m", "x", "--from", f"nosuchproto://h/d?sig={SECRET}")
    assert SECRET not in bad.stdout + bad.stderr
