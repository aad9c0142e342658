"""Pick a storage backend from a URL or path; each backend module is imported only when used.

Accepted forms: plain paths (``./repo``, ``/abs/repo``, ``~/repo``), ``file:///abs/repo``,
``memory://`` (a fresh storage) and ``memory://<name>`` (the process-wide one of that name),
``s3://bucket/prefix`` (``s3_storage``), and ``<protocol>://...`` for any other protocol fsspec
knows (``gs://``, ``az://``, ``abfs://``, ``http(s)://``, ...: an ``FsspecStorage``, read-only
unless unsafe writes are allowed). ``storage_options`` are text ``key=value`` settings (the
CLI's ``--storage-option``): for S3 the keywords of ``s3_storage`` (``S3_OPTIONS``), for other
protocols the fsspec filesystem's own keyword arguments.

Two helpers here are the only ones of their kind in ick, used by storage, the importer and
the CLI alike: ``url_scheme`` tells a URL from a local path, and ``redact_url`` makes a URL
fit to show in a message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from icechunk_lib.errors import InvalidNameError, InvalidStorageURLError
from icechunk_lib.storage._base import Storage, is_key_segment

__all__ = [
    "S3_OPTIONS",
    "file_url_path",
    "parse_bool",
    "redact_url",
    "storage_from_url",
    "supported_schemes",
    "url_scheme",
]

# RFC 3986's scheme, ASCII only, of two or more characters so that a Windows drive
# ("C:\\repo") still reads as a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")

_Opener = Callable[[str, SplitResult, "_Settings"], Storage]

S3_OPTIONS: dict[str, type] = {
    "access_key_id": str,
    "allow_http": bool,
    "anonymous": bool,
    "endpoint_url": str,
    "force_path_style": bool,
    "from_env": bool,
    "network_stream_timeout_seconds": int,
    "region": str,
    "requester_pays": bool,
    "secret_access_key": str,
    "session_token": str,
}
"""The storage options an ``s3://`` URL takes: ``s3_storage``'s keywords and their types."""

SECRET_OPTIONS = frozenset({"secret_access_key", "session_token"})
"""Options whose values are never shown (nor are any values in errors about them)."""

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

# Protocols fsspec knows that name no storage location of their own: wrappers of another
# filesystem, in-URL data, or another name for a backend ick has (local, memory).
_NOT_LOCATIONS = frozenset(
    {
        "async_wrapper",
        "asynclocal",
        "asyncwrapper",
        "blockcache",
        "cached",
        "data",
        "dir",
        "filecache",
        "generic",
        "libarchive",
        "local",
        "reference",
        "simplecache",
        "tar",
        "zip",
    }
)


def url_scheme(location: str | os.PathLike[str]) -> str | None:
    """The scheme of ``location`` in lower case if it is a URL; ``None`` if it is a local path.

    The one rule: a URL starts with a scheme (an ASCII letter, then at least one more ASCII
    letter, digit, ``+``, ``-`` or ``.``) and a colon; anything else is a path, and a
    ``PathLike`` always is. So ``s3:x`` and ``file:relative`` are URLs (malformed ones),
    while ``C:\\x``, ``./s3://x``, ``" s3://x"`` and ``""`` are paths; to name a relative
    path that looks like a URL, start it with ``./``.
    """
    if not isinstance(location, str):
        return None
    match = _SCHEME.match(location)
    return None if match is None else match.group(1).lower()


def redact_url(url: str) -> str:
    """``url`` as it may be shown: user info and any query or fragment become ``***``.

    Presigned and SAS URLs carry credentials in the query, and a secret key may contain
    ``/`` or ``@``, so everything up to the last ``@`` goes, with or without ``//`` after
    the scheme. A local path (see ``url_scheme``) is returned as it is: it holds no secret.
    """
    match = _SCHEME.match(url)
    if match is None:
        return url
    rest = url[match.end() :]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    tail = f"{rest[cut]}***" if cut < len(rest) else ""
    rest = rest[:cut]
    body = rest.lstrip("/")
    if "@" in body:
        body = "***@" + body.rpartition("@")[2]
    return f"{url[: match.end()]}{rest[: len(rest) - len(rest.lstrip('/'))]}{body}{tail}"


