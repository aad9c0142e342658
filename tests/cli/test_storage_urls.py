"""``ick -R https://...``: a repository served read-only over HTTP, --unsafe-writes and its
warning, and the exit codes of storage that cannot be written."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import Ick, Sample


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(sample: Sample, tmp_path: Path) -> Iterator[str]:
    """The sample repository served by python's http.server on 127.0.0.1."""
    root = tmp_path / "site"
    shutil.copytree(sample.path, root / "repo")
    handler = functools.partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/repo"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_served_repository_reads_like_the_local_one(site: str, sample: Sample) -> None:
    local, served = Ick(sample.path), Ick(None)
    for args in (("log", "--all"), ("branch",), ("tag",), ("ls", "-r", "-l", "v1.0")):
        assert served.json("-R", site, *args) == local.json(*args), args


def test_writing_to_it_is_refused_with_exit_1(site: str) -> None:
    ick = Ick(None)
    for args in (
        ("tag", "create", "v2"),
        ("branch", "create", "b"),
        ("config", "set", "compression.level", "3"),
    ):
        result = ick.fails(1, "-R", site, *args)
        assert "atomic" in result.stderr
    assert [t["name"] for t in ick.json("-R", site, "tag")["tags"]] == ["v1.0", "v1.1"]


def test_unsafe_writes_warns_once_on_stderr_when_it_writes(site: str, sample: Sample) -> None:
    ick = Ick(None)
    read = ick("-R", site, "--unsafe-writes", "log", "--oneline")
    assert read.exit_code == 0, read.output
    assert read.stderr == ""  # nothing written, nothing to warn of
    local = Ick(sample.path)("log", "--unsafe-writes", "--oneline")
    assert local.exit_code == 0
    assert local.stderr == ""


def test_help_shows_an_s3_example_and_the_storage_options() -> None:
    result = Ick(None)("--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "ick -R s3://my-bucket/weather" in result.stdout
    assert "--storage-option" in result.stdout
    assert "--unsafe-writes" in result.stdout
