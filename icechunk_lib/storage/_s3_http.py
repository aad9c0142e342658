"""S3's hot requests (GET, PUT, HEAD, DELETE of one object) sent straight through aiohttp,
signed by ``_sigv4``, without botocore's per-request pipeline.

botocore spends about 3 ms of CPU on each request (endpoint rules, event hooks, a
user-agent rebuilt, ``AWSRequest`` objects, response parsing); this path spends a fraction
of that. botocore still builds the client (credentials, profiles, addressing), whose
answers this path reuses: the URL a request goes to is the one botocore would use, and
refreshing credentials are botocore's own object, refreshed as botocore would.

An error reply becomes ``S3ReplyError``, shaped like botocore's ``ClientError`` (status and
the XML body's ``<Code>``) so that ``_s3_errors.classify`` reads both alike.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import ssl
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from aiohttp.payload import BytesPayload, Payload
from yarl import URL

from icechunk_lib.storage._sigv4 import EMPTY_SHA256, Keys, Signer

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

__all__ = [
    "CredentialSource",
    "DirectHTTP",
    "Reply",
    "Route",
    "S3ReplyError",
    "close_pool",
    "rehomed",
    "route_from_url",
    "set_aside",
]

_log = logging.getLogger(__name__)

_ROUTE_KEY = "ick-route"
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_REGION = re.compile(rb"<Region>([^<]*)</Region>")
_AWS_REGION_IN_HOST = re.compile(
    r"(^|\.)s3(\.dualstack)?(\.[a-z]{2}(?:-[a-z]+)+-\d+)?(\.amazonaws\.com(?:\.cn)?)$"
)


class S3ReplyError(Exception):
    """An error reply to a direct request, with a botocore-shaped ``response`` (status,
    code, message) for ``_s3_errors``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}" + (f": {message}" if message else ""))
        self.response: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    @property
    def code(self) -> str:
        code: str = self.response["Error"]["Code"]
        return code

    def __reduce__(self) -> tuple[object, ...]:
        error = self.response["Error"]
        status = self.response["ResponseMetadata"]["HTTPStatusCode"]
        return (S3ReplyError, (status, error["Code"], error["Message"]))


@dataclass(frozen=True, slots=True)
class Route:
    """Where an object's requests go: ``origin`` (``scheme://host[:port]``), the ``host``
    header, and ``path``, what comes before the key (``/bucket/`` in path style, ``/``
    for a virtual host, an endpoint's own path first), not encoded."""

    origin: str
    host: str
    path: str
    aws: bool

    def target(self, key: str) -> tuple[str, str]:
        """The URL (encoded) and canonical URI of ``key``."""
        uri = quote(self.path + key, safe="/")
        return self.origin + uri, uri


