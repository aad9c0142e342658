"""A module-level ``get_credentials`` for the authorisation tests: it pickles by reference,
so an authorisation unpickled in another process calls it again there."""

from __future__ import annotations

from icechunk_lib.storage.credentials import S3StaticCredentials


def refreshed() -> S3StaticCredentials:
    return S3StaticCredentials("REFRESHED", "refreshed-secret-not-in-the-pickle")
