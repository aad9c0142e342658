"""One aiobotocore S3 client and one direct aiohttp session per event loop, with botocore's
own retries off (``S3Storage`` retries) and credentials resolved without ever being shown.

The client (built through s3fs) resolves credentials and addressing and serves listings,
multipart uploads, batch deletes and bucket checks; the direct session (``_s3_http``) sends
the hot requests, GET, PUT, HEAD and DELETE of one object, signed with the client's own
credentials at the URL the client would use. Both belong to the loop that made them: ick's
sync API runs on a private loop or on zarr's, and async users bring their own, so a storage
keeps one ``Connection`` per running loop and closes them all on ``close``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from icechunk_lib.errors import StorageError
from icechunk_lib.storage.credentials import (
    AnyS3Credential,
    S3Credentials,
    S3StaticCredentials,
    aws_profile_error,
    empty_profile_error,
)
from icechunk_lib.storage.tuning import StorageTuning

if TYPE_CHECKING:
    from icechunk_lib.storage._s3_http import DirectHTTP

__all__ = [
    "Connection",
    "ConnectionSettings",
    "connect",
    "disconnect",
    "drop",
    "inherited",
    "parse_timestamp",
]

REFRESH_ADVISORY_SECONDS = 60
"""Refreshable credentials are fetched again this long before they expire (if that fails,
the old ones are used until the mandatory margin below)."""
REFRESH_MANDATORY_SECONDS = 15
_FAR_FUTURE = timedelta(days=365 * 100)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where and how to connect: everything but the credentials."""

    bucket: str
    region: str | None
    endpoint_url: str | None
    force_path_style: bool
    connect_timeout: float
    read_timeout: float
    """Seconds a reply may stall before the request fails (a retry follows)."""
    where: str
    """The bucket and endpoint as errors show them."""
    aws: bool = False
    """The endpoint is AWS's own (a reply naming the bucket's region moves requests there)."""


@dataclass(slots=True)
class Connection:
    """A client and a direct session bound to one loop, and the semaphore limiting their
    requests in flight.

    ``closer`` is an async generator started on that loop whose ``finally`` closes the
    client: a loop closes its async generators when it shuts down (``asyncio.run`` and
    pytest's loops do), and a collected one is closed on its loop, so a client is closed
    on its own loop even when nobody calls ``S3Storage.close``.
    """

    client: Any
    http: DirectHTTP
    semaphore: asyncio.Semaphore
    loop: asyncio.AbstractEventLoop
    closer: Any = None
    dropped: bool = False
    pid: int = field(default_factory=os.getpid)
    """The process that made it: a forked child inherits it but must never use or close it."""


async def _closing(conn: Connection) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if not conn.dropped:
            conn.dropped = True
            with suppress(Exception):
                await conn.http.close()
            with suppress(Exception):
                await conn.client.close()


def _no_credentials(settings: ConnectionSettings, lost_static: bool) -> StorageError:
    if lost_static:
        return StorageError(
            f"no S3 credentials for {settings.where}: this storage was unpickled in another "
            "process, and keys passed in code (access_key_id/secret_access_key) are never "
            "pickled. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in "
            "this process, or pass get_credentials= (a module-level function, called again "
            "after unpickling)"
        )
    return empty_profile_error(settings.where) or StorageError(
        f"no S3 credentials found for {settings.where}: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), pass access_key_id/secret_access_key or "
        "get_credentials, or anonymous=True for a public bucket"
    )


def _metadata(credentials: S3StaticCredentials) -> dict[str, Any]:
    """botocore's credential metadata for a refreshable source."""
    expires = credentials.expires_after
    if expires is None:
        expires = datetime.now(UTC) + _FAR_FUTURE
    elif expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return {
        "access_key": credentials.access_key_id,
        "secret_key": credentials.secret_access_key,
        "token": credentials.session_token,
        "expiry_time": expires.isoformat(),
    }


def _fetcher(get_credentials: Callable[[], S3StaticCredentials], where: str) -> Callable[[], Any]:
    async def fetch() -> dict[str, Any]:
        try:
            fresh = await asyncio.to_thread(get_credentials)
        except Exception as exc:
            raise StorageError(
                f"get_credentials failed for {where}: {type(exc).__name__}"
            ) from None  # its message could hold a secret
        if not isinstance(fresh, S3StaticCredentials):
            raise StorageError(
                f"get_credentials must return S3StaticCredentials for {where}, "
                f"got {type(fresh).__name__}"
            )
        return _metadata(fresh)

    return fetch


_SESSION: list[Any] = []
_HTTP_SESSION: list[type] = []


