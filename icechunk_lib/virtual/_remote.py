"""Virtual chunks over the network: ``s3://`` (AWS and S3-compatible servers) and
``http(s)://``, through the storage layer's S3 request machinery.

Both send ranged GETs through ``S3Requests``: its per-loop connection (one aiohttp pool,
forks set aside), its request limit (``max_concurrent_requests`` per loop) and its retries
(backoff with full jitter on throttling and lost connections; never on 404, 412 or 403).
S3 containers use an ``S3Storage`` on the container's bucket (signed with the credentials
the user authorised, unsigned when anonymous); HTTP containers an unsigned direct session.

A reference's checks go with the request (``If-Match`` for an ETag, ``If-Unmodified-Since``
for ``last_updated_at``: a 412 means the source changed) and are checked again against the
reply's ``ETag`` and ``Last-Modified``, for servers that ignore those conditions.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from icechunk_lib.errors import (
    StorageError,
    VirtualSourceChangedError,
    VirtualSourceError,
    VirtualSourceNotFoundError,
    VirtualSourceTruncatedError,
)
from icechunk_lib.storage._s3_client import Connection, _closing, drop
from icechunk_lib.storage._s3_errors import Failure
from icechunk_lib.storage._s3_http import CredentialSource, DirectHTTP, Reply, Route
from icechunk_lib.storage._s3_requests import (
    CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    Failed,
    S3Requests,
)
from icechunk_lib.storage.credentials import S3Credentials
from icechunk_lib.storage.s3 import S3Storage
from icechunk_lib.storage.tuning import StorageTuning
from icechunk_lib.virtual._local import bare_etag, changed_since, etag_matches

__all__ = ["HttpSource", "RemoteSource", "S3Source"]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class RemoteSource:
    """Ranged, conditional GETs of objects below one container; see the module docstring."""

    def __init__(self, requests: Any, url_prefix: str, root: str) -> None:
        self._requests = requests
        """An ``S3Requests`` (``S3Storage`` or ``_HttpRequests``): ``_send`` raises ``Failed``."""
        self._prefix = url_prefix
        self._root = root
        """The key of the container's prefix in its bucket or server (decoded, no leading
        ``/``): an object's key is this plus its path below the container."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._prefix!r})"

    async def fetch(
        self, path: str, start: int, end: int, etag: str, since: int, location: str
    ) -> tuple[bytes, int | None]:
        """Bytes ``[start, end)`` of the object at ``path`` below the container (fewer at
        its end) and its size if the reply says, after the checks (empty / 0: none)."""
        headers = {"range": f"bytes={start}-{end - 1}"}
        if etag and not etag.startswith("W/"):
            # A weak ETag never matches If-Match (RFC 9110 compares it strongly), so a
            # weak one is checked against the reply's ETag only.
            headers["if-match"] = etag if etag.startswith('"') else f'"{etag}"'
        if since:
            headers["if-unmodified-since"] = formatdate(since, usegmt=True)
        try:
            reply = await self._requests._send("GET", self._root + path, headers)
        except Failed as failed:
            raise self._error(failed, location, etag, since, end) from None
        except VirtualSourceError:
            raise
        except StorageError as exc:  # no connection could be made (credentials, endpoint)
            raise VirtualSourceError(location, str(exc)) from None
        _check_reply(reply, etag, since, location)
        body = reply.body
        if reply.status != 206:  # the whole object: the server ignored the range
            return body[start:end], len(body)
        sent = reply.headers.get("Content-Range")
        match = _CONTENT_RANGE.fullmatch(sent or "")
        if match is None:
            # No range said: the body is taken as the one asked for only if it fits it
            # (short at the object's end); a longer one is some other part of the object.
            if len(body) > end - start:
                raise VirtualSourceError(
                    location,
                    f"the server answered a range of {end - start} bytes with {len(body)} "
                    f"bytes and Content-Range {sent!r}, so which bytes they are is unknown",
                )
            return body, None
        first, last = int(match.group(1)), int(match.group(2))
        if first != start or last - first + 1 != len(body):
            raise VirtualSourceError(
                location,
                f"the server sent {len(body)} bytes as {sent!r} for bytes {start}-{end - 1}",
            )
        return body, None if match.group(3) == "*" else int(match.group(3))

    def _error(
        self, failed: Failed, location: str, etag: str, since: int, end: int
    ) -> VirtualSourceError:
        failure = failed.failure
        if failure in (Failure.NOT_FOUND, Failure.NO_BUCKET):
            return VirtualSourceNotFoundError(location)
        if failure is Failure.PRECONDITION:
            reasons = []
            if etag:
                reasons.append(f"its ETag is no longer {etag!r}")
            if since:
                reasons.append(changed_since(since))
            return VirtualSourceChangedError(location, " or ".join(reasons) or "HTTP 412")
        if failure is Failure.RANGE:
            return VirtualSourceTruncatedError(location, end, None)
        reason = self._requests._reason(failed.exc)
        if failure is Failure.DENIED:
            return VirtualSourceError(
                location,
                f"access denied ({reason}): check the credentials container "
                f"{self._prefix!r} was authorised with and the object's permissions",
            )
        if failure in (Failure.THROTTLED, Failure.NO_REPLY):
            return VirtualSourceError(
                location,
                f"gave up after {failed.tries} tries ({reason}); the server is overloaded or "
                "unreachable, try again later or raise storage.retries.max_tries",
            )
        return VirtualSourceError(location, reason)

    async def close(self) -> None:
        await self._requests.close()


