"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a test S3 server.

Each client connection gets a thread; each request is read whole, forwarded on a fresh
upstream connection, and its reply read whole before it is passed back, so a fault can act
after the server applied a request. On demand it can, for the next N requests that match:

* ``drop_replies``: forward the request, then reset the client's connection instead of
  replying (a reply lost after the server applied the write);
* ``slow_down``: answer 503 SlowDown without forwarding (throttling);
* ``fail_with``: answer an S3 error of any status and code without forwarding;
* ``strip_conditions`` (until turned off): remove ``If-None-Match`` and ``If-Match`` from
  every request, like a server that ignores conditional writes.

The test servers do not check signatures, so a changed request is still accepted.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

_CONDITIONS = (b"if-none-match", b"if-match")
SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s"
)
SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class Rule:
    """A fault for the next ``count`` requests with this method whose path contains
    ``path_contains`` (and whose headers include ``header``, if given)."""

    action: str
    count: int
    method: str | None = None
    path_contains: str = ""
    header: str = ""
    then: Callable[[], object] | None = None
    """Called (in the proxy's thread) after a dropped request was applied, before the
    connection is reset: another writer acting between our write and our retry."""
    reply: bytes = b""
    """What a ``reply`` rule answers instead of forwarding."""
    hits: int = 0

    def matches(self, method: str, path: str, headers: dict[bytes, bytes]) -> bool:
        if self.count <= 0:
            return False
        if self.method is not None and method != self.method:
            return False
        if self.header and self.header.lower().encode() not in headers:
            return False
        return self.path_contains in path


@dataclass
class Seen:
    """One request as the proxy received it, and what it did with it."""

    method: str
    path: str
    headers: dict[bytes, bytes]
    action: str = "forward"


@dataclass
class S3FaultProxy:
    """A proxy listening on a free loopback port; ``endpoint_url`` goes to ``s3_storage``."""

    upstream_url: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    strip: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() wakes up to notice close()
        self.endpoint_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._clients: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    # --- faults ------------------------------------------------------------------------

    def drop_replies(
        self,
        count: int = 1,
        *,
        method: str | None = "PUT",
        path_contains: str = "",
        header: str = "",
        then: Callable[[], object] | None = None,
    ) -> Rule:
        """Forward the next ``count`` matching requests but lose their replies (calling
        ``then`` after each was applied)."""
        return self._add(Rule("drop", count, method, path_contains, header, then))

    def slow_down(
        self, count: int = 1, *, method: str | None = None, path_contains: str = ""
    ) -> Rule:
        """Answer the next ``count`` matching requests with 503 SlowDown."""
        return self._add(Rule("slow_down", count, method, path_contains))

    def fail_with(
        self,
        status: int,
        code: str,
        count: int = 1,
        *,
        method: str | None = None,
        path_contains: str = "",
    ) -> Rule:
        """Answer the next ``count`` matching requests with an S3 error ``code``."""
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code></Error>' % (
            code.encode()
        )
        reply = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s"
            % (
                status,
                code.encode(),
                len(body),
                body,
            )
        )
        return self._add(Rule("reply", count, method, path_contains, reply=reply))

    def strip_conditions(self, enabled: bool = True) -> None:
        """Remove If-None-Match / If-Match from every request while enabled."""
        self.strip = enabled

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def requests(self, method: str | None = None, path_contains: str = "") -> list[Seen]:
        """The requests seen so far, filtered."""
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method) and path_contains in s.path
            ]

    # --- plumbing ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed = True
        self._listener.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)  # wakes its thread's blocked read
            _close_quietly(client)
        self._thread.join(timeout=5)

    def __enter__(self) -> S3FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while not self._closed:
                request = _read_request(reader, client)
                if request is None:
                    return
                head, body, method, path, headers = request
                action, then, canned = self._decide(method, path, headers)
                if action == "slow_down":
                    client.sendall(SLOW_DOWN % (len(SLOW_DOWN_BODY), SLOW_DOWN_BODY))
                    continue
                if action == "reply":
                    client.sendall(canned)
                    continue
                if self.strip:
                    head = _without_conditions(head)
                reply, keep_open = _forward(self._upstream, head, body, method)
                if action == "drop":
                    if then is not None:
                        then()
                    _reset(client)
                    return
                client.sendall(reply)
                if not keep_open:
                    return
        except OSError:
            return
        finally:
            _close_quietly(client)
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)

    def _decide(
        self, method: str, path: str, headers: dict[bytes, bytes]
    ) -> tuple[str, Callable[[], object] | None, bytes]:
        with self._lock:
            action, then, canned = "forward", None, b""
            for rule in self.rules:
                if rule.matches(method, path, headers):
                    rule.count -= 1
                    rule.hits += 1
                    action, then, canned = rule.action, rule.then, rule.reply
                    break
            self.seen.append(Seen(method, path, headers, action))
            return action, then, canned


