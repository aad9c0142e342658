"""S3 and S3-compatible object storage: atomic creates with ``If-None-Match: *``, compare-
and-swap with ``If-Match: <ETag>``, and the retries, limits and splitting a cloud needs.

s3fs builds the client (credentials, profiles, environment, endpoint, requester pays);
reads, writes, HEADs and DELETEs of one object go out through a direct aiohttp session
signed with the client's credentials (``_s3_http``), listings, multipart uploads and batch
deletes through the client itself with botocore's retries off, so one policy decides:
exponential backoff with full jitter on throttling and lost connections, never on 412, 404
or 403. A conditional write whose reply was lost is retried, and a 412 on the retry
is checked against the object: our own bytes mean the first attempt landed.

Credentials never leave the process in a pickle: a pickled ``S3Storage`` carries a random
token instead. Unpickled in the same process it finds the live credentials by that token;
elsewhere it re-resolves them (``get_credentials`` is pickled by reference and called again,
anything else comes from the environment or profile; keys passed in code do not travel).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import weakref
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from icechunk_lib.errors import (
    InvalidStorageURLError,
    LocationNotFoundError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    ReadOnlyStorageError,
    StorageError,
)
from icechunk_lib.storage._base import (
    RESERVED_PREFIX,
    ObjectInfo,
    Storage,
    StorageCapabilities,
    check_byte_range,
    check_key,
    check_prefix,
)
from icechunk_lib.storage._s3_client import (
    Connection,
    disconnect,
    drop,
)
from icechunk_lib.storage._s3_errors import Failure
from icechunk_lib.storage._s3_requests import (
    PROBE_PREFIX,
    Failed,
    S3Requests,
    is_aws,
    list_call,
    merged,
    reserved,
)
from icechunk_lib.storage.credentials import AnyS3Credential, S3Credentials, credential_kind
from icechunk_lib.storage.tuning import StorageTuning

__all__ = ["PROBE_PREFIX", "S3Storage"]

T = TypeVar("T")

DELETE_BATCH = 1000
"""Keys per DeleteObjects request (S3's limit)."""
LIST_PAGE = 1000
"""Keys per ListObjectsV2 page (S3's limit)."""
MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest part of a multipart upload (all but the last)."""
MAX_PARTS = 10_000
DEFAULT_READ_TIMEOUT = 60.0
"""Icechunk's ``network_stream_timeout_seconds`` default."""
CONNECT_TIMEOUT = 10.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

_live_credentials: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
"""Token -> the credentials of a live storage, for unpickling in the same process."""
_probed: dict[tuple[str, str], StorageCapabilities] = {}
"""(endpoint, bucket) -> what the probe found, once per process."""


class S3Storage(Storage, S3Requests):
    """A repository under ``s3://<bucket>/<prefix>`` on AWS or an S3-compatible server."""

    capabilities = StorageCapabilities(create_if_absent=True, compare_and_swap=True)

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        allow_http: bool = False,
        credentials: AnyS3Credential | None = None,
        force_path_style: bool = False,
        network_stream_timeout_seconds: int | None = None,
        requester_pays: bool = False,
        allow_unsafe_writes: bool = False,
        tuning: StorageTuning | None = None,
        weak_consistency: bool = False,
    ) -> None:
        """Use ``prefix`` in ``bucket``; ``credentials`` default to the environment's.

        ``allow_unsafe_writes=True`` writes even to a server the probe finds ignoring
        conditional requests, emulating them with a read before the write: two writers
        racing can then both win and one update is lost. ``weak_consistency=True`` (reads
        that may be stale, as Tigris's nearest region serves them) makes the storage
        read-only, whatever else is allowed: no write could be checked against what is.
        """
        if not isinstance(bucket, str) or not bucket or "/" in bucket:
            raise InvalidStorageURLError(f"s3://{bucket}", "the bucket must be a bare name")
        clean = (prefix or "").strip("/")
        if clean:
            try:
                check_key(clean)
            except StorageError as exc:
                raise InvalidStorageURLError(f"s3://{bucket}/{prefix}", str(exc)) from None
        if endpoint_url is not None:
            scheme = urlsplit(endpoint_url).scheme
            if scheme not in ("http", "https"):
                raise InvalidStorageURLError(endpoint_url, "endpoints are http(s):// URLs")
            if scheme == "http" and not allow_http:
                raise InvalidStorageURLError(
                    endpoint_url, "plain http is refused unless allow_http=True"
                )
        self._bucket = bucket
        self._prefix = clean
        self._root = f"{clean}/" if clean else ""
        self._region = region
        self._endpoint_url = endpoint_url
        self._allow_http = allow_http
        self._force_path_style = force_path_style
        self._stream_timeout = network_stream_timeout_seconds
        self._requester_pays = requester_pays
        self._allow_unsafe_writes = allow_unsafe_writes
        self._credentials: AnyS3Credential = credentials or S3Credentials.FromEnv()
        self._lost_static = False
        self._token = secrets.token_hex(16)
        _live_credentials[self._token] = self._credentials
        self._connections: dict[asyncio.AbstractEventLoop, Connection] = {}
        # A handle dropped without ``close`` (a pickled copy, say) still frees its sockets.
        weakref.finalize(self, drop, self._connections)
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._weak = bool(weak_consistency)
        # Weakly consistent: neither atomic operation can be relied on, and no probe runs
        # (it would write). Writes are refused by ``WriteAccess`` and by each write below.
        self._probed: StorageCapabilities | None = (
            StorageCapabilities(create_if_absent=False, compare_and_swap=False)
            if self._weak
            else None
        )
        self._tuning = StorageTuning()
        self.apply_tuning(tuning or StorageTuning())

    # --- identity ----------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def endpoint_url(self) -> str | None:
        return self._endpoint_url

    @property
    def tuning(self) -> StorageTuning:
        """The retries, limits and sizes in use (see ``apply_tuning``)."""
        return self._tuning

    @property
    def url(self) -> str:
        """``s3://<bucket>/<prefix>``; never any credential."""
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    @property
    def _where(self) -> str:
        """The location and endpoint, as messages name them."""
        endpoint = self._endpoint_url or "AWS"
        return f"{self.url} (endpoint {endpoint})"

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self._endpoint_url!r}" if self._endpoint_url else ""
        weak = ", weak consistency, read-only" if self._weak else ""
        return f"S3Storage({self.url!r}{endpoint}{weak})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, S3Storage):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def _identity(self) -> tuple[str | None, str, str]:
        return (self._endpoint_url, self._bucket, self._prefix)

    def __reduce__(self) -> tuple[Any, ...]:
        # No secret goes into the pickle: a token finds the live credentials in this process;
        # elsewhere they are resolved again (see the module docstring).
        refresh = None
        if isinstance(self._credentials, S3Credentials.Refreshable):
            refresh = self._credentials.pickled_function
        state = {
            "bucket": self._bucket,
            "prefix": self._prefix,
            "region": self._region,
            "endpoint_url": self._endpoint_url,
            "allow_http": self._allow_http,
            "force_path_style": self._force_path_style,
            "network_stream_timeout_seconds": self._stream_timeout,
            "requester_pays": self._requester_pays,
            "allow_unsafe_writes": self._allow_unsafe_writes,
            "tuning": self._tuning,
            "weak_consistency": self._weak,
        }
        return (_restore, (state, self._token, credential_kind(self._credentials), refresh))

    # --- settings ----------------------------------------------------------------------

    @property
    def unsafe_writes(self) -> bool:  # type: ignore[override]
        """True when the user opted into writes without atomic operations: with
        ``allow_unsafe_writes`` or Icechunk's ``unsafe_use_conditional_*=False`` (never with
        weak consistency, which is read-only)."""
        t = self._tuning
        return not self._weak and (
            self._allow_unsafe_writes
            or not t.use_conditional_create
            or not t.use_conditional_update
        )

    def apply_tuning(self, tuning: StorageTuning) -> None:
        """Use ``tuning`` from now on (overrides ``Storage.apply_tuning``); connections made
        earlier keep their pool size until the storage is reopened."""
        self._tuning = tuning
        self._refresh_capabilities()

    def _refresh_capabilities(self) -> None:
        """The capabilities: what the server honours (if probed) and what we use."""
        probed = self._probed or S3Storage.capabilities
        t = self._tuning
        capabilities = StorageCapabilities(
            create_if_absent=probed.create_if_absent and t.use_conditional_create,
            compare_and_swap=probed.compare_and_swap and t.use_conditional_update,
        )
        if capabilities == S3Storage.capabilities:
            self.__dict__.pop("capabilities", None)
        else:
            self.capabilities = capabilities

    @property
    def _emulate_create(self) -> bool:
        probed = self._probed
        return not self._tuning.use_conditional_create or (
            probed is not None and not probed.create_if_absent
        )

    @property
    def _emulate_update(self) -> bool:
        probed = self._probed
        return not self._tuning.use_conditional_update or (
            probed is not None and not probed.compare_and_swap
        )

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        """The object's bytes or a clipped slice (see ``Storage.get``); large objects come
        in concurrent ranged GETs of ``ideal_concurrent_request_size``."""
        if self._closed:
            raise self._closed_error()
        check_key(key)
        if byte_range is None:
            return (await self._fetch(key, 0, None))[0]
        start, end = check_byte_range(byte_range)
        if end is not None and end <= start:
            if not await self.exists(key):
                raise ObjectNotFoundError(key, self.url)
            return b""
        return (await self._fetch(key, start, end))[0]

    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        """The bytes and their ETag, the version token ``put_if_match`` compares."""
        if self._closed:
            raise self._closed_error()
        check_key(key)
        data, etag = await self._fetch(key, 0, None)
        if etag is None:
            raise StorageError(f"{self._where} returned no ETag for {key!r}")
        return data, etag

    async def _head(self, key: str) -> dict[str, Any] | None:
        """The object's ETag and ContentLength, or ``None`` if it is missing."""
        try:
            reply = await self._send("HEAD", key)
        except Failed as failed:
            if failed.failure is Failure.NOT_FOUND:
                return None
            raise self._error(failed, "look up", key) from None
        headers = reply.headers
        return {"ETag": headers.get("ETag"), "ContentLength": headers.get("Content-Length", 0)}

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists (a HEAD request)."""
        if self._closed:
            raise self._closed_error()
        return await self._head(check_key(key)) is not None

    async def size(self, key: str) -> int:
        """The object's size in bytes (a HEAD request)."""
        if self._closed:
            raise self._closed_error()
        head = await self._head(check_key(key))
        if head is None:
            raise ObjectNotFoundError(key, self.url)
        return int(head["ContentLength"])

    # --- listing -------------------------------------------------------------------------

    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """ListObjectsV2 pages, with ``StartAfter`` when given (overrides ``Storage.list``).
        Reserved keys (a probe's) are never listed."""
        self._check_open()
        return self._list(check_prefix(prefix), start_after)

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        if start_after is None:
            async for info in self._pages(prefix, None):
                yield info
            return
        # Servers built on directories (SeaweedFS) take ``StartAfter="a/b"`` as "after the
        # directory a/b" and skip the keys below it, which S3 lists: those are listed
        # separately and merged in, in key order.
        below = start_after + "/"
        main = self._pages(prefix, start_after)
        if below.startswith(prefix) or prefix.startswith(below):
            children = self._pages(max(below, prefix, key=len), None)
            listing = merged(main, children)
        else:
            listing = main
        async for info in listing:
            if info.key > start_after:
                yield info

    async def _pages(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        """ListObjectsV2, page after page; reserved keys (a probe's) are left out."""
        root = self._root
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Prefix": root + prefix,
            "MaxKeys": LIST_PAGE,
        }
        if self._requester_pays:
            params["RequestPayer"] = "requester"
        if start_after is not None:
            params["StartAfter"] = root + start_after
        cut = len(root)
        while True:
            try:
                page = await self._run(list_call(dict(params)))
            except Failed as failed:
                raise self._error(failed, "list", prefix or "/") from None
            for item in page.get("Contents", ()):
                key = item["Key"][cut:]
                if RESERVED_PREFIX in key and reserved(key):
                    continue
                yield ObjectInfo(key, int(item["Size"]), item["LastModified"])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token
            params.pop("StartAfter", None)

    def check_writable(self, capabilities: StorageCapabilities | None = None) -> None:
        """Weak consistency is read-only whatever the opt-ins; otherwise the common check."""
        self._refuse_weak()
        super().check_writable(capabilities)

    def _refuse_weak(self) -> None:
        """``ReadOnlyStorageError`` for any write to a weakly consistent storage."""
        if self._weak:
            raise ReadOnlyStorageError(
                f"{self._where} is read-only: it was opened with weak consistency "
                "(use_weak_consistency=True: reads from the nearest region, possibly stale), "
                "so no write could be checked against the latest state, as in Icechunk. "
                "To write, open it with use_weak_consistency=False"
            )

    async def put(self, key: str, data: bytes) -> None:
        """Write ``data`` unconditionally."""
        self._refuse_weak()
        if self._closed:
            raise self._closed_error()
        check_key(key)
        try:
            await self._write(key, data, {})
        except Failed as failed:
            raise self._error(failed, "write", key) from None

    async def put_new(self, key: str, data: bytes) -> None:
        """Create a fresh object with ``If-None-Match: *`` (overrides ``Storage.put_new``)."""
        self._refuse_weak()
        await self._create(key, data)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        """Create ``key`` with ``If-None-Match: *``; ``ObjectExistsError`` if it exists."""
        self._refuse_weak()
        await self._create(key, data)

    async def _create(self, key: str, data: bytes) -> None:
        if self._closed:
            raise self._closed_error()
        check_key(key)
        if self._emulate_create:
            await self._create_unsafely(key, data)
            return
        try:
            await self._write(key, data, {"IfNoneMatch": "*"})
        except Failed as failed:
            if failed.uncertain:
                await self._created_after_lost_reply(key, data, failed)
                return  # our try whose reply was lost landed
            if failed.failure is Failure.PRECONDITION:
                raise ObjectExistsError(key) from None
            raise self._error(failed, "create", key) from None

    async def _created_after_lost_reply(self, key: str, data: bytes, failed: Failed) -> None:
        """Return if ``key`` holds ``data`` now, a try whose reply was lost having landed;
        else raise, with ``outcome_unknown`` (the ``Storage`` contract): ``ObjectExistsError``
        if the key holds other bytes, or the error the writes ended with."""
        try:
            current: bytes | None = (await self._fetch(key, 0, None))[0]
        except ObjectNotFoundError:
            current = None
        except StorageError as unreadable:
            error = StorageError(
                f"{self._error(failed, 'create', key)}; whether {key!r} was created is "
                f"unknown: a reply was lost and reading it back failed too ({unreadable})"
            )
            error.outcome_unknown = True
            raise error from None
        if current == data:
            return
        error = (
            ObjectExistsError(key)
            if current is not None or failed.failure is Failure.PRECONDITION
            else self._error(failed, "create", key)
        )
        error.outcome_unknown = True
        raise error from None

    async def _create_unsafely(self, key: str, data: bytes) -> None:
        """HEAD then PUT: another writer between the two is overwritten (the race the
        user accepted with unsafe writes)."""
        if self._probed is not None and not self._probed.create_if_absent:
            self.check_writable()  # the repository checks too; this is defence in depth
        if await self._head(key) is not None:
            raise ObjectExistsError(key)
        try:
            await self._write(key, data, {})
        except Failed as failed:
            raise self._error(failed, "create", key) from None

    async def _holds(self, key: str, data: bytes) -> str | None:
        """The ETag if ``key`` holds exactly ``data`` now, else ``None``."""
        try:
            current, etag = await self._fetch(key, 0, None)
        except ObjectNotFoundError:
            return None
        return etag if current == data and etag else None

    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        """Replace ``key`` with ``If-Match: <version>``; the new ETag."""
        self._refuse_weak()
        if self._closed:
            raise self._closed_error()
        check_key(key)
        if self._emulate_update:
            return await self._swap_unsafely(key, data, version)
        try:
            return await self._write(key, data, {"IfMatch": version})
        except Failed as failed:
            if failed.failure not in (Failure.PRECONDITION, Failure.NOT_FOUND):
                raise self._error(failed, "update", key) from None
            if failed.uncertain:
                landed = await self._holds(key, data)
                if landed is not None:
                    return landed  # our first try landed; its reply was lost
            error = PreconditionFailedError(key)
            error.outcome_unknown = failed.uncertain
            raise error from None

    async def _swap_unsafely(self, key: str, data: bytes, version: str) -> str:
        """Compare the ETag a HEAD reads, then PUT: racy, as the user accepted."""
        if self._probed is not None and not self._probed.compare_and_swap:
            self.check_writable()  # the repository checks too; this is defence in depth
        head = await self._head(key)
        if head is None or head.get("ETag") != version:
            raise PreconditionFailedError(key)
        try:
            return await self._write(key, data, {})
        except Failed as failed:
            raise self._error(failed, "update", key) from None

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is fine."""
        self._refuse_weak()
        if self._closed:
            raise self._closed_error()
        await self._delete_key(check_key(key))

    async def _delete_key(self, key: str) -> None:
        try:
            await self._send("DELETE", key)
        except Failed as failed:
            if failed.failure is not Failure.NOT_FOUND:
                raise self._error(failed, "delete", key) from None

    async def delete_many(self, keys: Iterable[str]) -> int:
        """DeleteObjects in batches of 1000, all keys checked first (overrides
        ``Storage.delete_many``)."""
        self._refuse_weak()
        if self._closed:
            raise self._closed_error()
        checked = [check_key(key) for key in keys]
        batches = [checked[i : i + DELETE_BATCH] for i in range(0, len(checked), DELETE_BATCH)]
        await asyncio.gather(*(self._delete_batch(batch) for batch in batches))
        return len(checked)

    async def _delete_batch(self, batch: Sequence[str]) -> None:
        objects = [{"Key": self._root + key} for key in batch]
        params = {"Bucket": self._bucket, "Delete": {"Objects": objects, "Quiet": True}}
        if self._requester_pays:
            params["RequestPayer"] = "requester"
        try:
            response = await self._run(lambda client: client.delete_objects(**params))
        except Failed as failed:
            raise self._error(failed, "delete", batch[0]) from None
        errors = [e for e in response.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
        if errors:
            first = errors[0]
            key = str(first.get("Key", ""))[len(self._root) :]
            raise StorageError(
                f"could not delete {key!r} in {self._where} ({len(errors)} keys failed): "
                f"{first.get('Code')}: {first.get('Message', '')}"
            )

    # --- location, probe, lifecycle ------------------------------------------------------

    async def create_root(self) -> None:
        """Check that the bucket exists; buckets are never created (overrides
        ``Storage.create_root``)."""
        self._refuse_weak()
        self._check_open()
        params: dict[str, Any] = {"Bucket": self._bucket}
        try:
            await self._run(lambda client: client.head_bucket(**params))
        except Failed as failed:
            if failed.failure in (Failure.NOT_FOUND, Failure.NO_BUCKET):
                raise LocationNotFoundError(
                    f"bucket {self._bucket!r} at {self._endpoint_or_aws}"
                ) from None
            if failed.failure is not Failure.DENIED:  # HEAD may be denied where PUT is not
                raise self._error(failed, "find", "/") from None

    async def remove_leftovers(self, older_than: datetime, *, skip: Collection[str] = ()) -> int:
        """Delete probe objects a probe interrupted midway left behind, once older than
        ``older_than`` (overrides ``Storage.remove_leftovers``); uploads are never partial
        objects on S3, so nothing else is left over."""
        self._check_open()
        root = self._root
        params: dict[str, Any] = {"Bucket": self._bucket, "Prefix": root + PROBE_PREFIX}
        try:
            page = await self._run(list_call(params))
        except Failed as failed:
            raise self._error(failed, "list", PROBE_PREFIX) from None
        stale = [
            item["Key"][len(root) :]
            for item in page.get("Contents", ())
            if item["LastModified"] < older_than
        ]
        for key in stale:
            await self._delete_key(key)
        return len(stale)

    async def probe_capabilities(self) -> StorageCapabilities:
        """What the server really honours (overrides ``Storage.probe_capabilities``).

        AWS is known to honour both conditions. Another endpoint is probed once per process
        per (endpoint, bucket): a probe object under a reserved key is created, created
        again with ``If-None-Match: *`` (must fail), swapped with a current and then a stale
        ``If-Match`` (the second must fail), and deleted.
        """
        self._check_open()
        if not is_aws(self._endpoint_url) and not self._weak:
            where = (self._endpoint_url or "", self._bucket)
            found = _probed.get(where)
            if found is None:
                found = await self._probe()
                if found is not None:
                    _probed[where] = found
            if found is not None:
                self._probed = found
                self._refresh_capabilities()
        return self.capabilities

    async def close(self) -> None:
        """Close the client of every loop this storage used (overrides ``Storage.close``)."""
        if self._closed:
            return
        await super().close()
        connections = list(self._connections.values())
        self._connections.clear()
        for conn in connections:
            with suppress(Exception):
                await disconnect(conn)


def _restore(state: dict[str, Any], token: str, kind: str, refresh: bytes | None) -> S3Storage:
    """Unpickle: the live credentials if this process holds them, else re-resolved."""
    credentials = _live_credentials.get(token)
    lost_static = False
    if credentials is None:
        if kind == "anonymous":
            credentials = S3Credentials.Anonymous()
        elif kind == "refreshable" and refresh is not None:
            credentials = S3Credentials.Refreshable(refresh)
        else:
            credentials = S3Credentials.FromEnv()
            lost_static = kind == "static"
    storage = S3Storage(credentials=credentials, **state)
    storage._lost_static = lost_static
    return storage