def parse_timestamp(value: Any) -> datetime:
    """A timestamp in a reply, as an aware UTC datetime, without dateutil.

    botocore parses every ``LastModified`` with ``dateutil.parser``, a large part of its
    CPU per request. S3 sends ISO 8601 in listings and HTTP dates in headers; those are
    parsed by the standard library here, anything else by botocore's own parser.
    """
    if isinstance(value, str):
        parsed: datetime | None = None
        try:
            if value[-4:] == " GMT":
                parsed = parsedate_to_datetime(value)
            elif len(value) >= 19 and value[4] == "-" and value[10] == "T":
                parsed = datetime.fromisoformat(value)
        except (ValueError, TypeError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    from botocore.utils import parse_timestamp as botocore_parse

    result: datetime = botocore_parse(value)
    return result


def _fast_parsing(session: Any) -> Any:
    """The session, its replies' timestamps parsed by ``parse_timestamp``."""
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp
    )
    return session


def _http_session_class() -> type:
    """aiobotocore's HTTP session, without aiohttp's hidden retry.

    aiohttp sends an idempotent request (PUT included) a second time when a kept-alive
    connection breaks before the reply. For a conditional PUT that hides a lost reply: the
    resend meets our own write and fails with 412, a spurious conflict. Our retry loop
    does resend, knowing the first try may have landed. (``_retry_connection`` is private;
    aiohttp's own test client turns it off the same way.)
    """
    if not _HTTP_SESSION:
        from aiobotocore.httpsession import AIOHTTPSession

        class NoHiddenRetrySession(AIOHTTPSession):  # type: ignore[misc]
            async def _get_session(self, proxy_url: Any) -> Any:
                pool = await super()._get_session(proxy_url)  # an aiohttp ClientSession
                pool._retry_connection = False
                return pool

        _HTTP_SESSION.append(NoHiddenRetrySession)
    return _HTTP_SESSION[0]


def _shared_session() -> Any:
    """One aiobotocore session per process: it caches the S3 service model, which takes
    a tenth of a second to load for each new session."""
    if not _SESSION:
        from aiobotocore.session import AioSession

        _SESSION.append(_fast_parsing(AioSession()))
    return _SESSION[0]


async def connect(
    settings: ConnectionSettings,
    credentials: AnyS3Credential,
    tuning: StorageTuning,
    *,
    requester_pays: bool,
    lost_static: bool,
) -> Connection:
    """A new client on the running loop; a bad AWS profile or profile file, which botocore
    reports as it builds one, is a ``StorageError`` naming it."""
    from botocore.exceptions import BotoCoreError

    try:
        return await _connect(
            settings, credentials, tuning, requester_pays=requester_pays, lost_static=lost_static
        )
    except BotoCoreError as exc:
        raise aws_profile_error(settings.where, exc) from None