def _read_request(
    reader: object, client: socket.socket
) -> tuple[bytes, bytes, str, str, dict[bytes, bytes]] | None:
    """One request: (head without Expect, body, method, decoded path, headers)."""
    lines: list[bytes] = []
    while True:
        line = reader.readline()  # type: ignore[attr-defined]
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            if lines:
                break
            continue
        lines.append(line)
    method, target, _ = lines[0].decode("latin-1").split(" ", 2)
    headers: dict[bytes, bytes] = {}
    kept = [lines[0]]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
        if name.strip().lower() != b"expect":
            kept.append(line)
    if headers.get(b"expect", b"").lower() == b"100-continue":
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _read_chunked(reader)
        kept = [k for k in kept if not k.lower().startswith(b"transfer-encoding")]
        kept.append(b"Content-Length: %d\r\n" % len(body))
    else:
        body = reader.read(int(headers.get(b"content-length", b"0")))  # type: ignore[attr-defined]
    head = b"".join(kept) + b"\r\n"
    return head, body, method, unquote(urlsplit(target).path), headers


def _read_chunked(reader: object) -> bytes:
    chunks = []
    while True:
        size = int(reader.readline().split(b";")[0].strip(), 16)  # type: ignore[attr-defined]
        if size == 0:
            while reader.readline() not in (b"\r\n", b"\n", b""):  # type: ignore[attr-defined]
                pass
            return b"".join(chunks)
        chunks.append(reader.read(size))  # type: ignore[attr-defined]
        reader.readline()  # type: ignore[attr-defined]


def _without_conditions(head: bytes) -> bytes:
    lines = head.split(b"\r\n")
    kept = [line for line in lines if line.partition(b":")[0].strip().lower() not in _CONDITIONS]
    return b"\r\n".join(kept)


def _forward(
    upstream: tuple[str, int], head: bytes, body: bytes, method: str
) -> tuple[bytes, bool]:
    """Send one request upstream on a new connection; the whole reply, and whether the
    client connection can carry another request after it."""
    with socket.create_connection(upstream, timeout=60) as sock:
        sock.sendall(head + body)
        reader = sock.makefile("rb")
        status_line = reader.readline()
        while status_line.startswith(b"HTTP/1.1 100"):
            reader.readline()
            status_line = reader.readline()
        lines = [status_line]
        headers: dict[bytes, bytes] = {}
        while True:
            line = reader.readline()
            lines.append(line)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b"".join(lines), True
        if b"content-length" in headers:
            return b"".join(lines) + reader.read(int(headers[b"content-length"])), True
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            data = _read_chunked(reader)
            kept = [
                line for line in lines[:-1] if not line.lower().startswith(b"transfer-encoding")
            ]
            kept.append(b"Content-Length: %d\r\n\r\n" % len(data))
            return b"".join(kept) + data, True
        return b"".join(lines) + reader.read(), False


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset: the client sees its connection broken, with no reply."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close_quietly(sock)


def _close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
