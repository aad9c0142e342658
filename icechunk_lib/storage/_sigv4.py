"""AWS Signature Version 4 for S3 requests, in a few microseconds each.

botocore signs through ``AWSRequest`` objects, event hooks and a per-request key
derivation; this signs one request from plain strings, with the derived signing key cached
per (secret, date, region). S3's rules apply: the path is URI-encoded once (each segment,
``/`` kept, ``~`` unreserved), never normalised; the payload hash is always sent in
``x-amz-content-sha256`` and signed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

__all__ = [
    "EMPTY_SHA256",
    "Keys",
    "Signer",
    "amz_date",
    "canonical_query",
    "canonical_uri",
]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"


class Keys:
    """Frozen credentials for one request: never shown by ``repr``."""

    __slots__ = ("access_key", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token

    def __repr__(self) -> str:
        return f"Keys(access_key={self.access_key!r}, secret_key='***')"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("S3 keys are never pickled")


def canonical_uri(path: str) -> str:
    """``path`` (``/bucket/key`` or ``/key``, not encoded) as S3 signs and sends it: each
    byte outside ``A-Za-z0-9-._~`` and ``/`` percent-encoded, as UTF-8."""
    return quote(path, safe="/")


def canonical_query(params: list[tuple[str, str]]) -> str:
    """The canonical query string: names and values encoded (``/`` too), sorted."""
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def amz_date(now: float | None = None) -> str:
    """``x-amz-date`` for ``now`` (seconds since the epoch; default: the clock)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class Signer:
    """Signs requests to one region's S3, caching the signing key of the current day."""

    __slots__ = ("_cached", "region", "service")

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        self._cached: tuple[str, str, bytes] | None = None

    def __repr__(self) -> str:
        return f"Signer(region={self.region!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a signer holds a secret and is never pickled")

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached = self._cached
        if cached is not None and cached[0] == day and cached[1] == secret:
            return cached[2]
        key = _hmac(("AWS4" + secret).encode(), day)
        key = _hmac(key, self.region)
        key = _hmac(key, self.service)
        key = _hmac(key, "aws4_request")
        self._cached = (day, secret, key)
        return key

    def sign(
        self,
        method: str,
        uri: str,
        query: str,
        headers: dict[str, str],
        keys: Keys,
        payload_sha256: str = EMPTY_SHA256,
        date: str | None = None,
    ) -> None:
        """Add ``x-amz-date``, ``x-amz-content-sha256``, ``x-amz-security-token`` (with a
        session token) and ``authorization`` to ``headers``, signing every header in it.

        ``headers`` has lower-case names and must hold ``host``; ``uri`` and ``query`` are
        already canonical (``canonical_uri``, ``canonical_query``).
        """
        stamp = date or amz_date()
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_sha256
        if keys.token:
            headers["x-amz-security-token"] = keys.token
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        signed = ";".join(names)
        request = f"{method}\n{uri}\n{query}\n{canonical_headers}\n{signed}\n{payload_sha256}"
        day = stamp[:8]
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        signature = hmac.new(
            self._signing_key(keys.secret_key, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers["authorization"] = (
            f"{ALGORITHM} Credential={keys.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
