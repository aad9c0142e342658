"""Virtual chunk containers as Icechunk 1.1 spells them, saved in the repository config.

A ``VirtualChunkContainer`` says where virtual chunks may live (a URL prefix) and how to
reach them (an ``ObjectStoreConfig``). The rules a prefix must keep are checked here, on
every construction and every decode, so no invalid container is ever saved or used:

- it ends in ``/``, so ``s3://data/`` never matches ``s3://data-other/``;
- its lowercase scheme matches the store: ``s3://`` (S3, S3-compatible, Tigris, which also
  takes ``tigris://``), ``gs://``/``gcs://`` (GCS), ``az://``/``azure://``/``abfs://``
  (Azure), ``http://``/``https://`` (HTTP), ``file://`` (local files);
- every scheme but ``file`` has a host (``[::1]`` and ``:port`` allowed) and no user name
  or password; ``file`` has no host and an absolute path below ``/`` (``file:///data/``);
- no query, fragment, backslash, control character, malformed ``%`` escape, and no ``.`` or
  ``..`` path segment, percent-encoded or not (``file`` paths: no empty segment either).

Pure data and string rules: no I/O. Credentials never live here (``icechunk_lib.virtual``
keeps them in memory): store options that look like secrets are refused.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import unquote

import msgspec

from icechunk_lib.errors import ConfigError, InvalidVirtualContainerError

__all__ = [
    "AnyObjectStoreConfig",
    "AzureStore",
    "GcsStore",
    "HttpStore",
    "InMemoryStore",
    "LocalFileSystemStore",
    "ObjectStoreConfig",
    "S3CompatibleStore",
    "S3Options",
    "S3Store",
    "TigrisStore",
    "VirtualChunkContainer",
    "location_problem",
    "prefix_problem",
    "split_url",
]


class S3Options(msgspec.Struct):
    """How to reach an S3 or S3-compatible store (Icechunk's ``S3Options``); no secrets."""

    region: str | None = None
    endpoint_url: str | None = None
    allow_http: bool = False
    anonymous: bool = False
    """Unsigned requests (public buckets)."""
    force_path_style: bool = False
    network_stream_timeout_seconds: int | None = None
    """Give up on a request that moves no bytes this long; 0 disables, None: 60."""
    requester_pays: bool = False


class ObjectStoreConfig(msgspec.Struct, tag_field="kind"):
    """Where a container's objects are served from: one of the variants below.

    ``ObjectStoreConfig.S3(options)``, ``.S3Compatible(options)``, ``.Tigris(opts)``,
    ``.Gcs(opts)``, ``.Azure(opts)``, ``.Http(opts)``, ``.LocalFileSystem(path)`` and
    ``.InMemory()``, as Icechunk names them; ``ic.s3_store(...)`` and friends build them.
    """

    InMemory: ClassVar[type[InMemoryStore]]
    LocalFileSystem: ClassVar[type[LocalFileSystemStore]]
    S3: ClassVar[type[S3Store]]
    S3Compatible: ClassVar[type[S3CompatibleStore]]
    Tigris: ClassVar[type[TigrisStore]]
    Gcs: ClassVar[type[GcsStore]]
    Azure: ClassVar[type[AzureStore]]
    Http: ClassVar[type[HttpStore]]

    schemes: ClassVar[tuple[str, ...]] = ()
    """The URL schemes of the prefixes this store serves."""

    def __post_init__(self) -> None:
        if type(self) is ObjectStoreConfig:
            raise ConfigError(
                "ObjectStoreConfig() is not a store; use ObjectStoreConfig.S3(...), "
                "ic.s3_store(...), ic.local_filesystem_store(path), ic.http_store(), ..."
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__)
        return f"ObjectStoreConfig.{type(self).__name__}({fields})"

    @property
    def label(self) -> str:
        """How messages name this kind of store: ``ObjectStoreConfig.S3``."""
        return f"ObjectStoreConfig.{type(self).__name__}"


class InMemoryStore(ObjectStoreConfig, tag="in_memory"):
    """A process's memory: accepted as Icechunk does, but it serves no prefix."""


class LocalFileSystemStore(ObjectStoreConfig, tag="local_filesystem"):
    """Files on this machine, for ``file://`` prefixes."""

    path: str
    schemes: ClassVar[tuple[str, ...]] = ("file",)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str):
            raise ConfigError(f"ObjectStoreConfig.LocalFileSystem takes a path, got {self.path!r}")


class S3Store(ObjectStoreConfig, tag="s3"):
    """Amazon S3, for ``s3://`` prefixes."""

    options: S3Options
    schemes: ClassVar[tuple[str, ...]] = ("s3",)

    def __post_init__(self) -> None:
        _check_options(self.options, self.label)