def route_from_url(url: str, aws: bool) -> Route:
    """The route of a URL botocore made for the object ``ick-route`` in the bucket (a
    presigned URL: addressing style, endpoint path and region as botocore resolves them)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path.endswith("/" + _ROUTE_KEY):
        raise ValueError(f"unexpected object URL from botocore: {parts.path!r}")
    host = parts.netloc.rpartition("@")[2]
    default_port = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
    if default_port and host.endswith(default_port):
        host = host[: -len(default_port)]
    return Route(f"{parts.scheme}://{host}", host, path[: -len(_ROUTE_KEY)], aws)


def rehomed(route: Route, region: str) -> Route:
    """An AWS route moved to ``region`` (after a reply named the bucket's region)."""
    host = _AWS_REGION_IN_HOST.sub(
        lambda m: f"{m.group(1)}s3{m.group(2) or ''}.{region}{m.group(4)}", route.host
    )
    scheme = route.origin.split("://", 1)[0]
    return Route(f"{scheme}://{host}", host, route.path, route.aws)


class CredentialSource:
    """The keys a direct request is signed with: fixed ones, none (anonymous), or
    botocore's credentials object (the environment's, a profile's, a role's, or
    ``get_credentials``'), asked per request so that it refreshes before expiry."""

    __slots__ = ("_botocore", "_fixed", "_frozen", "_keys")

    def __init__(self, fixed: Keys | None = None, botocore: Any = None) -> None:
        self._fixed = fixed
        self._botocore = botocore
        self._frozen: Any = None
        self._keys: Keys | None = None

    def __repr__(self) -> str:
        kind = "refreshing" if self._botocore is not None else "fixed" if self._fixed else "none"
        return f"CredentialSource({kind})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("credentials are never pickled")

    @classmethod
    async def of(cls, credentials: Any) -> CredentialSource:
        """The source for a botocore credentials object (``None``: anonymous)."""
        if credentials is None:
            return cls()
        if not hasattr(credentials, "refresh_needed"):  # plain keys: frozen once
            frozen = await credentials.get_frozen_credentials()
            return cls(Keys(frozen.access_key, frozen.secret_key, frozen.token))
        return cls(botocore=credentials)

    async def keys(self) -> Keys | None:
        """The keys to sign with now (``None``: send unsigned)."""
        if self._botocore is None:
            return self._fixed
        frozen = await self._botocore.get_frozen_credentials()
        if frozen is not self._frozen:
            self._frozen = frozen
            self._keys = Keys(frozen.access_key, frozen.secret_key, frozen.token)
        return self._keys

    async def refresh(self) -> bool:
        """Fetch fresh credentials now (the server said the token expired); whether new
        ones could be had. botocore offers no public call for a forced refresh."""
        creds = self._botocore
        if creds is None or not hasattr(creds, "_protected_refresh"):
            return False
        try:
            async with creds._refresh_lock:
                await creds._protected_refresh(is_mandatory=True)
        except Exception:
            return False
        return True


class Reply:
    """A successful reply: its headers and body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def _ssl_context() -> ssl.SSLContext:
    """Certificates as botocore finds them: ``AWS_CA_BUNDLE``, else its bundled ones."""
    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True))


class DirectHTTP:
    """One aiohttp session on one event loop, sending signed requests for one bucket."""

    def __init__(
        self,
        route: Route,
        region: str,
        credentials: CredentialSource,
        *,
        requester_pays: bool,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.route = route
        self.signer = Signer(region)
        self.credentials = credentials
        self._extra = {"x-amz-request-payer": "requester"} if requester_pays else {}
        https = route.origin.startswith("https:")
        connector = aiohttp.TCPConnector(
            limit=max_connections, limit_per_host=0, ssl=_ssl_context() if https else False
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=connect_timeout, sock_read=read_timeout
            ),
            auto_decompress=False,  # the bytes as stored, whatever Content-Encoding says
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        # HTTP(S)_PROXY and NO_PROXY, as botocore honours them: looked up once here, where
        # aiohttp's ``trust_env`` would look in a thread for every request.
        self._proxy: dict[str, Any] = {}
        with suppress(LookupError):
            proxy, proxy_auth = get_env_proxy_for_url(URL(route.origin))
            self._proxy = {"proxy": proxy, "proxy_auth": proxy_auth}
        # aiohttp sends an idempotent request (PUT included) again, unasked, when a
        # kept-alive connection breaks before the reply: a conditional PUT whose first try
        # landed would then fail with 412 and hide the lost reply. Our retries resend,
        # knowing. (Private, as for aiobotocore's session in ``_s3_client``.)
        self.session._retry_connection = False

    def __repr__(self) -> str:
        return f"DirectHTTP({self.route.origin!r})"

    async def close(self) -> None:
        await self.session.close()

    def close_sockets(self) -> None:
        """Close the sockets without the loop (it has ended); see ``_s3_client.drop``."""
        close_pool(self.session.connector)

    def set_aside(self) -> None:
        """Forget the pool without touching a socket (a forked child's inherited session);
        see ``_s3_client.inherited``."""
        set_aside(self.session.connector)

    async def send(
        self,
        method: str,
        key: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Reply:
        """One request for the object at ``key`` (the full key in the bucket); an error
        reply raises ``S3ReplyError``, a failure without reply aiohttp's exception."""
        try:
            return await self._send_once(method, key, headers, body)
        except _Moved as moved:
            # AWS, the bucket in another region than botocore guessed: sign for that one
            # and send again (the reply was an error, so nothing was applied).
            self.route = rehomed(self.route, moved.region)
            self.signer = Signer(moved.region)
        return await self._send_once(method, key, headers, body)

    async def _send_once(
        self, method: str, key: str, extra: dict[str, str] | None, body: bytes
    ) -> Reply:
        route = self.route
        url, uri = route.target(key)
        headers = {"host": route.host, **self._extra}
        if extra:
            headers.update(extra)
        keys = await self.credentials.keys()
        if keys is not None:
            digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
            self.signer.sign(method, uri, "", headers, keys, digest)
        async with self.session.request(
            method,
            URL(url, encoded=True),
            headers=headers,
            data=(_Body(body) if len(body) > _LARGE else body) if method == "PUT" else None,
            allow_redirects=False,
            **self._proxy,
        ) as response:
            data = await response.read()
            status = response.status
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("%s %s -> %d", method, uri, status)
            if status < 300:
                return Reply(status, response.headers, data)
            code, message, region = _error_fields(status, data)
            region = response.headers.get("x-amz-bucket-region") or region
            if (
                route.aws
                and status in (301, 400)
                and region
                and region != self.signer.region
                and re.fullmatch(r"[a-z]{2}(?:-[a-z]+)+-\d+", region)
            ):
                raise _Moved(status, code, message, region)
            raise S3ReplyError(status, code, message)


_LARGE = 1 << 20


class _Body(BytesPayload):
    """A large body sent as it is, like a small one: the transport buffers what the socket
    does not take at once. (aiohttp warns past 1 MiB and suggests a file object, which it
    would read in a thread, piece by piece: more CPU for the same bytes.)"""

    def __init__(self, value: bytes) -> None:
        Payload.__init__(self, value, content_type="application/octet-stream")
        self._size = len(value)


class _Moved(S3ReplyError):
    """The bucket is in ``region``; if sent again there and still moved, an error."""

    def __init__(self, status: int, code: str, message: str, region: str) -> None:
        super().__init__(status, code, message)
        self.region = region


def _error_fields(status: int, body: bytes) -> tuple[str, str, str]:
    """The code, message and region in an S3 XML error body (a HEAD's has none: the
    status stands for the code, as botocore does)."""
    code = _CODE.search(body)
    message = _MESSAGE.search(body)
    region = _REGION.search(body)
    return (
        code.group(1).decode(errors="replace") if code else str(status),
        message.group(1).decode(errors="replace") if message else "",
        region.group(1).decode(errors="replace") if region else "",
    )


def close_pool(connector: Any) -> None:
    """Close an aiohttp connector's pooled sockets and the connector, without its loop (it
    has ended). asyncio hands out a ``TransportSocket`` view, which cannot close: the socket
    under it is closed."""
    if connector is None:
        return
    with suppress(Exception):
        for protocols in list(connector._conns.values()):
            for protocol, _ in protocols:
                transport = protocol.transport
                view = transport and transport.get_extra_info("socket")
                sock = getattr(view, "_sock", view)
                if sock is not None:
                    with suppress(OSError):
                        sock.close()
    with suppress(Exception):
        connector._close()


def set_aside(connector: Any) -> None:
    """Mark an inherited connector closed and empty its pool, touching no socket: the
    sockets and the epoll registering them are the parent process's."""
    if connector is None:
        return
    with suppress(Exception):
        connector._conns.clear()
        connector._closed = True
