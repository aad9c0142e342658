"""One aiobotocore S3 client per event loop, built through s3fs, with botocore's own retries
off (``S3Storage`` retries) and credentials resolved without ever being shown.

An aiobotocore client belongs to the loop that made it: ick's sync API runs on a private
loop or on zarr's, and async users bring their own, so a storage keeps one ``Connection``
per running loop and closes them all on ``close``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from icechunk_lib.errors import StorageError
from icechunk_lib.storage.credentials import AnyS3Credential, S3Credentials, S3StaticCredentials
from icechunk_lib.storage.tuning import StorageTuning

__all__ = ["Connection", "ConnectionSettings", "connect", "disconnect", "drop"]

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


@dataclass(slots=True)
class Connection:
    """A client bound to one loop, and the semaphore limiting its requests in flight."""

    client: Any
    semaphore: asyncio.Semaphore
    loop: asyncio.AbstractEventLoop


def _no_credentials(settings: ConnectionSettings, lost_static: bool) -> StorageError:
    if lost_static:
        return StorageError(
            f"no S3 credentials for {settings.where}: this storage was unpickled in another "
            "process, and keys passed in code (access_key_id/secret_access_key) are never "
            "pickled. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in "
            "this process, or pass get_credentials= (a module-level function, called again "
            "after unpickling)"
        )
    return StorageError(
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
                session = await super()._get_session(proxy_url)
                session._retry_connection = False
                return session

        _HTTP_SESSION.append(NoHiddenRetrySession)
    return _HTTP_SESSION[0]


def _shared_session() -> Any:
    """One aiobotocore session per process: it caches the S3 service model, which takes
    a tenth of a second to load for each new session."""
    if not _SESSION:
        from aiobotocore.session import AioSession

        _SESSION.append(AioSession())
    return _SESSION[0]


async def connect(
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
    session = _shared_session()
    fs_kwargs: dict[str, Any] = {}
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
        session = AioSession()  # its own: it holds these credentials
        session.register_component("data_loader", _shared_session().get_component("data_loader"))
        metadata = _metadata(current) if current is not None else await fetch()
        session._credentials = AioRefreshableCredentials.create_from_metadata(
            metadata,
            refresh_using=fetch,
            method="ick-get-credentials",
            advisory_timeout=REFRESH_ADVISORY_SECONDS,
            mandatory_timeout=REFRESH_MANDATORY_SECONDS,
        )
    elif await session.get_credentials() is None:  # FromEnv: the environment, profile, role
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
        session=session,
        asynchronous=True,
        loop=loop,
        skip_instance_cache=True,
        use_listings_cache=False,
        **fs_kwargs,
    )
    client = await fs.set_session()
    return Connection(client, asyncio.Semaphore(tuning.max_concurrent_requests), loop)


async def disconnect(connection: Connection) -> None:
    """Close the client's connections, from whichever loop is running."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is connection.loop:
        await connection.client.close()
    elif not connection.loop.is_closed() and connection.loop.is_running():
        # Another thread's loop: close it there, without waiting for it.
        asyncio.run_coroutine_threadsafe(connection.client.close(), connection.loop)


def drop(connections: dict[asyncio.AbstractEventLoop, Connection]) -> None:
    """Close the sockets of connections nobody will close (a storage collected unclosed,
    or one whose loop has ended), synchronously, so no aiohttp session is left open.

    This reaches into aiobotocore and aiohttp (``_endpoint``, ``_sessions``,
    ``_connector._close``): no public call closes a client without awaiting on its loop,
    and that loop may be gone.
    """
    for conn in list(connections.values()):
        with suppress(Exception):
            sessions = conn.client._endpoint.http_session._sessions
            for session in list(sessions.values()):
                connector = session.connector
                if connector is not None:
                    connector._close()
    connections.clear()