def file_url_path(url: str) -> str:
    """The absolute local path a ``file:`` URL names (``file:///abs``, ``file:/abs``,
    ``file://localhost/abs``; percent-escapes decoded).

    Raises:
        InvalidStorageURLError: it names a host or a relative path, or has a query,
            fragment or credentials.
    """
    return _file_path(url, _split(url))


class _Settings:
    """What ``storage_from_url`` was given besides the URL."""

    def __init__(self, options: Mapping[str, Any], allow_unsafe_writes: bool) -> None:
        self.options = dict(options)
        self.allow_unsafe_writes = allow_unsafe_writes


def storage_from_url(
    url: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    allow_unsafe_writes: bool = False,
) -> Storage:
    """Return the storage a URL or filesystem path names.

    ``storage_options`` configure object storage (for ``s3://`` see ``S3_OPTIONS``; text
    values are parsed, booleans strictly); paths and ``memory://`` take none.
    ``allow_unsafe_writes`` lets a backend without atomic operations write (see
    ``icechunk_lib.storage.fsspec_storage``); backends with them ignore it.

    Raises:
        InvalidStorageURLError: the URL is empty, malformed, uses an unsupported scheme or
            one whose package is not installed, or an option is unknown or has a bad value.
    """
    settings = _Settings(storage_options or {}, allow_unsafe_writes)
    if isinstance(url, os.PathLike):
        return _open_path(os.fspath(url), settings)
    if not isinstance(url, str) or not url.strip():
        raise InvalidStorageURLError(
            str(url), "it is empty; pass a path such as ./repo or a URL such as memory://"
        )
    scheme = url_scheme(url)
    if scheme is None:
        return _open_path(url, settings)
    opener = _OPENERS.get(scheme)
    if opener is not None:
        return opener(url, _split(url), settings)
    return _open_fsspec(url, scheme, settings)


def supported_schemes() -> list[str]:
    """The URL schemes ``storage_from_url`` handles itself, as ``"scheme://"`` strings (any
    other protocol fsspec has installed opens an ``FsspecStorage``)."""
    return [f"{scheme}://" for scheme in sorted(_OPENERS)]


def parse_bool(name: str, value: Any) -> bool:
    """A boolean option's value: a bool, or text true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} takes true or false, not {value!r}")


def _error(url: str, reason: str) -> InvalidStorageURLError:
    """An ``InvalidStorageURLError`` whose message never shows a secret from the URL."""
    return InvalidStorageURLError(redact_url(url), reason)


def _split(url: str) -> SplitResult:
    """``url``'s parts; malformed URLs, queries, fragments and credentials are refused."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _error(url, str(exc)) from None
    if parts.query or parts.fragment:
        raise _error(url, "query strings and fragments are not supported")
    if "@" in parts.netloc:
        raise _error(url, "URLs must not carry credentials; configure them separately")
    return parts


def _no_options(url: str, settings: _Settings) -> None:
    if settings.options:
        raise _error(
            url,
            f"storage options ({', '.join(sorted(settings.options))}) apply to object "
            "storage URLs such as s3://, not to local paths or memory://",
        )


def _open_path(path: str, settings: _Settings) -> Storage:
    from icechunk_lib.storage.local import LocalFileSystemStorage

    _no_options(path, settings)
    return LocalFileSystemStorage(path)  # an unusable path is an InvalidStorageURLError


