"""The test servers themselves: each serves S3 on loopback and honours conditional writes,
so the S3 suites that use them prove what they claim."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import s3fs
from s3_servers import BUCKET, S3Server

TESTS = Path(__file__).resolve().parent


def test_server_listens_on_loopback_only(s3_server: S3Server) -> None:
    assert urlsplit(s3_server.endpoint_url).hostname == "127.0.0.1"
    assert s3_server.process.poll() is None


def test_server_honours_conditional_writes(s3_server: S3Server) -> None:
    fs = s3fs.S3FileSystem(**s3_server.client_kwargs())
    path = f"{BUCKET}/{s3_server.fresh_prefix()}/probe"
    fs.pipe_file(path, b"one", mode="create")
    with pytest.raises(OSError, match="pre-conditions"):
        fs.pipe_file(path, b"two", mode="create")
    etag = fs.info(path)["ETag"]
    with pytest.raises(OSError, match="pre-conditions"):
        fs.pipe_file(path, b"three", IfMatch='"00000000000000000000000000000000"')
    fs.pipe_file(path, b"four", IfMatch=etag)
    assert fs.cat_file(path) == b"four"


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_a_server_dies_with_the_run_that_started_it() -> None:
    """A test run killed outright (no atexit, no fixture teardown) leaves no server behind."""
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "import s3_servers\n"
        "server = s3_servers.start('moto')\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
    ) as run:
        assert run.stdout is not None
        server = int(run.stdout.readline())
        os.kill(server, 0)  # it runs
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(server, signal.SIGKILL)
    pytest.fail(f"the server {server} outlived the run that started it")
