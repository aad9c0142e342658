"""Storage on Google Cloud Storage, Azure Blob Storage and any other fsspec filesystem.

``gcs_storage`` and ``azure_storage`` keep Icechunk 1.1's names and keywords and open through
gcsfs and adlfs (the ``gcs`` and ``azure`` extras); ``fsspec_storage`` opens any protocol
fsspec knows. All return an ``FsspecStorage``: read-only unless ``allow_unsafe_writes=True``
(see ``icechunk_lib.storage.fsspec_storage`` for what unsafe writes can lose). A protocol whose
package is not installed raises ``InvalidStorageURLError`` naming the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from icechunk_lib.errors import InvalidStorageURLError, StorageError

if TYPE_CHECKING:
    from icechunk_lib.storage.fsspec_storage import FsspecStorage

__all__ = ["EXTRAS", "azure_storage", "fsspec_storage", "gcs_storage"]

EXTRAS = {"gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}
"""The ick extra that installs each protocol's package (``pip install "ick[gcs]"``)."""


def filesystem_class(protocol: str, url: str) -> type[Any]:
    """fsspec's class for ``protocol``; ``InvalidStorageURLError`` naming the package to
    install when it is missing, or saying the protocol is unknown."""
    import fsspec
    from fsspec.registry import known_implementations

    from icechunk_lib.storage.url import redact_url

    url = redact_url(url)
    try:
        cls: type[Any] = fsspec.get_filesystem_class(protocol)
    except ImportError:
        package = known_implementations[protocol]["class"].split(".")[0]
        extra = EXTRAS.get(protocol)
        how = f'pip install "ick[{extra}]"' if extra else f"pip install {package}"
        raise InvalidStorageURLError(
            url, f"the {protocol!r} protocol needs the {package} package: {how}"
        ) from None
    except ValueError:
        raise InvalidStorageURLError(url, f"fsspec knows no {protocol!r} protocol") from None
    return cls


def fsspec_storage(
    url: str,
    *,
    options: Mapping[str, Any] | None = None,
    allow_unsafe_writes: bool = False,
) -> FsspecStorage:
    """Storage at ``url`` on fsspec's filesystem for its protocol, made as fsspec makes it:
    what the URL says (a host, a port) plus ``options`` (the filesystem's own keyword
    arguments, fsspec's ``storage_options``)."""
    from icechunk_lib.storage.fsspec_storage import FsspecStorage
    from icechunk_lib.storage.url import redact_url, url_scheme

    shown = redact_url(url)
    protocol = url_scheme(url) or "file"
    cls = filesystem_class(protocol, shown)
    try:
        fs = cls(**{**cls._get_kwargs_from_urls(url), **dict(options or {})})
    except TypeError as exc:  # an option the filesystem does not take
        raise InvalidStorageURLError(shown, f"bad storage option: {exc}") from None
    except OSError as exc:  # filesystems that connect at once (ftp, sftp)
        raise StorageError(f"cannot open {shown}: {exc.strerror or exc}") from None
    root = cls._strip_protocol(url)
    return FsspecStorage(fs, root, url=shown, allow_unsafe_writes=allow_unsafe_writes)


def gcs_storage(
    *,
    bucket: str,
    prefix: str | None,
    service_account_file: str | None = None,
    service_account_key: str | None = None,
    application_credentials: str | None = None,
    bearer_token: str | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    config: dict[str, str] | None = None,
    get_credentials: Callable[[], Any] | None = None,
    scatter_initial_credentials: bool = False,
    allow_unsafe_writes: bool = False,
) -> FsspecStorage:
    """Storage in a Google Cloud Storage bucket through gcsfs (Icechunk's factory name and
    keywords, plus ``allow_unsafe_writes``); read-only unless unsafe writes are allowed.

    Credentials become gcsfs's ``token``: a service account file or key, application
    credentials, a bearer token, ``"anon"`` or the environment's default credentials.
    ``config`` holds further gcsfs keyword arguments. ``get_credentials`` and
    ``scatter_initial_credentials`` are refused: gcsfs refreshes its own credentials.
    """
    if get_credentials is not None or scatter_initial_credentials:
        raise InvalidStorageURLError(
            _url("gs", bucket, prefix),
            "get_credentials is not supported for GCS here; pass a token or use from_env",
        )
    token: Any = None
    if anonymous:
        token = "anon"
    elif service_account_file or application_credentials:
        token = service_account_file or application_credentials
    elif service_account_key:
        import json

        token = json.loads(service_account_key)
    elif bearer_token:
        from google.oauth2.credentials import Credentials  # installed with gcsfs

        token = Credentials(bearer_token)
    elif from_env:
        token = "google_default"
    options: dict[str, Any] = dict(config or {})
    if token is not None:
        options["token"] = token
    return fsspec_storage(
        _url("gs", bucket, prefix),
        options=options,
        allow_unsafe_writes=allow_unsafe_writes,
    )


def azure_storage(
    *,
    account: str,
    container: str,
    prefix: str,
    access_key: str | None = None,
    sas_token: str | None = None,
    bearer_token: str | None = None,
    from_env: bool | None = None,
    config: dict[str, str] | None = None,
    allow_unsafe_writes: bool = False,
) -> FsspecStorage:
    """Storage in an Azure Blob Storage container through adlfs (Icechunk's factory name
    and keywords, plus ``allow_unsafe_writes``); read-only unless unsafe writes are allowed.

    ``access_key`` and ``sas_token`` become adlfs's ``account_key`` and ``sas_token``; without
    them adlfs reads the environment (``AZURE_STORAGE_*``) as ``from_env`` asks. ``config``
    holds further adlfs keyword arguments.
    """
    options: dict[str, Any] = {"account_name": account, **(config or {})}
    if access_key:
        options["account_key"] = access_key
    if sas_token:
        options["sas_token"] = sas_token
    if bearer_token:
        options["credential"] = _BearerToken(bearer_token)
    return fsspec_storage(
        _url("az", container, prefix),
        options=options,
        allow_unsafe_writes=allow_unsafe_writes,
    )


class _BearerToken:
    """A static Azure credential (``azure.core``'s token protocol) for a bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "_BearerToken(***)"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken  # installed with adlfs

        return AccessToken(self._token, 2**31 - 1)


def _root(bucket: str, prefix: str | None) -> str:
    prefix = (prefix or "").strip("/")
    return f"{bucket}/{prefix}" if prefix else bucket


def _url(scheme: str, bucket: str, prefix: str | None) -> str:
    return f"{scheme}://{_root(bucket, prefix)}"
