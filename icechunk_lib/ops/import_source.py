"""The source of an import: a path, URL or zarr ``Store`` opened read-only, and read safely.

``open_source`` tells a URL from a directory by the storage's rule (``url_scheme``) and
names the source for messages through ``redact_url``; ``SourceReader`` lists and reads it,
turning the source's own failures into ick errors, and refuses a source that is not the
root of a Zarr v3 store with a hint of the store roots below it.
"""

from __future__ import annotations

import collections
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype

from icechunk_lib.errors import (
    IcechunkError,
    ImportSourceError,
    ImportSourceNotFoundError,
    InvalidImportSourceError,
    InvalidStorageURLError,
    StorageError,
)
from icechunk_lib.ops.source_meta import source_file
from icechunk_lib.storage.url import file_url_path, redact_url, url_scheme
from icechunk_lib.zarr_keys import META_KEY

__all__ = ["V2_KEYS", "V2_NODE_KEYS", "SourceReader", "ZarrSource", "open_source"]

ZarrSource = str | os.PathLike[str] | Store
"""A directory path, a ``file://`` or other fsspec URL, or an open zarr ``Store``."""

V2_KEYS = (".zarray", ".zgroup", ".zattrs")
"""Zarr v2 metadata keys."""
V2_NODE_KEYS = (".zarray", ".zgroup")
"""The Zarr v2 keys that make a node."""
# Looking for store roots below a source that is not one: how far, and how many to name.
_ROOT_SEARCH_DIRS = 256
_ROOT_SEARCH_NAMES = 1000
_ROOT_HINTS = 5


def open_source(source: ZarrSource) -> tuple[Store, str, bool]:
    """The zarr store to read, a credential-free name for messages, and whether we opened it.

    A string is a URL or a directory by the storage's rule (``url_scheme``): ``s3:x`` is a
    malformed URL, not a directory; ``./s3:x`` is a directory.
    """
    if isinstance(source, Store):
        return source, redact_url(str(source)), False
    if isinstance(source, os.PathLike):
        return _open_directory(Path(os.fspath(source)))
    if not isinstance(source, str) or not source.strip():
        raise InvalidStorageURLError(str(source), "pass a directory path, a URL or a zarr Store")
    scheme = url_scheme(source)
    if scheme is None:
        return _open_directory(Path(source))
    if scheme == "file":
        return _open_directory(Path(file_url_path(source)))
    shown = redact_url(source)
    if "://" not in source:  # fsspec would read "s3:x" as a local file name
        raise InvalidStorageURLError(
            shown,
            f"write {scheme}://...; for a relative path containing ':', start it with './'",
        )
    from zarr.storage import FsspecStore

    try:
        store = FsspecStore.from_url(source, read_only=True)
    except (ImportError, ValueError, TypeError) as exc:
        # Not chained: the original may quote the URL, secrets and all.
        reason = str(exc).replace(source, shown)
        raise InvalidStorageURLError(shown, f"fsspec cannot open it ({reason})") from None
    return store, shown, True


def _open_directory(path: Path) -> tuple[Store, str, bool]:
    """A read-only ``LocalStore`` over an existing directory."""
    from zarr.storage import LocalStore

    path = path.expanduser()
    if not path.exists():
        raise ImportSourceNotFoundError(str(path), "no such file or directory")
    if not path.is_dir():
        raise InvalidImportSourceError(str(path), "not a directory (a Zarr v3 store is one)")
    return LocalStore(path, read_only=True), str(path), True


@dataclass
class SourceReader:
    """An open source: its keys and bytes, read with failures reported as ick errors."""

    store: Store
    name: str
    """The source as messages show it (never with credentials)."""

    def _source_error(self, what: str, exc: Exception) -> StorageError:
        return StorageError(f"cannot {what} from {self.name}: {type(exc).__name__}: {exc}")

    async def _keys(self, prefix: str) -> AsyncGenerator[str, None]:
        """Source keys below ``prefix``; listing failures become ``StorageError``."""
        if not self.store.supports_listing:
            raise ImportSourceError(self.name, "the store cannot list its keys")
        it = self.store.list_prefix(prefix)
        try:
            while True:
                try:
                    key = await anext(it)
                except StopAsyncIteration:
                    return
                except IcechunkError:
                    raise
                except Exception as exc:
                    raise self._source_error(f"list keys below {prefix!r}", exc) from exc
                yield key
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _read(self, key: str) -> bytes | None:
        """Bytes of a source key, None if it vanished; read failures become ``StorageError``."""
        try:
            buf = await self.store.get(key, prototype=default_buffer_prototype())
        except IcechunkError:
            raise
        except Exception as exc:
            raise self._source_error(f"read {key!r}", exc) from exc
        return None if buf is None else buf.to_bytes()

    async def _check_root(self) -> None:
        """Refuse a source without a root ``zarr.json`` before listing it (it may be a disk)."""
        try:
            found = await self.store.exists(META_KEY)
        except IcechunkError:
            raise
        except Exception as exc:
            raise self._source_error(f"read {META_KEY!r}", exc) from exc
        if found:
            return
        roots, looks_v2 = await self._nearby_roots()
        reason = "no zarr.json at its top, so it is not the root of a Zarr v3 store"
        if looks_v2:
            reason += "; it looks like Zarr v2: convert it to v3 first"
        elif roots:
            shown = [source_file(self.name, r.rstrip("/")) for r in roots[:_ROOT_HINTS]]
            more = ", ..." if len(roots) > _ROOT_HINTS else ""
            reason += f"; Zarr v3 stores below it: {', '.join(shown)}{more}"
        raise InvalidImportSourceError(self.name, reason, key=META_KEY)

    async def _nearby_roots(self) -> tuple[list[str], bool]:
        """Prefixes of the nearest store roots below the source, and whether it is Zarr v2.

        Only for the hint of an error, so bounded: a breadth-first walk of at most
        ``_ROOT_SEARCH_DIRS`` directories and ``_ROOT_SEARCH_NAMES`` names in each, skipping
        what cannot be listed.
        """
        roots: list[str] = []
        looks_v2 = False
        queue, visited = collections.deque([""]), 0
        while queue and visited < _ROOT_SEARCH_DIRS and len(roots) <= _ROOT_HINTS:
            prefix = queue.popleft()
            visited += 1
            names: list[str] = []
            try:
                async for name in self.store.list_dir(prefix):
                    names.append(name)
                    if len(names) >= _ROOT_SEARCH_NAMES:
                        break
            except Exception:  # the error being reported is the missing zarr.json
                continue
            if prefix and META_KEY in names:
                roots.append(prefix)
                continue
            if not prefix:
                looks_v2 = any(n in V2_NODE_KEYS for n in names)
            queue.extend(f"{prefix}{n}/" for n in sorted(names) if n not in V2_KEYS)
        return roots, looks_v2
