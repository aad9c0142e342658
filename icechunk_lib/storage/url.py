"""Pick a storage backend from a URL or path; each backend module is imported only when used.

Accepted forms: plain paths (``./repo``, ``/abs/repo``, ``~/repo``), ``file:///abs/repo``,
``memory://`` (a fresh storage) and ``memory://<name>`` (the process-wide one of that name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import SplitResult, unquote, urlsplit

from icechunk_lib.errors import InvalidNameError, InvalidStorageURLError
from icechunk_lib.storage._base import Storage

__all__ = ["storage_from_url", "supported_schemes"]

# Two or more letters so a Windows drive ("C:\\repo") still reads as a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")

_Opener = Callable[[str, SplitResult], Storage]


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
    match = _SCHEME.match(url)
    if match is None:
        return _open_path(url)
    scheme = match.group(1).lower()
    opener = _OPENERS.get(scheme)
    if opener is None:
        raise _error(
            url,
            f"the {scheme!r} scheme is not supported; supported for now: "
            f"{', '.join(supported_schemes())} and plain paths (S3 comes later). "
            "For a relative path containing ':', start it with './'",
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _error(url, str(exc)) from None
    if parts.query or parts.fragment:
        raise _error(url, "query strings and fragments are not supported")
    if "@" in parts.netloc:
        raise _error(url, "URLs must not carry credentials; configure them separately")
    return opener(url, parts)


def supported_schemes() -> list[str]:
    """The URL schemes ``storage_from_url`` understands, as ``"scheme://"`` strings."""
    return [f"{scheme}://" for scheme in sorted(_OPENERS)]


def _error(url: str, reason: str) -> InvalidStorageURLError:
    """An ``InvalidStorageURLError`` whose message never shows a secret from the URL."""
    return InvalidStorageURLError(_redact(url), reason)


def _redact(url: str) -> str:
    """``url`` as it may be shown: user info and any query or fragment become ``***``.

    Presigned and SAS URLs carry credentials in the query, and a secret key may contain
    ``/``, so everything up to the last ``@`` goes, with or without ``//`` after the scheme.
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


def _open_path(path: str) -> Storage:
    from icechunk_lib.storage.local import LocalFileSystemStorage

    return LocalFileSystemStorage(path)  # an unusable path is an InvalidStorageURLError


def _open_file(url: str, parts: SplitResult) -> Storage:
    if parts.netloc not in ("", "localhost"):
        raise _error(
            url,
            f"{parts.netloc!r} would be a host name; file URLs take an absolute path "
            "(file:///abs/repo). For a relative path drop the scheme: ./relative/repo",
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise _error(url, "file URLs take an absolute path (file:///abs/repo)")
    return _open_path(path)


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
