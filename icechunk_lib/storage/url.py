"""Pick a storage backend from a URL or path; each backend module is imported only when used.

Accepted forms: plain paths (``./repo``, ``/abs/repo``, ``~/repo``), ``file:///abs/repo``,
``memory://`` (a fresh storage) and ``memory://<name>`` (the process-wide one of that name).

Two helpers here are the only ones of their kind in ick, used by storage, the importer and
the CLI alike: ``url_scheme`` tells a URL from a local path, and ``redact_url`` makes a URL
fit to show in a message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import SplitResult, unquote, urlsplit

from icechunk_lib.errors import InvalidNameError, InvalidStorageURLError
from icechunk_lib.storage._base import Storage

__all__ = ["file_url_path", "redact_url", "storage_from_url", "supported_schemes", "url_scheme"]

# RFC 3986's scheme, ASCII only, of two or more characters so that a Windows drive
# ("C:\\repo") still reads as a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")

_Opener = Callable[[str, SplitResult], Storage]


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


def storage_from_url(url: str | os.PathLike[str]) -> Storage:
    """Return the storage a URL or filesystem path names.

    Raises:
        InvalidStorageURLError: the URL is empty, malformed or uses an unsupported scheme.
    """
    if isinstance(url, os.PathLike):
        return _open_path(os.fspath(url))
    if not isinstance(url, str) or not url.strip():
        raise InvalidStorageURLError(
            str(url), "it is empty; pass a path such as ./repo or a URL such as memory://"
        )
    scheme = url_scheme(url)
    if scheme is None:
        return _open_path(url)
    opener = _OPENERS.get(scheme)
    if opener is None:
        raise _error(
            url,
            f"the {scheme!r} scheme is not supported; supported for now: "
            f"{', '.join(supported_schemes())} and plain paths (S3 comes later). "
            "For a relative path containing ':', start it with './'",
        )
    return opener(url, _split(url))


def supported_schemes() -> list[str]:
    """The URL schemes ``storage_from_url`` understands, as ``"scheme://"`` strings."""
    return [f"{scheme}://" for scheme in sorted(_OPENERS)]


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


def _open_path(path: str) -> Storage:
    from icechunk_lib.storage.local import LocalFileSystemStorage

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


def _open_file(url: str, parts: SplitResult) -> Storage:
    return _open_path(_file_path(url, parts))


def _open_memory(url: str, parts: SplitResult) -> Storage:
    from icechunk_lib.storage.memory import InMemoryStorage

    if parts.path not in ("", "/"):
        raise _error(url, "memory URLs are memory:// (fresh) or memory://<name> (shared)")
    if not parts.netloc:
        return InMemoryStorage()
    try:
        return InMemoryStorage.named(parts.netloc)
    except InvalidNameError as exc:
        raise _error(url, str(exc)) from None


_OPENERS: dict[str, _Opener] = {
    "file": _open_file,
    "memory": _open_memory,
}
