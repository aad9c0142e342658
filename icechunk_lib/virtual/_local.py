"""Virtual chunks in local files (``file://`` containers): ``os.pread`` in worker threads.

A reference's checks hold against the open file itself (one ``fstat`` per request), so
what is checked is what is read:

- an ETag is the file's ``local_file_etag``: ``"<inode>-<mtime in µs>-<size>"`` in
  lowercase hex, the scheme object_store (and so Icechunk) uses for local files; quotes
  and a ``W/`` prefix are ignored when comparing;
- ``last_updated_at``: the file must not have been modified after it (its mtime, in whole
  seconds, is not later).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
from pathlib import Path

from icechunk_lib.errors import (
    VirtualSourceChangedError,
    VirtualSourceError,
    VirtualSourceNotFoundError,
)
from icechunk_lib.storage._local_root import read_fully

__all__ = ["LocalSource", "etag_matches", "local_file_etag"]


def local_file_etag(path: str | os.PathLike[str]) -> str:
    """The ETag a ``file://`` virtual reference to ``path`` records, so reads refuse the
    file once it is replaced or modified (inode, mtime in microseconds and size, in hex)."""
    return _etag(Path(path).stat())


def _etag(st: os.stat_result) -> str:
    return f"{st.st_ino:x}-{st.st_mtime_ns // 1000:x}-{st.st_size:x}"


def bare_etag(etag: str) -> str:
    """An ETag without its ``W/`` prefix and quotes, for comparing."""
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def etag_matches(expected: str, actual: str) -> bool:
    """Whether the reference's ETag ``expected`` names the object whose ETag is ``actual``."""
    return bare_etag(expected) == bare_etag(actual)


def changed_since(seconds: int) -> str:
    """How an error says the object was modified after ``seconds`` since the epoch."""
    when = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
    return f"it was modified after {when}, the reference's last_updated_at"


class LocalSource:
    """Files under one ``file://`` container."""

    __slots__ = ("root",)

    def __init__(self, root: str) -> None:
        self.root = root
        """The container's directory (its prefix's path, decoded), ending in ``/``."""

    def __repr__(self) -> str:
        return f"LocalSource({self.root!r})"

    async def fetch(
        self, path: str, start: int, end: int, etag: str, since: int, location: str
    ) -> tuple[bytes, int | None]:
        """Bytes ``[start, end)`` of the file at ``path`` below the container (fewer at
        its end) and its size, after checking ``etag`` and ``since`` (empty / 0: none)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, self._read, self.root + path, start, end, etag, since, location
        )

    @staticmethod
    def _read(
        file: str, start: int, end: int, etag: str, since: int, location: str
    ) -> tuple[bytes, int | None]:
        try:
            fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise VirtualSourceNotFoundError(location) from None
        except OSError as exc:
            raise VirtualSourceError(location, f"cannot open {file}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise VirtualSourceNotFoundError(location, f"{file} is not a regular file")
            if etag and not etag_matches(etag, _etag(st)):
                raise VirtualSourceChangedError(
                    location, f"its ETag is {_etag(st)!r}, the reference's {etag!r}"
                )
            if since and st.st_mtime_ns // 1_000_000_000 > since:
                raise VirtualSourceChangedError(location, changed_since(since))
            # Only what the file holds: a range far past its end would overflow pread's
            # offset or have it allocate the whole length; the caller reports it truncated.
            end = min(end, st.st_size)
            return (read_fully(fd, start, end - start) if start < end else b""), st.st_size
        except OSError as exc:
            raise VirtualSourceError(location, f"cannot read {file}: {exc.strerror}") from None
        finally:
            os.close(fd)
