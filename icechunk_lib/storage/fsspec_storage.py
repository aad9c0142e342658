"""``FsspecStorage``: any fsspec filesystem (gcs, azure, http, sftp, ...) as ick storage.

Such a filesystem offers no atomic create-if-absent or compare-and-swap that ick can rely
on, so the storage declares neither and a repository on it opens read-only. With
``allow_unsafe_writes=True`` it writes by emulation: a conditional write first checks the
object (absent for a create, same version for a swap) and then writes it. Between the check
and the write another writer can do the same, and then one of them silently wins:

* two commits racing on one branch can both "succeed": the branch ends at one of them and
  the other commit is gone from its history (its objects become garbage for gc);
* two writers creating the same branch or tag can both succeed, the last one winning;
* a config saved concurrently by two writers keeps only the last one.

With a single writer at a time nothing is lost. Each call runs the filesystem's synchronous
API in a worker thread: that works alike for synchronous filesystems and for async ones
(which then run on fsspec's own I/O loop), whatever loop the caller is on.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import secrets
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from icechunk_lib.errors import (
    IcechunkError,
    LocationNotFoundError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from icechunk_lib.storage._base import (
    ObjectInfo,
    Storage,
    StorageCapabilities,
    check_byte_range,
    check_key,
    check_prefix,
    is_key_segment,
    listed_after,
)
from icechunk_lib.storage.url import redact_url

__all__ = ["UNSAFE_WRITES_WARNING", "FsspecStorage"]

T = TypeVar("T")

UNSAFE_WRITES_WARNING = (
    "writes without atomic operations: a commit racing with another writer on the same "
    "branch can be lost, and a branch or tag created by two writers at once keeps only the "
    "last one; use one writer at a time"
)
"""What unsafe writes can lose, in the words every warning about them uses."""

_NO_LISTING = (
    "the HTTP server at {url} does not list directories (it has no index pages), so ick "
    "cannot list {what}, as history, branch and tag lists and snapshot id prefixes need; "
    "reading the data at a branch, tag or full snapshot id works without listing. Serve "
    "the repository with directory listings (python -m http.server, nginx autoindex) for "
    "the rest"
)


class FsspecStorage(Storage):
    """Storage under ``root`` on an fsspec filesystem: read-only unless unsafe writes are
    allowed (see the module docstring for what they can lose)."""

    capabilities = StorageCapabilities(create_if_absent=False, compare_and_swap=False)

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        url: str | None = None,
        allow_unsafe_writes: bool = False,
    ) -> None:
        self._fs = fs
        self._root = root.rstrip("/")
        self._url = redact_url(url if url is not None else self._root)
        self.unsafe_writes = bool(allow_unsafe_writes)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        self._http = protocol in ("http", "https")
        self._lists = False  # an HTTP server was seen listing the root
        self._token: str | None = None  # set when first pickled (see __reduce__)

    # --- identity ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The location, without credentials."""
        return self._url

    @property
    def fs(self) -> Any:
        """The fsspec filesystem underneath."""
        return self._fs

    @property
    def root(self) -> str:
        """The path on ``fs`` under which the keys live."""
        return self._root

    def __repr__(self) -> str:
        mode = ", unsafe writes" if self.unsafe_writes else ", read-only"
        return f"FsspecStorage({self.url!r}{mode})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FsspecStorage):
            return NotImplemented
        return self._identity() == other._identity()

    def _identity(self) -> tuple[Any, ...]:
        """The filesystem's kind and options (fsspec's own equality also compares cache
        settings, which a pickle does not keep) and the root."""
        return (type(self._fs), self._fs.storage_options, self._root)

    def __hash__(self) -> int:
        return hash(("fsspec", self._root))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle without secrets: the filesystem's class and its options minus any that
        look like credentials, plus a token. Unpickled in this process the live filesystem
        is found by the token; elsewhere it is rebuilt from the kept options, and its
        credentials come from that process's environment (as with ``S3Storage``)."""
        token = self._token
        if token is None:
            token = self._token = secrets.token_hex(16)
            _live[token] = self._fs
        options = public_options(self._fs.storage_options)
        return (
            _rebuild,
            (type(self._fs), options, token, self._root, self._url, self.unsafe_writes),
        )

    # --- helpers -------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self._root}/{check_key(key)}"

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking filesystem call in a worker thread; what the filesystem raises
        beyond ick's own errors becomes a ``StorageError`` naming the location."""
        self._check_open()
        try:
            return await asyncio.to_thread(functools.partial(call, *args, **kwargs))
        except IcechunkError:
            raise
        except Exception as exc:
            raise StorageError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def _info(self, path: str, key: str) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self._fs.info(path)
        except FileNotFoundError:
            raise ObjectNotFoundError(key, self.url) from None
        if info.get("type") == "directory":
            raise ObjectNotFoundError(key, self.url)
        return info

    def _require_writes(self) -> None:
        self._check_open()
        self.check_writable()  # the common refusal: no atomic operations, no opt-in

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        """The object's bytes or a range of them (overrides ``Storage.get``)."""
        path = self._path(key)
        if byte_range is None:
            return await self._run(self._cat, path, key, None, None)
        start, end = check_byte_range(byte_range)
        return await self._run(self._cat, path, key, start, end)

    def _cat(self, path: str, key: str, start: int | None, end: int | None) -> bytes:
        """``cat_file``, clipped as the contract says, in one request: a range goes to the
        server as it is (no size lookup first), and only a failed one past byte 0 asks for
        the size, to tell "past the end" (empty) from a real error."""
        if end is not None and start is not None and end <= start:
            self._info(path, key)  # empty, but a missing key is still an error
            return b""
        try:
            if self._http and start is not None:
                return self._http_range(path, start, end)
            data: bytes = self._fs.cat_file(path, start=start, end=end)
        except FileNotFoundError:
            raise ObjectNotFoundError(key, self.url) from None
        except IsADirectoryError:
            raise ObjectNotFoundError(key, self.url) from None
        except Exception:
            if start and start >= int(self._info(path, key)["size"]):
                return b""  # a range past the end (S3 answers it with 416)
            raise
        return data

    def _http_range(self, path: str, start: int, end: int | None) -> bytes:
        """A ranged GET over HTTP that reads the status: 206 is the range, 200 the whole
        object from a server that ignores ``Range`` (python's http.server), sliced here, and
        416 a range past the end. fsspec's ``cat_file`` hides the status, so it would take a
        size lookup first to tell these apart."""
        from fsspec.asyn import sync

        fs = self._fs
        last = "" if end is None else str(end - 1)

        async def fetch() -> bytes:
            kwargs = dict(fs.kwargs)
            kwargs["headers"] = {**kwargs.get("headers", {}), "Range": f"bytes={start}-{last}"}
            session = await fs.set_session()
            async with session.get(fs.encode_url(path), **kwargs) as reply:
                if reply.status == 416:
                    return b""
                if reply.status == 404:
                    raise FileNotFoundError(path)
                reply.raise_for_status()
                data: bytes = await reply.read()
                return data if reply.status == 206 else data[start:end]

        result: bytes = sync(fs.loop, fetch)
        return result

    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and a version from its etag, else its time and size; the
        version is read before the bytes, so a write in between fails a later swap."""
        path = self._path(key)
        info = await self._run(self._info, path, key)
        data = await self._run(self._cat, path, key, None, None)
        return data, _version(info)

    async def exists(self, key: str) -> bool:
        """Whether ``key`` names an object (a directory is not one)."""
        path = self._path(key)
        try:
            await self._run(self._info, path, key)
        except ObjectNotFoundError:
            return False
        return True

    async def size(self, key: str) -> int:
        """The object's size in bytes."""
        info = await self._run(self._info, self._path(key), key)
        return int(info["size"])

    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Objects under ``prefix`` (overrides ``Storage.list``). On HTTP the server's
        directory index pages are read; one that has none raises ``StorageError``."""
        self._check_open()
        return self._list(check_prefix(prefix), start_after)

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        infos = await self._run(self._find, prefix)
        if start_after is not None:
            infos = listed_after(infos, start_after)
        for info in infos:
            yield info

    def _find(self, prefix: str) -> builtins.list[ObjectInfo]:
        directory = prefix.rpartition("/")[0]
        base = f"{self._root}/{directory}" if directory else self._root
        if self._http and not self._lists:
            self._check_listing(prefix)
        try:
            found: dict[str, dict[str, Any]] = self._fs.find(base, detail=True)
        except FileNotFoundError:
            return []
        infos: builtins.list[ObjectInfo] = []
        cut = len(self._fs._strip_protocol(self._root)) + 1
        for path, info in found.items():
            key = self._fs._strip_protocol(path)[cut:]
            if not key.startswith(prefix) or not all(map(is_key_segment, key.split("/"))):
                continue  # outside the prefix, or a name no key can have (a temporary file)
            if info.get("size") is None:  # HTTP listings carry no sizes
                info = self._info(path, key)
            infos.append(ObjectInfo(key, int(info["size"]), _modified(info)))
        return infos

    def _check_listing(self, prefix: str) -> None:
        """An HTTP server without index pages answers 404 to a directory: say so rather
        than list nothing (a repository always holds ``refs/``)."""
        try:
            entries = self._fs.ls(self._root + "/", detail=False)
        except FileNotFoundError:
            entries = []
        if not entries:
            what = f"the objects under {prefix!r}" if prefix else "its objects"
            raise StorageError(_NO_LISTING.format(url=self.url, what=what))
        self._lists = True

    # --- writes (unsafe emulation) -------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` (only with unsafe writes allowed)."""
        path = self._path(key)
        self._require_writes()
        await self._run(self._pipe, path, data)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        """Emulated: create ``key`` if a check just before finds it absent."""
        path = self._path(key)
        self._require_writes()
        await self._run(self._create, path, key, data)

    async def put_new(self, key: str, data: bytes) -> None:
        """As ``put_if_absent``; fresh random keys never collide in practice."""
        await self.put_if_absent(key, data)

    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        """Emulated: replace ``key`` if a check just before finds ``version``."""
        path = self._path(key)
        self._require_writes()
        return await self._run(self._swap, path, key, data, version)

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        path = self._path(key)
        self._require_writes()
        await self._run(self._remove, path)

    async def create_root(self) -> None:
        """Create the root directory on filesystems that have directories; on object
        stores only check that the bucket (or container) exists: it is never created."""
        self._require_writes()
        await self._run(self._make_root)

    def _make_root(self) -> None:
        root = self._fs._strip_protocol(self._root)
        if self._fs.root_marker == "" and not self._http:
            # No filesystem root: the first segment is a bucket or container, and makedirs
            # (s3fs, gcsfs, adlfs) would create a missing one. Below it there is nothing to
            # make: object stores have no directories.
            bucket = root.strip("/").partition("/")[0]
            if not self._fs.exists(bucket):
                raise LocationNotFoundError(f"bucket {bucket!r} of {self.url}")
            return
        self._fs.makedirs(root, exist_ok=True)

    def _create(self, path: str, key: str, data: bytes) -> None:
        if self._fs.exists(path):
            raise ObjectExistsError(key)
        self._pipe(path, data)

    def _swap(self, path: str, key: str, data: bytes, version: str) -> str:
        try:
            current = _version(self._info(path, key))
        except ObjectNotFoundError:
            raise PreconditionFailedError(key) from None
        if current != version:
            raise PreconditionFailedError(key)
        self._pipe(path, data)
        return _version(self._info(path, key))

    def _pipe(self, path: str, data: bytes) -> None:
        try:
            self._fs.pipe_file(path, data)
        except FileNotFoundError:
            # A filesystem with directories: make the parents, but never the root itself.
            if not self._fs.isdir(self._root):
                raise LocationNotFoundError(self.url) from None
            self._fs.makedirs(path.rpartition("/")[0], exist_ok=True)
            self._fs.pipe_file(path, data)

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(path)


