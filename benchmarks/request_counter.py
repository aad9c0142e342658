"""A loopback HTTP proxy that counts the S3 requests passing through it, per repository prefix.

ick talks to S3 through s3fs (Python) and Icechunk through its Rust core, so counting inside
either client would count differently; a proxy in front of the server sees both the same
way. It forwards every request byte for byte (the ``Host`` header included, so request
signatures stay valid) and counts it by kind: ``GET``, ``PUT``, ``LIST``, ``HEAD``,
``DELETE`` and ``POST`` (multipart uploads, batch deletes). Each count is attributed to the
first key segment under the bucket (for listings, of the ``prefix`` parameter), which is
one repository in the benchmarks, so counts of different engines never mix.

The proxy adds latency of its own: timings are taken against the server directly, only
the counted runs go through it.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["KINDS", "RequestCounter", "classify"]

KINDS = ("GET", "PUT", "LIST", "HEAD", "DELETE", "POST")
"""Request kinds, in the order reports show them."""

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def classify(method: str, target: str) -> tuple[str, str]:
    """``(kind, repository prefix)`` of a path-style S3 request (``/bucket/key?query``)."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    _, _, key = unquote(parts.path).lstrip("/").partition("/")
    method = method.upper()
    if method == "GET" and not key:
        kind = "LIST"
        key = query.get("prefix", [""])[0]
    elif method == "POST" and "delete" in query:
        kind = "DELETE"  # a batch delete: one request, however many keys
    else:
        kind = method if method in KINDS else "POST"
    return kind, key.split("/", 1)[0]


class RequestCounter:
    """The proxy: ``start()`` it, point clients at ``endpoint_url``, read ``counts(prefix)``."""

    def __init__(self, upstream: str) -> None:
        split = urlsplit(upstream)
        if split.hostname is None or split.port is None:
            raise ValueError(f"upstream needs a host and a port: {upstream!r}")
        self._upstream = (split.hostname, split.port)
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="s3-request-counter", daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RequestCounter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def counts(self, prefix: str) -> Counter[str]:
        """A copy of the requests counted so far for ``prefix``, by kind."""
        with self._lock:
            return Counter(self._counts.get(prefix, Counter()))

    def _count(self, method: str, target: str) -> None:
        kind, prefix = classify(method, target)
        with self._lock:
            self._counts.setdefault(prefix, Counter())[kind] += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        counter = self

        class Handler(_Forwarder):
            upstream = counter._upstream
            count = staticmethod(counter._count)

        return Handler


class _Forwarder(BaseHTTPRequestHandler):
    """Forwards one client connection's requests over one upstream connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect
    upstream: tuple[str, int]
    count: Any
    _conn: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Overrides the base: no line per request on stderr."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = bytearray()
            while True:  # forwarded with its framing, as the client signed it
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline()
                        raw += trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return bytes(raw)
                raw += self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_upstream(self, body: bytes) -> http.client.HTTPResponse:
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(*self.upstream, timeout=300)
            try:
                self._conn.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    # Expect is never signed (botocore), and the proxy already said continue.
                    if name.lower() not in ("connection", "keep-alive", "expect"):
                        self._conn.putheader(name, value)
                self._conn.endheaders(body or None)
                return self._conn.getresponse()
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = None  # the server closed an idle connection: once more
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _forward(self) -> None:
        body = self._body()
        self.count(self.command, self.path)
        response = self._send_upstream(body)
        data = response.read()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if self.command == "HEAD":
            length = response.getheader("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)
        if response.will_close and self._conn is not None:
            self._conn.close()
            self._conn = None

    def finish(self) -> None:
        """Overrides the base: close the upstream connection with the client's."""
        with contextlib.suppress(Exception):
            super().finish()
        if self._conn is not None:
            self._conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward
