"""The request machinery under ``S3Storage``: one connection per loop, the retry policy,
errors named without secrets, the transfers (ranged GETs, PUTs and multipart uploads), the
probe of a server's conditional writes, and the listing helpers.

Requests for one object (GET, PUT, HEAD, DELETE) go through the connection's direct session
(``_send``); the rest through its botocore client (``_run``). Both take the same retries.

``S3Requests`` is a base class of ``S3Storage`` alone; it holds no state of its own.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from icechunk_lib.errors import LocationNotFoundError, ObjectNotFoundError, StorageError
from icechunk_lib.storage._base import RESERVED_PREFIX, ObjectInfo, StorageCapabilities
from icechunk_lib.storage._s3_client import (
    Connection,
    ConnectionSettings,
    connect,
    disconnect,
    drop,
    inherited,
)
from icechunk_lib.storage._s3_errors import (
    EXPIRED_CODES,
    Failure,
    classify,
    error_code,
    http_status,
)
from icechunk_lib.storage.credentials import AnyS3Credential
from icechunk_lib.storage.tuning import StorageTuning

if TYPE_CHECKING:
    from icechunk_lib.storage._s3_http import Reply

__all__ = ["PROBE_PREFIX", "Failed", "S3Requests", "is_aws", "list_call", "merged", "reserved"]

T = TypeVar("T")

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest part of a multipart upload (all but the last)."""
MAX_PARTS = 10_000
DEFAULT_READ_TIMEOUT = 60.0
"""Icechunk's ``network_stream_timeout_seconds`` default."""
CONNECT_TIMEOUT = 10.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_AWS_HOST = re.compile(r"(^|\.)amazonaws\.com(\.cn)?$")
_CONDITION_HEADERS = {"IfNoneMatch": "if-none-match", "IfMatch": "if-match"}


def is_aws(endpoint_url: str | None) -> bool:
    """Whether requests go to AWS itself (no endpoint, or one under amazonaws.com)."""
    if endpoint_url is None:
        return True
    host = urlsplit(endpoint_url).hostname or ""
    return _AWS_HOST.search(host) is not None


PROBE_PREFIX = f"{RESERVED_PREFIX}probe-"
"""Probe objects are written at ``<prefix>/.ick-probe-<random>``: a reserved segment no
repository key can use, which ``list`` (and so gc and verify) never shows."""


class Failed(Exception):
    """A request that failed for good: the last error, what it means, and whether an
    earlier try may have been applied although its reply was lost."""

    def __init__(self, exc: BaseException, failure: Failure, tries: int, uncertain: bool):
        super().__init__(str(exc))
        self.exc = exc
        self.failure = failure
        self.tries = tries
        self.uncertain = uncertain


class S3Requests:
    """Requests to one bucket and prefix, retried and limited per event loop."""

    _bucket: str
    _root: str
    _region: str | None
    _endpoint_url: str | None
    _force_path_style: bool
    _stream_timeout: int | None
    _requester_pays: bool
    _credentials: AnyS3Credential
    _lost_static: bool
    _tuning: StorageTuning
    _closed: bool
    _connections: dict[asyncio.AbstractEventLoop, Connection]
    _locks: Any  # WeakKeyDictionary[loop, asyncio.Lock]

    if TYPE_CHECKING:  # given by ``S3Storage`` and ``Storage``

        @property
        def url(self) -> str: ...

        @property
        def _where(self) -> str: ...

        def _closed_error(self) -> StorageError: ...

    # --- connections and the retry policy ----------------------------------------------

    def _settings(self) -> ConnectionSettings:
        timeout = self._stream_timeout
        read_timeout = (
            DEFAULT_READ_TIMEOUT if timeout is None else float(timeout) if timeout else 86400.0
        )
        return ConnectionSettings(
            bucket=self._bucket,
            region=self._region or ("us-east-1" if self._endpoint_url else None),
            endpoint_url=self._endpoint_url,
            force_path_style=self._force_path_style,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=read_timeout,
            where=self._where,
            aws=is_aws(self._endpoint_url),
        )

    async def _connection(self) -> Connection:
        """This loop's connection, made on first use (``_new_connection``); one made by
        the process this one was forked from is set aside, never used."""
        loop = asyncio.get_running_loop()
        conn = self._connections.get(loop)
        if conn is not None and not inherited(conn):
            return conn
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            conn = self._connections.get(loop)
            if conn is None or inherited(conn):
                ended = {
                    k: c for k, c in self._connections.items() if k.is_closed() or inherited(c)
                }
                for gone in ended:
                    del self._connections[gone]
                drop(ended)
                conn = await self._new_connection()
                if self._closed:
                    await disconnect(conn)
                    raise self._closed_error()
                self._connections[loop] = conn
        return conn

    async def _new_connection(self) -> Connection:
        """A new connection on the running loop: a botocore client and its direct session."""
        return await connect(
            self._settings(),
            self._credentials,
            self._tuning,
            requester_pays=self._requester_pays,
            lost_static=self._lost_static,
        )

    def _backoff(self, tries: int) -> float:
        """Full jitter: uniform up to the exponential bound (AWS's advice)."""
        t = self._tuning
        bound = min(t.max_backoff_seconds, t.initial_backoff_seconds * (2 ** (tries - 1)))
        return random.uniform(0, bound)

    async def _run(self, call: Callable[[Any], Awaitable[T]]) -> T:
        """``call(client)`` with the botocore client, retried (see ``_retrying``)."""
        return await self._retrying(lambda conn: call(conn.client))

    async def _send(
        self, method: str, key: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Reply:
        """One request for the object ``key`` through the direct session, retried (see
        ``_retrying``); ``headers`` are lower-case."""
        full = self._root + key
        return await self._retrying(lambda conn: conn.http.send(method, full, headers, body))

    async def _retrying(self, call: Callable[[Connection], Awaitable[T]]) -> T:
        """``call(connection)`` under the loop's request limit, retried on throttling and
        lost connections, and sent again once with fresh credentials when the server says
        the token expired; raises ``Failed`` when it fails for good."""
        if self._closed:
            raise self._closed_error()
        conn = await self._connection()
        max_tries = self._tuning.max_tries
        uncertain = False
        refreshed = False
        tries = 0
        while True:
            tries += 1
            try:
                async with conn.semaphore:
                    return await call(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                if failure is Failure.NO_REPLY:
                    uncertain = True
                if (
                    not refreshed
                    and error_code(exc) in EXPIRED_CODES
                    and await conn.http.credentials.refresh()
                ):
                    refreshed = True  # the server refused the request: nothing applied
                    tries -= 1
                    continue
                retry = failure in (Failure.THROTTLED, Failure.NO_REPLY)
                if not retry or tries >= max_tries:
                    if failure is Failure.DENIED and not await self._bucket_exists(conn):
                        failure = Failure.NO_BUCKET  # some servers deny, not 404, then
                    raise Failed(exc, failure, tries, uncertain) from None
            await asyncio.sleep(self._backoff(tries))

    async def _bucket_exists(self, conn: Connection) -> bool:
        """False only when the server says the bucket does not exist (one HEAD)."""
        try:
            await conn.client.head_bucket(Bucket=self._bucket)
        except Exception as exc:
            return classify(exc) not in (Failure.NOT_FOUND, Failure.NO_BUCKET)
        return True

    def _error(self, failed: Failed, action: str, key: str) -> StorageError:
        """The library error for a request that failed for good; no secret in it."""
        failure = failed.failure
        if failure is Failure.NOT_FOUND:
            return ObjectNotFoundError(key, self.url)
        if failure is Failure.NO_BUCKET:
            return LocationNotFoundError(f"bucket {self._bucket!r} at {self._endpoint_or_aws}")
        reason = self._reason(failed.exc)
        if failure is Failure.DENIED:
            return StorageError(
                f"access denied ({reason}) to {action} {key!r} in {self._where}: check the "
                "credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...) and the bucket's permissions"
            )
        if failure in (Failure.THROTTLED, Failure.NO_REPLY):
            return StorageError(
                f"could not {action} {key!r} in {self._where}: gave up after {failed.tries} "
                f"tries ({reason}); the server is overloaded or unreachable, try again later "
                "or raise storage.retries.max_tries"
            )
        return StorageError(f"could not {action} {key!r} in {self._where}: {reason}")

    @property
    def _endpoint_or_aws(self) -> str:
        return self._endpoint_url or "AWS"

    @staticmethod
    def _reason(exc: BaseException) -> str:
        status = http_status(exc)
        if status is None:
            return f"{type(exc).__name__}: {exc}"
        response: Any = getattr(exc, "response", {})
        message = response.get("Error", {}).get("Message", "")
        code = error_code(exc)
        return f"HTTP {status} {code}" + (f": {message}" if message else "")

    def _params(self, key: str, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": self._root + key, **extra}
        if self._requester_pays:
            params["RequestPayer"] = "requester"
        return params

    # --- reads ---------------------------------------------------------------------------

    async def _get_object(self, key: str, headers: dict[str, str] | None = None) -> Reply:
        return await self._send("GET", key, headers)

    async def _fetch(self, key: str, start: int, end: int | None) -> tuple[bytes, str | None]:
        """Bytes ``[start, end)`` (clipped) and the ETag; large spans come in concurrent
        ranged GETs pinned to one version with ``If-Match``."""
        for _ in range(3):
            try:
                return await self._fetch_once(key, start, end)
            except Failed as failed:
                if failed.failure is not Failure.PRECONDITION:
                    raise self._error(failed, "read", key) from None
            # The object was replaced between two pieces: read it again.
        raise StorageError(f"could not read {key!r} in {self._where}: it kept changing")

    async def _fetch_once(self, key: str, start: int, end: int | None) -> tuple[bytes, str | None]:
        piece = self._tuning.ideal_concurrent_request_size
        first_end = start + piece if end is None else min(end, start + piece)
        try:
            reply = await self._get_object(key, {"range": f"bytes={start}-{first_end - 1}"})
        except Failed as failed:
            if failed.failure is not Failure.RANGE:
                raise
            if start > 0:
                return b"", None  # the object ends before ``start``
            reply = await self._get_object(key)  # an empty object
            return reply.body, reply.headers.get("ETag")
        data = reply.body
        etag: str | None = reply.headers.get("ETag")
        match = _CONTENT_RANGE.fullmatch(reply.headers.get("Content-Range") or "")
        if match is None or match.group(3) == "*":
            return data[start:end], etag  # the server sent the whole object
        total = int(match.group(3))
        stop = total if end is None else min(end, total)
        got = start + len(data)
        if got >= stop:
            return data[: stop - start], etag
        limit = asyncio.Semaphore(self._tuning.max_concurrent_requests_for_object)
        condition = {"if-match": etag} if etag else {}

        async def one(offset: int) -> bytes:
            async with limit:
                upto = min(offset + piece, stop)
                part = await self._get_object(
                    key, {"range": f"bytes={offset}-{upto - 1}", **condition}
                )
                return part.body

        rest = await asyncio.gather(*(one(offset) for offset in range(got, stop, piece)))
        return b"".join([data, *rest]), etag

    # --- writes --------------------------------------------------------------------------

    def _storage_class(self, key: str) -> dict[str, Any]:
        t = self._tuning
        chosen = t.chunks_storage_class if key.startswith("chunks/") else t.metadata_storage_class
        chosen = chosen or t.storage_class
        return {"StorageClass": chosen} if chosen else {}

    async def _write(self, key: str, data: bytes, condition: dict[str, str]) -> str:
        """PUT (or a multipart upload above the threshold) under ``condition``; the ETag.
        Raises ``Failed``.

        A swap (``If-Match``) is always one PUT: moto ignores ``If-Match`` on the request
        completing a multipart upload, and what is swapped (refs, config) is small.
        """
        if type(data) is not bytes:
            data = bytes(data)
        if (
            len(data) >= self._tuning.minimum_size_for_multipart_upload
            and "IfMatch" not in condition
        ):
            return await self._multipart(key, data, condition)
        headers = {_CONDITION_HEADERS[name]: value for name, value in condition.items()}
        storage_class = self._storage_class(key)
        if storage_class:
            headers["x-amz-storage-class"] = storage_class["StorageClass"]
        reply = await self._send("PUT", key, headers, data)
        return _etag(reply)

    async def _multipart(self, key: str, data: bytes, condition: dict[str, str]) -> str:
        """Upload in parts, the completing request carrying ``condition``; aborted on failure."""
        created = await self._run(
            lambda client: client.create_multipart_upload(
                **self._params(key, **self._storage_class(key))
            )
        )
        upload_id = created["UploadId"]
        size = max(MIN_PART_SIZE, self._tuning.ideal_concurrent_request_size)
        size = max(size, -(-len(data) // MAX_PARTS))
        limit = asyncio.Semaphore(self._tuning.max_concurrent_requests_for_object)

        async def part(number: int, offset: int) -> dict[str, Any]:
            body = data[offset : offset + size]
            params = self._params(key, UploadId=upload_id, PartNumber=number, Body=body)
            async with limit:
                uploaded = await self._run(lambda client: client.upload_part(**params))
            return {"ETag": uploaded["ETag"], "PartNumber": number}

        try:
            parts = await asyncio.gather(
                *(part(n, offset) for n, offset in enumerate(range(0, len(data), size), 1))
            )
            params = self._params(
                key, UploadId=upload_id, MultipartUpload={"Parts": list(parts)}, **condition
            )
            done = await self._run(lambda client: client.complete_multipart_upload(**params))
        except BaseException:
            abort = self._params(key, UploadId=upload_id)
            with suppress(Exception):
                await self._run(lambda client: client.abort_multipart_upload(**abort))
            raise
        etag: str = done["ETag"]
        return etag

    async def _probe(self) -> StorageCapabilities | None:
        """Run the probe; ``None`` if it could not write (no permission: nothing learnt)."""
        key = f"{PROBE_PREFIX}{secrets.token_hex(8)}"

        async def put(body: bytes, condition: dict[str, str]) -> str | None:
            """The ETag, or ``None`` when the condition failed."""
            try:
                return _etag(await self._send("PUT", key, condition, body))
            except Failed as failed:
                if failed.failure in (Failure.PRECONDITION, Failure.NOT_FOUND):
                    return None
                raise

        try:
            first = await put(b"probe 1", {"if-none-match": "*"})
            if first is None:
                return None  # cannot happen under a fresh random key; learn nothing
            create = await put(b"probe 2", {"if-none-match": "*"}) is None
            current = _etag(await self._send("HEAD", key))
            swapped = await put(b"probe 3", {"if-match": current})
            stale_refused = await put(b"probe 4", {"if-match": current}) is None
            cas = swapped is not None and stale_refused
        except Failed as failed:
            if failed.failure is Failure.DENIED:
                return None
            raise self._error(failed, "probe with", key) from None
        finally:
            with suppress(Failed):
                await self._send("DELETE", key)
        return StorageCapabilities(create_if_absent=create, compare_and_swap=cas)


def _etag(reply: Reply) -> str:
    etag = reply.headers.get("ETag")
    if etag is None:
        raise StorageError("the server's reply to a PUT or HEAD carries no ETag")
    return etag


def list_call(params: dict[str, Any]) -> Callable[[Any], Awaitable[Any]]:
    """One ListObjectsV2 request with these parameters (bound now, not at call time)."""
    return lambda client: client.list_objects_v2(**params)


async def merged(
    first: AsyncIterator[ObjectInfo], second: AsyncIterator[ObjectInfo]
) -> AsyncIterator[ObjectInfo]:
    """Two listings sorted by key as one, each key once."""
    a = await anext(first, None)
    b = await anext(second, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.key < b.key):
            assert a is not None
            yield a
            a = await anext(first, None)
        elif a is None or b.key < a.key:
            yield b
            b = await anext(second, None)
        else:
            yield a
            a, b = await anext(first, None), await anext(second, None)


def reserved(key: str) -> bool:
    return any(part.startswith(RESERVED_PREFIX) for part in key.split("/"))
