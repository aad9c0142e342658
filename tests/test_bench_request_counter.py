"""The benchmarks' request-counting proxy forwards S3 requests unchanged and counts them right.

The benchmarks report requests per commit from it (benchmarks/request_counter.py), so what it
counts must be what went over the wire. The module is loaded from its file: the benchmarks
are not an installed package.
"""

from __future__ import annotations

import http.client
import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_request_counter", ROOT / "benchmarks" / "request_counter.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rc = _load()


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/bucket/repo1/chunks/ABC", ("GET", "repo1")),
        ("GET", "/bucket?list-type=2&prefix=repo1%2Frefs%2F", ("LIST", "repo1")),
        ("GET", "/bucket/?list-type=2&prefix=repo2/snapshots/", ("LIST", "repo2")),
        ("HEAD", "/bucket/repo1/config.yaml", ("HEAD", "repo1")),
        ("PUT", "/bucket/repo1/refs/branch.main/ref.json", ("PUT", "repo1")),
        ("PUT", "/bucket/repo3/big?partNumber=1&uploadId=x", ("PUT", "repo3")),
        ("POST", "/bucket/repo3/big?uploads", ("POST", "repo3")),
        ("POST", "/bucket?delete", ("DELETE", "")),
        ("DELETE", "/bucket/repo1/chunks/ABC", ("DELETE", "repo1")),
    ],
)
def test_classify(method: str, target: str, expected: tuple[str, str]) -> None:
    assert rc.classify(method, target) == expected


class _Upstream(BaseHTTPRequestHandler):
    """A tiny server that records what arrives and answers like S3 would, in shape."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str, str | None, bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self) -> None:
        body = b""
        if self.headers.get("Transfer-Encoding") == "chunked":
            raw = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
            body = bytes(raw)
        elif self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.command, self.path, self.headers.get("Host"), body))
        payload = b"" if self.command == "HEAD" else b"answer:" + body
        self.send_response(200)
        self.send_header("Content-Length", "7" if self.command == "HEAD" else str(len(payload)))
        self.send_header("ETag", '"e1"')
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _reply


@pytest.fixture
def upstream() -> Iterator[str]:
    _Upstream.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_forwards_unchanged_and_counts_by_kind_and_prefix(upstream: str) -> None:
    counter = rc.RequestCounter(upstream).start()
    try:
        host, port = counter.endpoint_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)  # one kept-alive connection
        answers = []
        for method, target, body, headers in [
            ("PUT", "/b/repo1/chunks/A", b"chunk", {"If-None-Match": "*"}),
            ("GET", "/b/repo1/chunks/A", None, {}),
            ("HEAD", "/b/repo1/chunks/A", None, {}),
            ("GET", "/b?list-type=2&prefix=repo1/refs/", None, {}),
            ("DELETE", "/b/repo1/chunks/A", None, {}),
            ("GET", "/b/repo2/config", None, {}),
        ]:
            conn.request(method, target, body=body, headers={"Host": "signed-host:1", **headers})
            response = conn.getresponse()
            answers.append((response.status, response.read(), response.getheader("ETag")))
        conn.putrequest("PUT", "/b/repo1/manifests/M", skip_host=True)
        conn.putheader("Host", "signed-host:1")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        chunked = conn.getresponse()
        assert (chunked.status, chunked.read()) == (200, b"answer:abcde")
        conn.close()

        assert answers[0] == (200, b"answer:chunk", '"e1"')
        assert answers[2] == (200, b"", '"e1"')  # HEAD: headers only
        assert [(m, p) for m, p, _, _ in _Upstream.seen] == [
            ("PUT", "/b/repo1/chunks/A"),
            ("GET", "/b/repo1/chunks/A"),
            ("HEAD", "/b/repo1/chunks/A"),
            ("GET", "/b?list-type=2&prefix=repo1/refs/"),
            ("DELETE", "/b/repo1/chunks/A"),
            ("GET", "/b/repo2/config"),
            ("PUT", "/b/repo1/manifests/M"),
        ]
        assert {host for _, _, host, _ in _Upstream.seen} == {"signed-host:1"}
        assert _Upstream.seen[0][3] == b"chunk"
        assert _Upstream.seen[-1][3] == b"abcde"
        assert counter.counts("repo1") == {"PUT": 2, "GET": 1, "HEAD": 1, "LIST": 1, "DELETE": 1}
        assert counter.counts("repo2") == {"GET": 1}
        assert counter.counts("nothing") == {}
    finally:
        counter.stop()
