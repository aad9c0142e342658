"""Local filesystem storage, safe with several processes writing the same repository.

Atomicity comes from POSIX primitives: every write goes to a temporary file in the target
directory first, then ``os.replace`` publishes it (readers see old or new bytes, never a mix),
``os.link`` creates-if-absent, and compare-and-swap holds an ``flock`` on a per-key lock file.
Symbolic links below the root are never followed (every operation through one fails naming
it), so no key reaches a file outside the repository; the root itself is resolved once.
Internal files (``.ick-locks/``, ``.ick-tmp-*``) use the reserved ``.ick-`` segment prefix, which
keys may not use, so ``list`` never shows them.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import operator
import os
import secrets
import stat
from collections.abc import AsyncIterator, Collection, Generator, Iterable, Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from icechunk_lib.errors import (
    InvalidStorageURLError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from icechunk_lib.storage._base import (
    RESERVED_PREFIX,
    ObjectInfo,
    Storage,
    StorageCapabilities,
    check_byte_range,
    check_key,
    check_prefix,
    is_key_segment,
)
from icechunk_lib.storage._local_root import (
    LocalRoot,
    read_fully,
    sync_directory,
    unlink_quietly,
    version_token,
)

__all__ = ["LocalFileSystemStorage", "version_token"]

_TMP_PREFIX = ".ick-tmp-"
_LIST_BATCH = 1000
_DELETE_THREADS = 4
"""Worker threads one ``delete_many`` spreads its unlinks over (metadata operations of a
filesystem overlap well, even on one disk)."""
# link(2) errors meaning "this filesystem has no hard links", not "the key exists".
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP}
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _rebuild(url: str, fsync: bool) -> LocalFileSystemStorage:
    return LocalFileSystemStorage(url, fsync=fsync)


class LocalFileSystemStorage(LocalRoot, Storage):
    """Objects as files under a root directory that ``create_root`` makes.

    Writes create the directories they need below the root, never the root itself: a
    repository deleted under a live object is reported (``LocationNotFoundError``), not
    silently recreated as a fragment.
    """

    capabilities = StorageCapabilities(create_if_absent=True, compare_and_swap=True)

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False) -> None:
        """Use ``root`` (``~`` expanded, resolved to an absolute path) as the storage root.

        Writes are atomic and survive a crash of the writing process either way. With
        ``fsync=True`` every file is also flushed to disk before it is published, and its
        directory after, so a committed snapshot survives power loss too; that costs two
        disk flushes per object.
        """
        text = os.fspath(root)
        if not text.strip():
            raise InvalidStorageURLError(text, "it is empty; pass a path such as ./repo")
        try:
            self._root = Path(text).expanduser().resolve()
        except RuntimeError as exc:  # "~name" of no known user, or a symlink loop
            reason = (
                f"could not determine the home directory of {text.split('/')[0]!r}"
                if text[:1] == "~"
                else str(exc)
            )
            raise InvalidStorageURLError(text, reason) from None
        except ValueError as exc:  # an embedded null byte
            raise InvalidStorageURLError(text, str(exc)) from None
        self._prefix = str(self._root) + os.sep
        self._fsync = fsync
        self._real_dirs = set()

    @property
    def root(self) -> Path:
        """The resolved root directory."""
        return self._root

    @property
    def url(self) -> str:
        """The absolute root path."""
        return str(self._root)

    def __repr__(self) -> str:
        return f"LocalFileSystemStorage({self.url!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LocalFileSystemStorage):
            return NotImplemented
        return self._root == other._root

    def __hash__(self) -> int:
        return hash(("local", self._root))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.url, self._fsync))

    # --- paths and errors ----------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """Map a checked key to its file path; reserved segments are refused."""
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        """``_path`` as a string, without building a ``Path`` (the per-chunk hot path)."""
        if self._closed:  # every keyed operation passes here: the closed check for them all
            raise self._closed_error()
        check_key(key)  # also refuses the reserved ``.ick-`` segments of our own files
        directory = key.rpartition("/")[0]
        if directory and directory not in self._real_dirs:
            self._check_dirs(directory)
        return self._prefix + key if os.sep == "/" else self._prefix + key.replace("/", os.sep)

    async def create_root(self) -> None:
        """Create the root directory and its parents if missing (overrides ``Storage``)."""
        self._check_open()

        def make() -> None:
            with self._os_errors("create", "."):
                missing = [p for p in (self._root, *self._root.parents) if not p.exists()]
                self._root.mkdir(parents=True, exist_ok=True)
                if self._fsync:
                    for made in reversed(missing):  # each new directory's name is durable
                        sync_directory(made.parent)

        await asyncio.to_thread(make)

    # --- reads ---------------------------------------------------------------------------

    def _read(self, key: str, path: str | Path, byte_range: tuple[int, int | None] | None) -> bytes:
        with self._os_errors("read", key):
            try:
                # O_NONBLOCK: opening a FIFO must not wait for a writer (no effect on files).
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
            except _MISSING:
                raise ObjectNotFoundError(key, self.url) from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise self._linked(key) from None
                raise
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise ObjectNotFoundError(key, self.url)  # a directory, FIFO or device
                size = st.st_size
                if byte_range is None:
                    start, end = 0, size
                else:
                    start, stop = byte_range
                    end = size if stop is None else min(stop, size)
                    if start >= end:
                        return b""
                return read_fully(fd, start, end - start)
            except IsADirectoryError:
                raise ObjectNotFoundError(key, self.url) from None
            finally:
                os.close(fd)

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        """Return the file's bytes, reading only the requested range (see ``Storage.get``)."""
        path = self._file(key)
        checked = None if byte_range is None else check_byte_range(byte_range)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._read, key, path, checked)

    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        """Return the bytes and their content-hash version token (see ``version_token``)."""
        data = await asyncio.to_thread(self._read, key, self._path(key), None)
        return data, version_token(data)

    def _stat(self, key: str, path: Path) -> os.stat_result | None:
        with self._os_errors("stat", key):
            try:
                st = os.lstat(path)
            except _MISSING:
                return None
            if stat.S_ISLNK(st.st_mode):
                raise self._linked(key)
        return st if stat.S_ISREG(st.st_mode) else None

    async def exists(self, key: str) -> bool:
        """Whether a regular file exists for ``key``."""
        return await asyncio.to_thread(self._stat, key, self._path(key)) is not None

    async def size(self, key: str) -> int:
        """The file's size in bytes."""
        st = await asyncio.to_thread(self._stat, key, self._path(key))
        if st is None:
            raise ObjectNotFoundError(key, self.url)
        return st.st_size

    # --- listing -------------------------------------------------------------------------

    def _walk(self, prefix: str) -> Generator[ObjectInfo, None, None]:
        """Yield the files under ``prefix``, visiting only directories that can match."""
        dir_key, _, name_prefix = prefix.rpartition("/")
        if any(part.startswith(RESERVED_PREFIX) for part in dir_key.split("/")):
            return  # internal directories hold no objects
        if dir_key:
            with self._os_errors("list", prefix):
                self._check_dirs(dir_key)
        start = self._root.joinpath(*dir_key.split("/")) if dir_key else self._root
        pending = [(start, f"{dir_key}/" if dir_key else "", name_prefix)]
        while pending:
            path, key_base, wanted = pending.pop()
            with self._os_errors("list", prefix):
                try:
                    entries = os.scandir(path)
                except _MISSING:
                    continue  # a missing root or subtree is simply empty
            with entries:
                more = True
                while more:
                    with self._os_errors("list", prefix):
                        batch, more = self._scan(entries, key_base, wanted, pending)
                    yield from batch

    def _scan(
        self,
        entries: Iterator[os.DirEntry[str]],
        key_base: str,
        wanted: str,
        pending: list[tuple[Path, str, str]],
    ) -> tuple[list[ObjectInfo], bool]:
        """The files among the next ``_LIST_BATCH`` entries of a directory listing, queueing
        its subdirectories on ``pending``, and whether entries may remain; one error-mapping
        frame per batch, not per file."""
        found: list[ObjectInfo] = []
        seen = 0
        for entry in entries:
            seen += 1
            name = entry.name
            if not name.startswith(wanted) or name.startswith(RESERVED_PREFIX):
                pass
            elif not _is_key_segment(name):
                pass  # no valid key has this segment: not an object of ours
            else:
                try:
                    if entry.is_symlink():
                        raise self._linked(f"{key_base}{name}")
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((Path(entry.path), f"{key_base}{name}/", ""))
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we walked
                if stat.S_ISREG(st.st_mode):
                    found.append(ObjectInfo(key_base + name, st.st_size, _modified(st.st_mtime)))
            if seen >= _LIST_BATCH:
                return found, True
        return found, False

    def _walk_after(self, prefix: str, start_after: str) -> list[ObjectInfo]:
        """The files under ``prefix`` with keys after ``start_after``, sorted by key.

        A directory cannot be read from a name on, so each is read whole, but as bare names
        (``os.listdir``): a name is compared before anything else is done with it, and only
        the few after ``start_after`` (or leading to keys after it) are stat'ed.
        """
        dir_key, _, name_prefix = prefix.rpartition("/")
        if any(part.startswith(RESERVED_PREFIX) for part in dir_key.split("/")):
            return []
        if dir_key:
            with self._os_errors("list", prefix):
                self._check_dirs(dir_key)
        start = str(self._root.joinpath(*dir_key.split("/")) if dir_key else self._root)
        pending = [(start, f"{dir_key}/" if dir_key else "", name_prefix)]
        found: list[ObjectInfo] = []
        while pending:
            path, key_base, wanted = pending.pop()
            with self._os_errors("list", prefix):
                try:
                    names = os.listdir(path)  # noqa: PTH208 - str names, no Path per entry
                except _MISSING:
                    continue
            for name in names:
                key = key_base + name
                if key <= start_after and not start_after.startswith(key):
                    continue  # neither it nor anything below it comes after start_after
                if not name.startswith(wanted) or name.startswith(RESERVED_PREFIX):
                    continue
                if not _is_key_segment(name):
                    continue
                full = f"{path}/{name}"
                with self._os_errors("list", prefix):
                    try:
                        st = os.lstat(full)
                    except FileNotFoundError:
                        continue
                if stat.S_ISLNK(st.st_mode):
                    raise self._linked(key)
                if stat.S_ISDIR(st.st_mode):
                    pending.append((full, f"{key}/", ""))
                elif stat.S_ISREG(st.st_mode) and key > start_after:
                    found.append(ObjectInfo(key, st.st_size, _modified(st.st_mtime)))
        found.sort(key=_KEY)
        return found

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        if start_after is not None:
            # Sorted means collected first: only the keys after ``start_after`` are held.
            found = await asyncio.to_thread(self._walk_after, prefix, start_after)
            for info in found:
                yield info
            return
        walker = self._walk(prefix)
        try:
            while True:
                batch = await asyncio.to_thread(_take, walker, _LIST_BATCH)
                for info in batch:
                    yield info
                if len(batch) < _LIST_BATCH:
                    return
        finally:
            # Cancelled mid-batch the walker is still running: it closes itself when collected.
            with suppress(ValueError):
                walker.close()

    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Yield the objects under ``prefix`` in batches walked in a worker thread
        (overrides ``Storage.list``)."""
        self._check_open()
        return self._list(check_prefix(prefix), start_after)

    async def is_empty(self) -> bool:
        """True when the root holds no object (a missing root is empty)."""
        self._check_open()

        def probe() -> bool:
            walker = self._walk("")
            try:
                return next(walker, None) is None
            finally:
                walker.close()

        return await asyncio.to_thread(probe)

    # --- writes --------------------------------------------------------------------------

    def _write_temp(self, path: Path, data: bytes) -> Path:
        """Write ``data`` (fsynced if asked) to a new hidden file beside ``path``; return it."""
        tmp = path.with_name(f"{_TMP_PREFIX}{secrets.token_hex(8)}")
        # 0o666 lets the umask decide permissions, as for any file the user creates.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:
            self._make_dirs(path.parent)
            fd = os.open(tmp, flags, 0o666)
        try:
            with open(fd, "wb") as file:
                file.write(data)
                if self._fsync:
                    file.flush()
                    os.fsync(file.fileno())
        except BaseException:
            unlink_quietly(tmp)
            raise
        return tmp

    def _replace(self, key: str, path: Path, data: bytes) -> None:
        with self._os_errors("write", key):
            tmp = self._write_temp(path, data)
            try:
                tmp.replace(path)
            except BaseException:
                unlink_quietly(tmp)
                raise
            if self._fsync:
                sync_directory(path.parent)

    def _create(self, key: str, path: Path, data: bytes) -> None:
        with self._os_errors("write", key):
            tmp = self._write_temp(path, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise self._exists_error(key, path) from None
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                # No hard links here: check and publish under the key lock instead.
                with self._key_lock(key):
                    if os.path.lexists(path):
                        raise self._exists_error(key, path) from None
                    tmp.replace(path)
            finally:
                unlink_quietly(tmp)
            if self._fsync:
                sync_directory(path.parent)  # the name, not just the bytes, survives

    def _swap(self, key: str, path: Path, data: bytes, version: str) -> str:
        with self._os_errors("write", key):
            if self._stat(key, path) is None:
                self._check_root()
                raise PreconditionFailedError(key)  # nothing to swap: take no lock, make no dirs
            with self._key_lock(key):
                if not self._matches(key, path, version):
                    raise PreconditionFailedError(key)
                self._replace(key, path, data)
        return version_token(data)

    def _matches(self, key: str, path: Path, version: str) -> bool:
        try:
            current = self._read(key, path, None)
        except ObjectNotFoundError:
            return False
        return version_token(current) == version

    async def put(self, key: str, data: bytes) -> None:
        """Write ``data`` atomically (temporary file, then ``os.replace``)."""
        await asyncio.to_thread(self._replace, key, self._path(key), data)

    def _write_new(self, key: str, path: str, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        with self._os_errors("write", key):
            try:
                fd = os.open(path, flags, 0o666)
            except FileNotFoundError:
                self._make_dirs(Path(path).parent)
                fd = os.open(path, flags, 0o666)
            except FileExistsError:
                raise self._exists_error(key, Path(path)) from None
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fsync(fd)
            except BaseException:
                os.close(fd)
                unlink_quietly(Path(path))
                raise
            os.close(fd)
            if self._fsync:
                sync_directory(path.rpartition(os.sep)[0])

    async def put_new(self, key: str, data: bytes) -> None:
        """Write a fresh key in place: one exclusive create, no temporary file or rename.

        Safe because nothing names a fresh key until this returns (see ``Storage.put_new``);
        a crash midway leaves a partial file that no snapshot references.
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._write_new, key, self._file(key), data)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        """Create ``key`` with ``os.link``, which fails atomically if the file exists."""
        await asyncio.to_thread(self._create, key, self._path(key), data)

    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        """Compare-and-swap under the key's ``flock``; return the new content-hash token."""
        return await asyncio.to_thread(self._swap, key, self._path(key), data, version)

    def _unlink(self, key: str, path: Path) -> None:
        # Empty directories stay: removing them could race with a writer creating a file.
        with self._os_errors("delete", key), suppress(*_MISSING):
            path.unlink()
            if self._fsync:
                sync_directory(path.parent)

    def _unlink_locked(self, key: str, path: Path) -> None:
        with self._os_errors("delete", key):
            if not os.path.lexists(path):
                return  # nothing to delete: take no lock, make no lock file
            with self._key_lock(key):
                self._unlink(key, path)

    async def delete(self, key: str) -> None:
        """Delete the file if present, under the key's lock: a ``put_if_match`` that read the
        file before the delete cannot bring it back by replacing it after."""
        await asyncio.to_thread(self._unlink_locked, key, self._path(key))

    async def remove_leftovers(self, older_than: datetime, *, skip: Collection[str] = ()) -> int:
        """Delete the ``.ick-tmp-*`` files that writes killed between writing and renaming
        left, once modified before ``older_than`` (a write in progress holds a young one)."""
        self._check_open()
        cut = older_than.timestamp()

        def sweep() -> int:
            removed = 0
            for directory, subdirs, files in os.walk(self._root):
                if directory == str(self._root):
                    subdirs[:] = [d for d in subdirs if d not in skip]
                for name in files:
                    if not name.startswith(_TMP_PREFIX):
                        continue
                    path = os.path.join(directory, name)  # noqa: PTH118 - str paths from os.walk
                    with suppress(*_MISSING):
                        if os.lstat(path).st_mtime < cut:
                            os.unlink(path)  # noqa: PTH108 - as above
                            removed += 1
            return removed

        with self._os_errors("delete", _TMP_PREFIX + "*"):
            return await asyncio.to_thread(sweep)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete every key, a few worker threads at a time; all keys are checked first.

        No locks: this is for immutable objects (chunks, snapshots) that no compare-and-swap
        ever replaces; delete refs and config one at a time with ``delete``.
        """
        targets = [(key, self._file(key)) for key in keys]
        fsync = self._fsync

        def unlink_all(part: list[tuple[str, str]]) -> None:
            for key, path in part:
                with self._os_errors("delete", key), suppress(*_MISSING):
                    os.unlink(path)  # noqa: PTH108 - a str path, no Path per chunk
                    if fsync:
                        sync_directory(path.rpartition(os.sep)[0])

        step = max(-(-len(targets) // _DELETE_THREADS), 256)
        parts = [targets[i : i + step] for i in range(0, len(targets), step)]
        await asyncio.gather(*(asyncio.to_thread(unlink_all, part) for part in parts))
        return len(targets)


def _is_key_segment(name: str) -> bool:
    """Whether a file name read from disk can be a key segment (see ``check_key``): no
    control characters or backslashes, and valid Unicode (undecodable bytes come back from
    the OS as lone surrogates)."""
    if name.isascii() and name.isprintable() and "\\" not in name:
        return name not in (".", "..")  # the common case, without a regex
    return is_key_segment(name)


_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _modified(mtime: float) -> datetime:
    """A file's modification time as a UTC datetime, clamped to what ``datetime`` holds
    (file systems with 64-bit times can hold years past 9999 or before 1)."""
    try:
        return datetime.fromtimestamp(mtime, UTC)
    except (ValueError, OverflowError, OSError):
        return _LATEST if mtime > 0 else _EARLIEST


_KEY = operator.attrgetter("key")


def _take(items: Iterator[ObjectInfo], count: int) -> list[ObjectInfo]:
    return list(itertools.islice(items, count))