async def _connect(
    settings: ConnectionSettings,
    credentials: AnyS3Credential,
    tuning: StorageTuning,
    *,
    requester_pays: bool,
    lost_static: bool,
) -> Connection:
    """A new client on the running loop (s3fs builds it from the settings and credentials)."""
    import s3fs
    from aiobotocore.credentials import AioRefreshableCredentials
    from aiobotocore.session import AioSession

    loop = asyncio.get_running_loop()
    aio = _shared_session()
    fs_kwargs: dict[str, Any] = {}
    signing: Any = None  # botocore's credentials object, for the direct session
    if isinstance(credentials, S3Credentials.Anonymous):
        fs_kwargs["anon"] = True
    elif isinstance(credentials, S3Credentials.Static):
        static = credentials.credentials
        fs_kwargs.update(
            key=static.access_key_id,
            secret=static.secret_access_key,
            token=static.session_token,
        )
    elif isinstance(credentials, S3Credentials.Refreshable):
        fetch = _fetcher(credentials.get_credentials, settings.where)
        current = credentials.current
        aio = _fast_parsing(AioSession())  # its own: it holds these credentials
        aio.register_component("data_loader", _shared_session().get_component("data_loader"))
        metadata = _metadata(current) if current is not None else await fetch()
        signing = aio._credentials = AioRefreshableCredentials.create_from_metadata(
            metadata,
            refresh_using=fetch,
            method="ick-get-credentials",
            advisory_timeout=REFRESH_ADVISORY_SECONDS,
            mandatory_timeout=REFRESH_MANDATORY_SECONDS,
        )
    else:  # FromEnv: the environment, profile, role (the session keeps what it found)
        signing = await aio.get_credentials()
        if signing is None:
            raise _no_credentials(settings, lost_static)
    config: dict[str, Any] = {
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "retries": {"total_max_attempts": 1, "mode": "standard"},  # our retries decide
        "max_pool_connections": tuning.max_concurrent_requests,
        "http_session_cls": _http_session_class(),
        # No CRC trailers: S3-compatible servers disagree on them, and they cost CPU.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if settings.force_path_style:
        config["s3"] = {"addressing_style": "path"}
    client_kwargs: dict[str, Any] = {}
    if settings.region:
        client_kwargs["region_name"] = settings.region
    fs = s3fs.S3FileSystem(
        endpoint_url=settings.endpoint_url,
        client_kwargs=client_kwargs,
        config_kwargs=config,
        requester_pays=requester_pays,
        session=aio,
        asynchronous=True,
        loop=loop,
        skip_instance_cache=True,
        use_listings_cache=False,
        **fs_kwargs,
    )
    client = await fs.set_session()
    try:
        http = await _direct(client, settings, credentials, signing, tuning, requester_pays)
    except BaseException:
        await client.close()
        raise
    conn = Connection(client, http, asyncio.Semaphore(tuning.max_concurrent_requests), loop)
    conn.closer = _closing(conn)
    await conn.closer.__anext__()  # the loop now knows it, and closes it at shutdown
    return conn


async def _direct(
    client: Any,
    settings: ConnectionSettings,
    credentials: AnyS3Credential,
    signing: Any,
    tuning: StorageTuning,
    requester_pays: bool,
) -> DirectHTTP:
    """The direct session beside ``client``: botocore's URL for an object of the bucket (a
    presigned one, cut before the key) and its region, and the same credentials."""
    # Imported here, as s3fs is: aiohttp comes with the s3 extra.
    from icechunk_lib.storage._s3_http import (
        CredentialSource,
        DirectHTTP,
        rehomed,
        route_from_url,
    )
    from icechunk_lib.storage._sigv4 import Keys

    url = await client.generate_presigned_url(
        "get_object", Params={"Bucket": settings.bucket, "Key": "ick-route"}, ExpiresIn=60
    )
    if isinstance(credentials, S3Credentials.Static):
        static = credentials.credentials
        source = CredentialSource(
            Keys(static.access_key_id, static.secret_access_key, static.session_token)
        )
    else:
        source = await CredentialSource.of(signing)
    region = client.meta.region_name or "us-east-1"
    route = route_from_url(url, settings.aws)
    if settings.aws:  # presigned URLs name the global host; requests go to the region's
        route = rehomed(route, region)
    return DirectHTTP(
        route,
        region,
        source,
        requester_pays=requester_pays,
        max_connections=tuning.max_concurrent_requests,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )


async def disconnect(connection: Connection) -> None:
    """Close the client, on its own loop if that is still running."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if connection.dropped:
        return
    if inherited(connection):
        return
    if running is connection.loop:
        await connection.closer.aclose()
    elif not connection.loop.is_closed() and connection.loop.is_running():
        # Another thread's loop: close it there, without waiting for it.
        asyncio.run_coroutine_threadsafe(connection.closer.aclose(), connection.loop)
    else:  # its loop has ended without closing it: close the sockets here
        drop({connection.loop: connection})


def drop(connections: dict[asyncio.AbstractEventLoop, Connection]) -> None:
    """Close, without awaiting, the clients nobody else will close: those of a storage
    collected unclosed (at exit too), and those whose loop has ended.

    A client whose loop runs in another thread (zarr's I/O loop) is closed there, waiting a
    moment; on the loop running here, a task closes it; with its loop stopped or closed,
    its sockets are closed here. That last reaches into aiobotocore and aiohttp
    (``_endpoint``, ``_sessions``, ``_connector``): no public call closes a client without
    its loop.
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for conn in list(connections.values()):
        if conn.dropped or inherited(conn):
            continue
        loop = conn.loop
        if loop.is_running() and not loop.is_closed():
            if loop is running:
                loop.create_task(conn.closer.aclose())
                continue
            future = asyncio.run_coroutine_threadsafe(conn.closer.aclose(), loop)
            with suppress(Exception):
                future.result(timeout=2)
            if conn.dropped:
                continue
        conn.dropped = True
        _close_sockets(conn)
        # Finish the closer without its loop (``dropped`` makes its ``finally`` a no-op),
        # so that collecting it asks nothing of a stopped loop.
        with suppress(StopIteration, RuntimeError, Exception):
            conn.closer.aclose().send(None)
    connections.clear()


def inherited(conn: Connection) -> bool:
    """Whether ``conn`` was made by another process (this one is a fork of it); if so it is
    set aside, never used or closed here.

    Its sockets and loop are the parent's. Closing them here (aiohttp does, when its pool is
    collected) unregisters the sockets from the epoll instance both processes share, and the
    parent's next request on one of them waits for a reply it never hears of, until its read
    timeout. So the pool is marked closed and emptied without touching a socket: collecting
    it then closes only this process's copies of the descriptors.
    """
    if conn.pid == os.getpid():
        return False
    if not conn.dropped:
        conn.dropped = True
        from icechunk_lib.storage._s3_http import set_aside

        conn.http.set_aside()
        for connector in _botocore_connectors(conn):
            set_aside(connector)
    return True


def _close_sockets(conn: Connection) -> None:
    from icechunk_lib.storage._s3_http import close_pool

    conn.http.close_sockets()
    for connector in _botocore_connectors(conn):
        close_pool(connector)


def _botocore_connectors(conn: Connection) -> list[Any]:
    """The aiohttp connectors of the aiobotocore client's pools (no public way to them)."""
    with suppress(Exception):
        http = conn.client._endpoint.http_session
        return [pool.connector for pool in list(http._sessions.values())]
    return []
