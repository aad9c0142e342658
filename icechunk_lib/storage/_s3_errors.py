"""How S3 replies and failures are read: by HTTP status and error code, never by the class
of the exception a client library happened to raise for them."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any

__all__ = ["EXPIRED_CODES", "Failure", "classify", "error_code", "http_status"]


class Failure(Enum):
    """What a failed request means for the caller."""

    NOT_FOUND = "not found"
    """404 / NoSuchKey: the object is missing."""
    NO_BUCKET = "no bucket"
    """NoSuchBucket: the location itself is gone."""
    PRECONDITION = "precondition"
    """412 / PreconditionFailed: a condition did not hold; the write did not happen."""
    DENIED = "denied"
    """403 and its codes: the credentials are wrong or lack permission."""
    THROTTLED = "throttled"
    """503, SlowDown, 429, 5xx, RequestTimeout: the server refused for now; retry later.
    It answered, so the request was not applied."""
    NO_REPLY = "no reply"
    """A timeout or a broken connection: the request may or may not have been applied."""
    RANGE = "range"
    """416: the range starts at or past the end of the object."""
    OTHER = "other"
    """Anything else: reported as it is."""


EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
"""Codes saying the session token has expired: the credentials are refreshed, once."""
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_DENIED_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "403",
    "Forbidden",
}
_THROTTLED_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "RequestLimitExceeded",
    "TooManyRequests",
    "ConditionalRequestConflict",  # AWS: another conditional write is in flight; retry
}
_THROTTLED_STATUSES = {408, 429, 500, 502, 503, 504}


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an error reply, or ``None`` if the server gave none."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def error_code(exc: BaseException) -> str:
    """The S3 error code of an error reply (``""`` if none)."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = response.get("Error", {}).get("Code", "")
    return str(code)


def classify(exc: BaseException) -> Failure:
    """What ``exc``, raised by one S3 request, means (see ``Failure``)."""
    status = http_status(exc)
    if status is None:
        return Failure.NO_REPLY if _is_network_failure(exc) else Failure.OTHER
    code = error_code(exc)
    if code == "NoSuchBucket":
        return Failure.NO_BUCKET
    if status == 412 or code == "PreconditionFailed":
        return Failure.PRECONDITION
    if status == 416 or code == "InvalidRange":
        return Failure.RANGE
    if code in _THROTTLED_CODES or status in _THROTTLED_STATUSES:
        return Failure.THROTTLED
    if status == 404 or code in _NOT_FOUND_CODES:
        return Failure.NOT_FOUND
    if status == 403 or code in _DENIED_CODES:
        return Failure.DENIED
    return Failure.OTHER


def _is_network_failure(exc: BaseException) -> bool:
    """A timeout or connection failure, without an HTTP reply: the one place classes are
    looked at, because no status exists to look at."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    module = type(exc).__module__
    name = type(exc).__name__
    if module.startswith(("aiohttp", "botocore", "aiobotocore", "urllib3")):
        # botocore's ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError,
        # ConnectionClosedError, ResponseStreamingError; aiohttp's ClientConnectionError,
        # ClientConnectorError, ClientOSError, ServerDisconnectedError, ClientPayloadError.
        return any(
            word in name
            for word in (
                "Timeout",
                "Connection",
                "Connector",
                "OSError",
                "Disconnected",
                "Payload",
                "Streaming",
            )
        )
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)
