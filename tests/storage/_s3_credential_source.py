"""Module-level ``get_credentials`` functions for the S3 credential tests: they pickle by
reference, so a storage unpickled in another process calls them again there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import s3_servers

from icechunk_lib.storage.credentials import S3StaticCredentials

CALLS: list[datetime] = []
"""When each function below was called, in this process."""
_ALTERNATE: list[bool] = []


def long_lived() -> S3StaticCredentials:
    """The test servers' keys, valid for an hour."""
    CALLS.append(datetime.now(UTC))
    return S3StaticCredentials(
        s3_servers.ACCESS_KEY,
        s3_servers.SECRET_KEY,
        expires_after=datetime.now(UTC) + timedelta(hours=1),
    )


def short_lived() -> S3StaticCredentials:
    """The test servers' keys, expiring within the refresh margin: fetched for each request."""
    CALLS.append(datetime.now(UTC))
    return S3StaticCredentials(
        s3_servers.ACCESS_KEY,
        s3_servers.SECRET_KEY,
        expires_after=datetime.now(UTC) + timedelta(seconds=5),
    )


def wrong_then_right() -> S3StaticCredentials:
    """A wrong secret about to expire first, then the right keys for an hour: whoever signs
    after the refresh must sign with the new ones."""
    CALLS.append(datetime.now(UTC))
    _ALTERNATE.append(not _ALTERNATE[-1] if _ALTERNATE else True)
    if _ALTERNATE[-1]:
        return S3StaticCredentials(
            s3_servers.ACCESS_KEY,
            "not-the-secret",
            expires_after=datetime.now(UTC) + timedelta(seconds=5),
        )
    return S3StaticCredentials(
        s3_servers.ACCESS_KEY,
        s3_servers.SECRET_KEY,
        expires_after=datetime.now(UTC) + timedelta(hours=1),
    )
