"""Mapping between Zarr store keys and the engine's nodes and chunk coordinates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["META_KEY", "ArrayInfo", "key_to_path", "parse_array_meta", "path_to_prefix"]

META_KEY = "zarr.json"


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """What the engine needs from an array's ``zarr.json``: rank and chunk key encoding."""

    ndim: int
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    prefix: str
    """``"c"`` for the default encoding, ``""`` for ``v2``."""
    separator: str

    def parse_chunk_key(self, suffix: str) -> tuple[int, ...] | None:
        """Coordinates of the chunk named ``suffix`` (the key below the array), or None."""
        sep = self.separator
        if self.prefix:
            if suffix == self.prefix:
                return () if self.ndim == 0 else None
            if not suffix.startswith(self.prefix + sep):
                return None
            suffix = suffix[len(self.prefix) + len(sep) :]
        elif self.ndim == 0:
            return () if suffix == "0" else None
        parts = suffix.split(sep)
        if len(parts) != self.ndim:
            return None
        try:
            coords = tuple(int(p) for p in parts)
        except ValueError:
            return None
        # int() accepts "+1", " 1" and "1_0"; a chunk key is plain decimal digits only.
        for p in parts:
            if not p.isdigit() or not p.isascii():
                return None
        return coords

    def chunk_key(self, coords: tuple[int, ...]) -> str:
        """The key suffix of the chunk at ``coords``."""
        if self.prefix:
            return self.separator.join((self.prefix, *map(str, coords)))
        return self.separator.join(map(str, coords)) or "0"


def parse_array_meta(meta: bytes) -> ArrayInfo | None:
    """Parse a ``zarr.json`` document; None unless it describes a Zarr v3 array we can index."""
    try:
        doc: Any = json.loads(meta)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("node_type") != "array":
        return None
    shape = doc.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        return None
    grid = doc.get("chunk_grid") or {}
    chunk_shape: Any = (grid.get("configuration") or {}).get("chunk_shape", shape)
    if not isinstance(chunk_shape, list):
        chunk_shape = shape
    enc = doc.get("chunk_key_encoding") or {"name": "default"}
    name = enc.get("name", "default") if isinstance(enc, dict) else "default"
    conf = (enc.get("configuration") or {}) if isinstance(enc, dict) else {}
    if name == "v2":
        prefix, separator = "", str(conf.get("separator", "."))
    else:
        prefix, separator = "c", str(conf.get("separator", "/"))
    return ArrayInfo(
        ndim=len(shape),
        shape=tuple(shape),
        chunk_shape=tuple(int(c) for c in chunk_shape),
        prefix=prefix,
        separator=separator,
    )


def key_to_path(key_prefix: str) -> str:
    """Node path for the key prefix of a node: ``""`` -> ``/``, ``a/b`` -> ``/a/b``."""
    return "/" + key_prefix if key_prefix else "/"


def path_to_prefix(path: str) -> str:
    """Key prefix of a node path: ``/`` -> ``""``, ``/a/b`` -> ``a/b/``."""
    return "" if path == "/" else path[1:] + "/"