def _file_path(url: str, parts: SplitResult) -> str:
    if parts.netloc not in ("", "localhost"):
        raise _error(
            url,
            f"{parts.netloc!r} would be a host name; file URLs take an absolute path "
            "(file:///abs/repo). For a relative path drop the scheme: ./relative/repo",
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise _error(url, "file URLs take an absolute path (file:///abs/repo)")
    return path


def _open_file(url: str, parts: SplitResult, settings: _Settings) -> Storage:
    return _open_path(_file_path(url, parts), settings)


def _open_memory(url: str, parts: SplitResult, settings: _Settings) -> Storage:
    from icechunk_lib.storage.memory import InMemoryStorage

    _no_options(url, settings)
    if parts.path not in ("", "/"):
        raise _error(url, "memory URLs are memory:// (fresh) or memory://<name> (shared)")
    if not parts.netloc:
        return InMemoryStorage()
    try:
        return InMemoryStorage.named(parts.netloc)
    except InvalidNameError as exc:
        raise _error(url, str(exc)) from None


def _prefix(url: str, path: str) -> str:
    """The key prefix a URL's path names: no leading or trailing ``/``, and no empty,
    ``.``, ``..`` or otherwise invalid segments."""
    prefix = unquote(path).strip("/")
    if not prefix:
        return ""
    for segment in prefix.split("/"):
        if segment in ("", ".", ".."):
            raise _error(url, f"the prefix {prefix!r} has an empty, '.' or '..' segment")
        if not is_key_segment(segment):
            raise _error(url, f"the prefix {prefix!r} has an invalid segment {segment!r}")
    return prefix


def _bucket(url: str, bucket: str) -> str:
    """``bucket`` if S3 accepts it as a name: 3-63 lower-case letters, digits, dots and
    hyphens, starting and ending with a letter or digit, no ``..``, not an IP address."""
    if not bucket:
        raise _error(url, "no bucket: write s3://bucket/prefix")
    if (
        not _BUCKET.fullmatch(bucket)
        or ".." in bucket
        or ".-" in bucket
        or "-." in bucket
        or _is_ip(bucket)
    ):
        raise _error(
            url,
            f"{bucket!r} is not a valid S3 bucket name: 3-63 lower-case letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit, not an IP address",
        )
    return bucket


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def s3_keywords(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``s3_storage`` keywords from text options (``S3_OPTIONS``) and the standard AWS
    environment variables for what the options leave out: ``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL`` (one starting with ``http://`` allows plain HTTP), ``AWS_REGION``
    or ``AWS_DEFAULT_REGION``. Credentials and ``AWS_PROFILE`` are read by the S3 client."""
    keywords: dict[str, Any] = {}
    for name, value in options.items():
        kind = S3_OPTIONS.get(name)
        if kind is None:
            raise _error(
                url,
                f"unknown storage option {name!r} for s3://; known: {', '.join(S3_OPTIONS)}",
            )
        try:
            if kind is bool:
                keywords[name] = parse_bool(name, value)
            elif kind is int:
                keywords[name] = int(value)
            else:
                keywords[name] = str(value)
        except ValueError:
            shown = "***" if name in SECRET_OPTIONS else repr(value)
            raise _error(url, f"bad value {shown} for storage option {name!r}") from None
    environ = os.environ
    if "endpoint_url" not in keywords:
        endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            keywords["endpoint_url"] = endpoint
            if endpoint.lower().startswith("http://") and "allow_http" not in keywords:
                keywords["allow_http"] = True
    if "region" not in keywords:
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if region:
            keywords["region"] = region
    return keywords


def _open_s3(url: str, parts: SplitResult, settings: _Settings) -> Storage:
    bucket = _bucket(url, parts.netloc)
    prefix = _prefix(url, parts.path)
    keywords = s3_keywords(url, settings.options)
    from icechunk_lib.storage import s3_storage

    storage: Storage = s3_storage(
        bucket=bucket,
        prefix=prefix or None,
        allow_unsafe_writes=settings.allow_unsafe_writes,
        **keywords,
    )
    return storage


def _open_fsspec(url: str, scheme: str, settings: _Settings) -> Storage:
    """Any other protocol fsspec knows, as an ``FsspecStorage``."""
    from icechunk_lib.storage.cloud import fsspec_storage

    if scheme in _NOT_LOCATIONS or not _known_to_fsspec(scheme):
        raise _error(
            url,
            f"the {scheme!r} scheme is not supported: use a path, "
            f"{', '.join(supported_schemes())} or an fsspec protocol such as gs://, az:// "
            "or https://. For a relative path containing ':', start it with './'",
        )
    parts = _split(url)
    if not parts.netloc and not parts.path.strip("/"):
        raise _error(url, "it names no location")
    prefix = _prefix(url, parts.path)
    options = {
        name: value
        if not isinstance(value, str) or value.lower() not in ("true", "false")
        else value.lower() == "true"
        for name, value in settings.options.items()
    }
    location = f"{scheme}://{parts.netloc}/{prefix}".rstrip("/")
    return fsspec_storage(
        location,
        options=options,
        allow_unsafe_writes=settings.allow_unsafe_writes,
    )


def _known_to_fsspec(scheme: str) -> bool:
    from fsspec.registry import known_implementations, registry

    return scheme in known_implementations or scheme in registry


_OPENERS: dict[str, _Opener] = {
    "file": _open_file,
    "memory": _open_memory,
    "s3": _open_s3,
}