def _check_reply(reply: Reply, etag: str, since: int, location: str) -> None:
    """Refuse a reply whose object fails the checks a server may have ignored."""
    got = reply.headers.get("ETag")
    if etag and got and not etag_matches(etag, got):
        raise VirtualSourceChangedError(
            location, f"its ETag is {bare_etag(got)!r}, the reference's {bare_etag(etag)!r}"
        )
    modified = reply.headers.get("Last-Modified")
    if since and modified:
        try:
            seconds = int(parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError):
            return
        if seconds > since:
            raise VirtualSourceChangedError(location, changed_since(since))


class S3Source(RemoteSource):
    """Objects of an ``s3://`` container, through an ``S3Storage`` on its bucket."""

    def __init__(
        self,
        url_prefix: str,
        bucket: str,
        root: str,
        options: Any,
        credentials: Any,
        tuning: StorageTuning,
        *,
        lost_static: bool = False,
        default_endpoint: str | None = None,
        default_region: str | None = None,
    ) -> None:
        if options.anonymous and credentials is None:
            credentials = S3Credentials.Anonymous()
        storage = S3Storage(
            bucket=bucket,
            region=options.region or default_region,
            endpoint_url=options.endpoint_url or default_endpoint,
            allow_http=options.allow_http,
            credentials=credentials,
            force_path_style=options.force_path_style,
            network_stream_timeout_seconds=options.network_stream_timeout_seconds,
            requester_pays=options.requester_pays,
            tuning=tuning,
        )
        # Keys given in code stayed behind in a pickle: a missing-credentials error says so.
        storage._lost_static = lost_static
        super().__init__(storage, url_prefix, root)


class _HttpRequests(S3Requests):
    """``S3Requests`` for one HTTP origin: unsigned requests through a direct session per
    event loop, with the storage layer's limit and retries."""

    def __init__(self, origin: str, host: str, tuning: StorageTuning, timeout: float) -> None:
        self._origin = origin
        self._host = host
        self._bucket = host
        self._root = ""
        self._endpoint_url = origin
        self._tuning = tuning
        self._read_timeout = timeout
        self._closed = False
        self._connections: dict[asyncio.AbstractEventLoop, Connection] = {}
        weakref.finalize(self, drop, self._connections)
        self._locks = weakref.WeakKeyDictionary()

    @property
    def url(self) -> str:
        return self._origin

    @property
    def _where(self) -> str:
        return self._origin

    def _closed_error(self) -> StorageError:
        return StorageError(f"the virtual chunk reader for {self._origin} is closed")

    async def _new_connection(self) -> Connection:
        """A direct session on the running loop (overrides ``S3Requests._new_connection``)."""
        http = DirectHTTP(
            Route(self._origin, self._host, "/", False),
            "us-east-1",
            CredentialSource(),
            requester_pays=False,
            max_connections=self._tuning.max_concurrent_requests,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=self._read_timeout,
        )
        loop = asyncio.get_running_loop()
        conn = Connection(None, http, asyncio.Semaphore(self._tuning.max_concurrent_requests), loop)
        conn.closer = _closing(conn)
        await conn.closer.__anext__()  # the loop closes it at shutdown
        return conn

    async def _bucket_exists(self, conn: Connection) -> bool:
        """An HTTP server has no bucket (overrides ``S3Requests._bucket_exists``)."""
        return True

    async def close(self) -> None:
        self._closed = True
        drop(self._connections)


class HttpSource(RemoteSource):
    """Objects of an ``http(s)://`` container, by unsigned ranged GETs."""

    def __init__(self, url_prefix: str, root: str, tuning: StorageTuning) -> None:
        parts = urlsplit(url_prefix)
        origin = f"{parts.scheme}://{parts.netloc}"
        requests = _HttpRequests(origin, parts.netloc, tuning, DEFAULT_READ_TIMEOUT)
        super().__init__(requests, url_prefix, root)