def _version(info: dict[str, Any]) -> str:
    """A version token from what the filesystem reports: etag or generation if any, else
    modification time and size."""
    for name in ("ETag", "etag", "generation", "VersionId", "version_id"):
        value = info.get(name)
        if value:
            return f"{name}:{value}"
    return f"mtime:{_modified(info).timestamp()!r}:{info.get('size')}"


def _modified(info: dict[str, Any]) -> datetime:
    """The object's modification time; one the filesystem does not report is "now", so gc
    always counts such an object as new (never old enough to delete)."""
    for name in ("LastModified", "last_modified", "mtime", "updated", "Last-Modified", "created"):
        value = info.get(name)
        if value is None:
            continue
        moment = _as_datetime(value)
        if moment is not None:
            return moment
    return datetime.now(UTC)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        from email.utils import parsedate_to_datetime

        for parse in (datetime.fromisoformat, parsedate_to_datetime):
            try:
                return _as_datetime(parse(value.replace("Z", "+00:00")))
            except (TypeError, ValueError):
                continue
    return None


_live: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
"""Token -> the filesystem of a pickled storage, for unpickling in the same process."""

_SECRET_WORDS = ("secret", "token", "password", "passwd", "key", "credential", "sas", "auth")
"""An option whose name holds one of these is taken for a credential and never pickled."""
_NOT_SECRET = frozenset({"requester_pays", "key_prefix"})


def public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without anything that looks like a credential, in nested dicts too
    (``client_kwargs={"aws_secret_access_key": ...}``)."""
    kept: dict[str, Any] = {}
    for name, value in options.items():
        lowered = str(name).lower()
        if lowered not in _NOT_SECRET and any(word in lowered for word in _SECRET_WORDS):
            continue
        kept[name] = public_options(value) if isinstance(value, Mapping) else value
    return kept


def _rebuild(
    fs_class: Any, options: dict[str, Any], token: str, root: str, url: str, unsafe: bool
) -> FsspecStorage:
    fs = _live.get(token)
    if fs is None:
        fs = fs_class(**options)
    storage = FsspecStorage(fs, root, url=url, allow_unsafe_writes=unsafe)
    storage._token = token
    _live[token] = fs
    return storage
