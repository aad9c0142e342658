"""The ground under the local backend: where keys live below its root, and how that fails.

``LocalRoot`` holds what ``LocalFileSystemStorage`` needs besides its reads and writes:
the refusal of symbolic links on the way to a key, directories made only below the root
(never the root itself), per-key ``flock`` locks, and ``OSError``s turned into storage
errors that name the key and the root. The functions are its file primitives: full
positional reads, directory flushes, quiet unlinks, and content version tokens.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import xxhash

from icechunk_lib.errors import (
    LocationNotFoundError,
    ObjectExistsError,
    ReadOnlyStorageError,
    StorageError,
)

__all__ = [
    "LOCK_DIR",
    "LocalRoot",
    "read_fully",
    "sync_directory",
    "unlink_quietly",
    "version_token",
]

LOCK_DIR = ".ick-locks"


def version_token(data: bytes) -> str:
    """The version token of ``data``: hex xxh3-128 of the content (equal bytes, equal token)."""
    return xxhash.xxh3_128_hexdigest(data)


class LocalRoot:
    """A root directory and the checked ways to reach, create and lock paths below it."""

    _root: Path
    """The resolved root directory."""
    _prefix: str
    """``str(_root)`` and a separator: key paths are this plus the key."""
    _fsync: bool
    """Whether new files and directory entries are flushed to disk."""
    _real_dirs: set[str]
    """Key directories checked to be real directories, not links (see ``_check_dirs``)."""

    def _check_dirs(self, directory: str) -> None:
        """Refuse a key directory (``"refs/branch/x"``) that is or passes through a link.

        One ``lstat`` per level, once per directory and storage: a directory found real is
        remembered; a missing one is checked again next time (writes make it a real one).
        """
        current = self._prefix
        parts = directory.split("/")
        for depth, part in enumerate(parts, 1):
            current += part
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                return  # missing (or unreadable): the operation itself reports it
            if stat.S_ISLNK(mode):
                raise self._linked("/".join(parts[:depth]))
            current += os.sep
        self._real_dirs.add(directory)

    def _exists_error(self, key: str, path: Path) -> StorageError:
        """``ObjectExistsError`` if a file holds ``key``, else an error naming what is there
        (reads call a directory or FIFO no object, so "already exists" would contradict them).
        """
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return ObjectExistsError(key)
        if stat.S_ISREG(mode):
            return ObjectExistsError(key)
        if stat.S_ISLNK(mode):
            return self._linked(key)
        what = "a directory" if stat.S_ISDIR(mode) else "a special file"
        return StorageError(
            f"{key!r} in {self._root} is {what}, not a regular file as ick writes; "
            "move it out of the repository"
        )

    def _blocked(self, key: str) -> StorageError:
        """The error for a write whose directories run into a file: name that file."""
        parts = key.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            name = "/".join(parts[:depth])
            try:
                mode = os.lstat(self._prefix + name.replace("/", os.sep)).st_mode
            except OSError:
                break
            if not stat.S_ISDIR(mode):
                return StorageError(
                    f"{name!r} in {self._root} is a file, not a directory as ick makes; "
                    "move it out of the repository"
                )
        return StorageError(f"cannot write {key!r} in {self._root}: not a directory")

    def _linked(self, name: str) -> StorageError:
        """The error for a symbolic link met at ``name`` (a key or a directory of keys)."""
        return StorageError(
            f"{name!r} in {self._root} is a symbolic link; links inside a repository are "
            "never followed (link the repository directory itself instead)"
        )

    @contextmanager
    def _os_errors(self, action: str, key: str) -> Iterator[None]:
        """Turn stray ``OSError``s into ``StorageError``s that name the key and the root."""
        try:
            yield
        except StorageError:
            raise
        except PermissionError as exc:
            message = f"cannot {action} {key!r} in {self._root}: permission denied"
            if action == "write" or action == "delete":
                raise ReadOnlyStorageError(f"{message}; the location is not writable") from exc
            raise StorageError(message) from exc
        except NotADirectoryError as exc:
            if action == "write":
                raise self._blocked(key) from exc
            raise StorageError(f"cannot {action} {key!r} in {self._root}: not a directory") from exc
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise ReadOnlyStorageError(
                    f"cannot {action} {key!r} in {self._root}: read-only file system; "
                    "the location is not writable"
                ) from exc
            reason = exc.strerror or str(exc)
            raise StorageError(f"cannot {action} {key!r} in {self._root}: {reason}") from exc

    @contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        """Hold an exclusive ``flock`` on the key's lock file (excludes threads and processes).

        Lock files are named by a hash of the key and never deleted: unlinking a lock file
        while another process waits on it would let two writers in at once.
        """
        lock_dir = self._root / LOCK_DIR
        lock_path = lock_dir / f"{version_token(key.encode())}.lock"
        if LOCK_DIR not in self._real_dirs:
            self._check_dirs(LOCK_DIR)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd = os.open(lock_path, flags, 0o666)
        except FileNotFoundError:
            self._make_dirs(lock_dir, durable=False)  # locks need not survive a reboot
            fd = os.open(lock_path, flags, 0o666)
        except NotADirectoryError:
            raise StorageError(
                f"{LOCK_DIR!r} in {self._root} is a file, not the directory of ick's locks; "
                "move it out of the repository"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _make_dirs(self, directory: Path, *, durable: bool = True) -> None:
        """Create ``directory`` and its missing parents below the root, never the root itself.

        Each level is one ``mkdir`` without ``parents``, so a root deleted at any moment
        makes the write fail instead of coming back as a fragment of a repository.
        """
        current = self._root
        parts = directory.relative_to(self._root).parts
        if not parts:
            self._check_root()
        for part in parts:
            current = current / part
            try:
                current.mkdir()
            except FileExistsError:
                continue
            except FileNotFoundError:
                raise LocationNotFoundError(str(self._root)) from None
            if self._fsync and durable:
                sync_directory(current.parent)  # the new directory's name is durable too

    def _check_root(self) -> None:
        """Raise ``LocationNotFoundError`` if the root directory is gone."""
        if not self._root.is_dir():
            raise LocationNotFoundError(str(self._root))


def read_fully(fd: int, offset: int, count: int) -> bytes:
    """``count`` bytes at ``offset`` (fewer only at end of file), with as few calls as possible."""
    data = os.pread(fd, count, offset)
    if len(data) == count or not data:
        return data
    parts = [data]
    got = len(data)
    while got < count:
        more = os.pread(fd, count - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def sync_directory(directory: str | Path) -> None:
    """Flush a directory's entries, so names published in it survive power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    with suppress(OSError):
        path.unlink()