class S3CompatibleStore(ObjectStoreConfig, tag="s3_compatible"):
    """An S3-compatible server (MinIO, SeaweedFS, Ceph...), for ``s3://`` prefixes."""

    options: S3Options
    schemes: ClassVar[tuple[str, ...]] = ("s3",)

    def __post_init__(self) -> None:
        _check_options(self.options, self.label)


class TigrisStore(ObjectStoreConfig, tag="tigris"):
    """Tigris, for ``s3://`` and ``tigris://`` prefixes."""

    opts: S3Options
    schemes: ClassVar[tuple[str, ...]] = ("s3", "tigris")

    def __post_init__(self) -> None:
        _check_options(self.opts, self.label)


class _OptionsStore(ObjectStoreConfig):
    """A store configured by a map of text options (Icechunk passes them to object_store)."""

    opts: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.opts is None:
            self.opts = {}
        _check_opts(self.opts, self.label)


class GcsStore(_OptionsStore, tag="gcs"):
    """Google Cloud Storage, for ``gs://`` and ``gcs://`` prefixes."""

    schemes: ClassVar[tuple[str, ...]] = ("gs", "gcs")


class AzureStore(_OptionsStore, tag="azure"):
    """Azure Blob Storage, for ``az://``, ``azure://`` and ``abfs://`` prefixes."""

    schemes: ClassVar[tuple[str, ...]] = ("az", "azure", "abfs")


class HttpStore(_OptionsStore, tag="http"):
    """Any HTTP server answering ranged GETs, for ``http://`` and ``https://`` prefixes."""

    schemes: ClassVar[tuple[str, ...]] = ("http", "https")


for _name, _cls in {
    "InMemory": InMemoryStore,
    "LocalFileSystem": LocalFileSystemStore,
    "S3": S3Store,
    "S3Compatible": S3CompatibleStore,
    "Tigris": TigrisStore,
    "Gcs": GcsStore,
    "Azure": AzureStore,
    "Http": HttpStore,
}.items():
    # Icechunk's spelling (ObjectStoreConfig.S3); pickle finds the class by this name too.
    _cls.__name__ = _name
    _cls.__qualname__ = f"ObjectStoreConfig.{_name}"
    setattr(ObjectStoreConfig, _name, _cls)

AnyObjectStoreConfig = (
    InMemoryStore
    | LocalFileSystemStore
    | S3Store
    | S3CompatibleStore
    | GcsStore
    | AzureStore
    | TigrisStore
    | HttpStore
)
"""Any store a container can name (Icechunk's ``AnyObjectStoreConfig``)."""

_SECRET_WORDS = ("secret", "password", "token", "key", "sas", "credential", "authorization")
"""Parts of option names that hold secrets (``access_key``, ``sas_token``, ...): refused,
as the config is saved in the repository and credentials must never be."""


def _check_opts(opts: object, label: str) -> None:
    if not isinstance(opts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in opts.items()
    ):
        raise ConfigError(f"{label} takes a dict of text options, got {opts!r}")
    for name in opts:
        if any(word in name.lower() for word in _SECRET_WORDS):
            raise ConfigError(
                f"{label} option {name!r} holds a credential, and store options are saved in "
                "the repository; pass credentials when opening it instead "
                "(Repository.open(..., authorize_virtual_chunk_access={prefix: credentials}))"
            )


def _check_options(options: object, label: str) -> None:
    if not isinstance(options, S3Options):
        raise ConfigError(f"{label} takes S3Options, got {options!r}")


class VirtualChunkContainer(msgspec.Struct):
    """Where virtual chunks may live: locations under ``url_prefix``, read through ``store``.

    Raises ``InvalidVirtualContainerError`` naming the prefix and the rule it breaks (the
    module docstring lists them), and ``ConfigError`` for an invalid store.
    """

    url_prefix: str
    store: AnyObjectStoreConfig
    name: str | None = None
    """An optional label; ``RepositoryConfig.get_virtual_chunk_container`` finds it too."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> VirtualChunkContainer:
        """Return ``self`` if its prefix keeps the rules for its store, else raise."""
        if not isinstance(self.store, ObjectStoreConfig) or type(self.store) is ObjectStoreConfig:
            raise InvalidVirtualContainerError(
                self.url_prefix,
                f"its store must be an ObjectStoreConfig (ic.s3_store(...), "
                f"ic.local_filesystem_store(path), ...), got {self.store!r}",
            )
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidVirtualContainerError(
                self.url_prefix, f"its name must be text, got {self.name!r}"
            )
        problem = prefix_problem(self.url_prefix, self.store)
        if problem is not None:
            raise InvalidVirtualContainerError(self.url_prefix, problem)
        return self


# --- URL rules ----------------------------------------------------------------------------

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")


def split_url(url: str) -> tuple[str, str | None, str] | None:
    """(scheme, authority, path) of ``url``; authority None if there is no ``//``; None
    without a scheme. Nothing is decoded or normalised."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = url[match.end() :]
    if not rest.startswith("//"):
        return match.group(1), None, rest
    rest = rest[2:]
    slash = rest.find("/")
    if slash < 0:
        return match.group(1), rest, ""
    return match.group(1), rest[:slash], rest[slash:]


def _text_problem(url: str) -> str | None:
    """What is wrong with ``url`` as text, whatever its scheme, or None."""
    if _CONTROL.search(url):
        return "contains a control character"
    if "\\" in url:
        return "contains a backslash (URLs separate path segments with '/')"
    if "?" in url or "#" in url:
        return "has a query or fragment ('?' or '#'); only a scheme, host and path are allowed"
    if _BAD_ESCAPE.search(url):
        return "has a malformed percent escape ('%' not followed by two hex digits)"
    return None


def _segments_problem(path: str, *, allow_empty: bool) -> str | None:
    """What is wrong with the segments of ``path`` once percent-decoded, or None."""
    decoded = unquote(path, errors="replace")
    if _CONTROL.search(decoded):
        return "contains a percent-encoded control character"
    if "\\" in decoded:
        return "contains a percent-encoded backslash"
    segments = decoded.split("/")
    if any(s in (".", "..") for s in segments):
        return "has a '.' or '..' path segment (percent-encoded or not)"
    if not allow_empty and "" in segments[1:-1]:
        return "has an empty path segment ('//')"
    return None


def _authority_problem(scheme: str, authority: str) -> str | None:
    if authority == "":
        return f"must include a host ({scheme}://host/...)"
    if "@" in authority:
        return (
            "must not hold a user name or password ('@'); pass credentials with "
            "authorize_virtual_chunk_access when opening the repository"
        )
    host, port = authority, ""
    if authority.startswith("["):
        end = authority.find("]") + 1
        host, port = authority[:end], authority[end:]
        if not end or not _IPV6.fullmatch(host):
            return f"has an invalid IPv6 host {authority!r}"
    elif ":" in authority:
        host, _, rest = authority.rpartition(":")
        port = ":" + rest
    if port and not (port[1:].isdigit() and port[1:].isascii() and 0 < int(port[1:]) < 65536):
        return f"has an invalid port {port[1:]!r} (a number from 1 to 65535)"
    if not host.startswith("[") and (not host or not all(c.isalnum() or c in "-._~" for c in host)):
        return f"has an invalid host {host!r} (letters, digits, '-', '.', '_' and '~')"
    return None


def prefix_problem(url_prefix: object, store: ObjectStoreConfig) -> str | None:
    """The rule ``url_prefix`` breaks as a container prefix served by ``store``, or None."""
    if not isinstance(url_prefix, str):
        return "the prefix must be text"
    problem = _text_problem(url_prefix)
    if problem is not None:
        return problem
    parts = split_url(url_prefix)
    if parts is None:
        return "has no scheme; expected e.g. s3://bucket/, https://host/, file:///path/"
    scheme, authority, path = parts
    if not store.schemes:
        return f"{store.label} serves no URL prefix; virtual chunks cannot live in memory"
    if scheme != scheme.lower():
        return f"its scheme {scheme!r} must be lowercase ({scheme.lower()}://)"
    if scheme not in store.schemes:
        wanted = ", ".join(f"{s}://" for s in store.schemes)
        return (
            f"its scheme {scheme!r} does not match the store {store.label}, which serves {wanted}"
        )
    if authority is None:
        return f"must start with {scheme}://"
    if not url_prefix.endswith("/"):
        return "must end in '/'"
    if scheme == "file":
        if authority:
            return f"a file:// prefix has no host ({authority!r}): write file:///absolute/path/"
        if path == "/":
            return "a file:// prefix must include a path below the root (file:///path/)"
    else:
        problem = _authority_problem(scheme, authority)
        if problem is not None:
            return problem
    return _segments_problem(path, allow_empty=scheme != "file")


def location_problem(location: str) -> str | None:
    """What makes ``location`` unusable as a virtual chunk URL, or None: the text rules of
    a prefix, and no ``.``/``..`` segment anywhere in its path."""
    problem = _text_problem(location)
    if problem is not None:
        return problem
    parts = split_url(location)
    if parts is None or parts[1] is None:
        return "is not a URL of the form scheme://host/path"
    return _segments_problem(parts[2], allow_empty=True)
