"""Builders of the stores a virtual chunk container names, as Icechunk 1.1 spells them:
``s3_store``, ``gcs_store``, ``azure_store``, ``http_store``, ``local_filesystem_store``."""

from __future__ import annotations

from icechunk_lib.format.containers import (
    AzureStore,
    GcsStore,
    HttpStore,
    LocalFileSystemStore,
    ObjectStoreConfig,
    S3CompatibleStore,
    S3Options,
    S3Store,
)

__all__ = [
    "azure_store",
    "gcs_store",
    "http_store",
    "local_filesystem_store",
    "s3_store",
]


def s3_store(
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    anonymous: bool = False,
    s3_compatible: bool = False,
    force_path_style: bool = False,
    network_stream_timeout_seconds: int = 60,
    requester_pays: bool = False,
) -> S3CompatibleStore | S3Store:
    """S3 (or, with ``s3_compatible=True``, an S3-compatible server at ``endpoint_url``)
    for ``s3://`` containers. Credentials are not given here but when opening."""
    options = S3Options(
        region=region,
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        anonymous=anonymous,
        force_path_style=force_path_style,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
        requester_pays=requester_pays,
    )
    if s3_compatible:
        return ObjectStoreConfig.S3Compatible(options)
    return ObjectStoreConfig.S3(options)


def gcs_store(opts: dict[str, str] | None = None) -> GcsStore:
    """Google Cloud Storage for ``gs://`` containers; ``opts`` are object_store's GCS
    options (no credentials: those are refused, as the config is saved)."""
    return ObjectStoreConfig.Gcs(opts)


def azure_store(*, account: str, config: dict[str, str] | None = None) -> AzureStore:
    """Azure Blob Storage of ``account`` for ``az://`` containers (Icechunk keeps this one
    in ``icechunk.storage``)."""
    return ObjectStoreConfig.Azure({"account": account, **(config or {})})


def http_store(opts: dict[str, str] | None = None) -> HttpStore:
    """Any HTTP server answering ranged GETs, for ``http://`` and ``https://`` containers."""
    return ObjectStoreConfig.Http(opts)


def local_filesystem_store(path: str) -> LocalFileSystemStore:
    """Files on this machine, for ``file://`` containers."""
    return ObjectStoreConfig.LocalFileSystem(path)
