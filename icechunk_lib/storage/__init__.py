"""Async byte-level object storage: the abstract seam, its backends and URL dispatch.

Backends load on first use (``from icechunk_lib.storage import InMemoryStorage``, a
``memory://`` URL), so importing this package never imports one, nor what it needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from icechunk_lib._lazy import LazyExports
from icechunk_lib.storage._base import ObjectInfo as ObjectInfo
from icechunk_lib.storage._base import Storage as Storage
from icechunk_lib.storage._base import StorageCapabilities as StorageCapabilities
from icechunk_lib.storage._base import check_key as check_key
from icechunk_lib.storage.url import storage_from_url as storage_from_url

if TYPE_CHECKING:
    from icechunk_lib.storage.cloud import azure_storage as azure_storage
    from icechunk_lib.storage.cloud import gcs_storage as gcs_storage
    from icechunk_lib.storage.credentials import S3Credentials as S3Credentials
    from icechunk_lib.storage.credentials import S3StaticCredentials as S3StaticCredentials
    from icechunk_lib.storage.credentials import (
        s3_anonymous_credentials as s3_anonymous_credentials,
    )
    from icechunk_lib.storage.credentials import s3_credentials as s3_credentials
    from icechunk_lib.storage.credentials import (
        s3_from_env_credentials as s3_from_env_credentials,
    )
    from icechunk_lib.storage.credentials import (
        s3_refreshable_credentials as s3_refreshable_credentials,
    )
    from icechunk_lib.storage.credentials import (
        s3_static_credentials as s3_static_credentials,
    )
    from icechunk_lib.storage.fsspec_storage import FsspecStorage as FsspecStorage
    from icechunk_lib.storage.local import LocalFileSystemStorage as LocalFileSystemStorage
    from icechunk_lib.storage.memory import InMemoryStorage as InMemoryStorage
    from icechunk_lib.storage.s3 import S3Storage as S3Storage
    from icechunk_lib.storage.tuning import StorageTuning as StorageTuning

_EXPORTS = LazyExports(
    globals(),
    {
        "FsspecStorage": "icechunk_lib.storage.fsspec_storage",
        "InMemoryStorage": "icechunk_lib.storage.memory",
        "LocalFileSystemStorage": "icechunk_lib.storage.local",
        "S3Credentials": "icechunk_lib.storage.credentials",
        "S3StaticCredentials": "icechunk_lib.storage.credentials",
        "S3Storage": "icechunk_lib.storage.s3",
        "StorageTuning": "icechunk_lib.storage.tuning",
        "azure_storage": "icechunk_lib.storage.cloud",
        "gcs_storage": "icechunk_lib.storage.cloud",
        "s3_anonymous_credentials": "icechunk_lib.storage.credentials",
        "s3_credentials": "icechunk_lib.storage.credentials",
        "s3_from_env_credentials": "icechunk_lib.storage.credentials",
        "s3_refreshable_credentials": "icechunk_lib.storage.credentials",
        "s3_static_credentials": "icechunk_lib.storage.credentials",
    },
    eager=[
        "ObjectInfo",
        "Storage",
        "StorageCapabilities",
        "check_key",
        "in_memory_storage",
        "local_filesystem_storage",
        "r2_storage",
        "s3_storage",
        "storage_from_url",
        "tigris_storage",
    ],
)
__all__ = _EXPORTS.names
__getattr__ = _EXPORTS.getattr
__dir__ = _EXPORTS.dir


def local_filesystem_storage(path: str | os.PathLike[str], *, fsync: bool = False) -> Storage:
    """Storage in a local directory, which ``Repository.create`` makes (Icechunk's factory name).

    ``fsync=True`` flushes every file to disk before publishing it (power-loss durability).
    """
    from icechunk_lib.storage.local import LocalFileSystemStorage

    return LocalFileSystemStorage(path, fsync=fsync)


def in_memory_storage() -> Storage:
    """A fresh, empty in-process storage (Icechunk's factory name)."""
    from icechunk_lib.storage.memory import InMemoryStorage

    return InMemoryStorage()


def s3_storage(
    *,
    bucket: str,
    prefix: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    force_path_style: bool = False,
    network_stream_timeout_seconds: int | None = None,
    requester_pays: bool = False,
    allow_unsafe_writes: bool = False,
) -> Storage:
    """Storage in S3 or an S3-compatible store (Icechunk 1.1's factory, plus
    ``allow_unsafe_writes``).

    Credentials follow ``s3_credentials``: none given means the environment (``AWS_*``
    variables, ``AWS_PROFILE``, instance roles). ``endpoint_url`` names a self-hosted server
    (``allow_http=True`` for plain http, ``force_path_style=True`` for most). A server at a
    custom endpoint is probed for conditional writes when a repository opens;
    ``allow_unsafe_writes=True`` writes to one that ignores them, at the risk of lost
    updates between concurrent writers.
    """
    return _s3_storage(
        bucket=bucket,
        prefix=prefix,
        region=region,
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
        force_path_style=force_path_style,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
        requester_pays=requester_pays,
        allow_unsafe_writes=allow_unsafe_writes,
    )


def _s3_storage(
    *,
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
    expires_after: datetime | None,
    anonymous: bool | None,
    from_env: bool | None,
    get_credentials: Callable[[], S3StaticCredentials] | None,
    scatter_initial_credentials: bool,
    **settings: Any,
) -> Storage:
    """An ``S3Storage`` from ``s3_storage``'s keywords (the credential ones make one
    ``credentials``) and ``S3Storage``'s own others (``weak_consistency``)."""
    from icechunk_lib.storage.credentials import s3_credentials
    from icechunk_lib.storage.s3 import S3Storage

    credentials = s3_credentials(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
    )
    return S3Storage(credentials=credentials, **settings)


def r2_storage(
    *,
    bucket: str | None = None,
    prefix: str | None = None,
    account_id: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    network_stream_timeout_seconds: int | None = None,
) -> Storage:
    """Storage in Cloudflare R2 (Icechunk's factory): the endpoint is
    ``https://<account_id>.r2.cloudflarestorage.com`` unless ``endpoint_url`` is given,
    the region ``auto``, path-style addressing."""
    if endpoint_url is None:
        if account_id is None:
            raise ValueError("r2_storage needs account_id or endpoint_url")
        endpoint_url = f"https://{account_id}.r2.cloudflarestorage.com"
    if bucket is None:
        raise ValueError("r2_storage needs a bucket")
    return s3_storage(
        bucket=bucket,
        prefix=prefix,
        region=region or "auto",
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
        force_path_style=True,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
    )


TIGRIS_ENDPOINT = "https://fly.storage.tigris.dev"
"""Tigris's global endpoint, used when ``tigris_storage`` gets none."""


def tigris_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    use_weak_consistency: bool = False,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    network_stream_timeout_seconds: int | None = None,
) -> Storage:
    """Storage in Tigris (Icechunk's factory): its global endpoint, region ``auto``.

    ``use_weak_consistency=True`` reads from the nearest region, where recent writes may not
    have arrived yet; as in Icechunk, such a storage is read-only (every write raises
    ``ReadOnlyStorageError``), for experts who accept stale reads.
    """
    return _s3_storage(
        bucket=bucket,
        prefix=prefix,
        region=region or "auto",
        endpoint_url=endpoint_url or TIGRIS_ENDPOINT,
        allow_http=allow_http,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
        weak_consistency=use_weak_consistency,
    )
