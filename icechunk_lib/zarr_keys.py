"""Mapping between Zarr store keys and the engine's nodes and chunk coordinates.

Also the one reader of ``zarr.json`` bytes (``read_zarr_json``): every module that needs a
field of a node's metadata reads it through the typed view it returns.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_GRID_CHUNKS",
    "META_KEY",
    "ArrayInfo",
    "Coords",
    "ZarrJson",
    "data_type_name",
    "grid_shrinks",
    "key_to_path",
    "parse_array_meta",
    "path_to_prefix",
    "read_zarr_json",
]

META_KEY = "zarr.json"

Coords = tuple[int, ...]
"""The coordinates of a chunk in its array's chunk grid (``()`` for a 0-d array)."""


MAX_GRID_CHUNKS = 2**63 - 1
"""Most chunks an array's grid may have: manifests fold coordinates into one int64."""


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """What the engine needs from an array's ``zarr.json``: rank, grid and chunk key encoding."""

    ndim: int
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    prefix: str
    """``"c"`` for the default encoding, ``""`` for ``v2``."""
    separator: str
    grid: tuple[int, ...] | None = None
    """Chunks along each dimension; None when the grid is unusable (see ``grid_problem``)."""
    grid_problem: str = ""

    def parse_chunk_key(self, suffix: str) -> Coords | None:
        """Coordinates of the chunk of this array's grid named ``suffix`` (the key below the
        array), or None: not a chunk key, not canonical decimal, or outside the grid."""
        grid = self.grid
        if grid is None:
            return None
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
        # int() accepts "+1", " 1", "1_0" and other scripts' digits; a chunk key is plain
        # ASCII decimal without leading zeros, so each chunk has exactly one key.
        for p in parts:
            if not (p.isdigit() and p.isascii()) or (p[0] == "0" and len(p) > 1):
                return None
        coords = tuple(map(int, parts))
        for c, n in zip(coords, grid, strict=True):
            if c >= n:
                return None
        return coords

    def claims(self, suffix: str) -> bool:
        """Whether ``suffix`` is in the array's chunk key space (``c/...`` for the default
        encoding, numbers and separators for ``v2``): such a key is a chunk or nothing."""
        if self.prefix:
            return suffix == self.prefix or suffix.startswith(self.prefix + self.separator)
        return all(_NUMBER.fullmatch(p) for p in suffix.split(self.separator))

    def contains(self, coords: Coords) -> bool:
        """Whether ``coords`` is a chunk of the grid (committed chunks may predate a shrink)."""
        grid = self.grid
        if grid is None or len(coords) != len(grid):
            return False
        return all(0 <= c < n for c, n in zip(coords, grid, strict=True))

    def describe_grid(self) -> str:
        """The grid for messages: ``grid (2, 3) (shape (10, 30), chunks (5, 10))``."""
        if self.grid is None:
            return self.grid_problem
        return f"chunk grid {self.grid} (shape {self.shape}, chunks {self.chunk_shape})"

    def chunk_key(self, coords: Coords) -> str:
        """The key suffix of the chunk at ``coords``."""
        if self.prefix:
            return self.separator.join((self.prefix, *map(str, coords)))
        return self.separator.join(map(str, coords)) or "0"


_NUMBER = re.compile(r"[+-]?\d+")


def _grid(shape: tuple[int, ...], chunk_shape: Any) -> tuple[tuple[int, ...] | None, str]:
    """Chunks per dimension of a regular grid, or None and why it cannot be indexed."""
    if (
        not isinstance(chunk_shape, list)
        or len(chunk_shape) != len(shape)
        or not all(type(c) is int and c > 0 for c in chunk_shape)
    ):
        return None, f"the chunk shape {chunk_shape!r} is not {len(shape)} positive integers"
    grid = tuple(-(-s // c) for s, c in zip(shape, chunk_shape, strict=True))
    if math.prod(grid) > MAX_GRID_CHUNKS:
        return None, f"the chunk grid {grid} has more than 2**63-1 chunks, which ick cannot index"
    return grid, ""


def grid_shrinks(old: ArrayInfo | None, new: ArrayInfo | None) -> bool:
    """Whether an array's chunk grid lost chunks from ``old`` to ``new`` metadata."""
    if old is None or new is None or new.grid is None or old.ndim != new.ndim:
        return False
    if old.grid is None:
        return True
    return any(n < o for n, o in zip(new.grid, old.grid, strict=True))


@dataclass(frozen=True, slots=True)
class ZarrJson:
    """A node's ``zarr.json`` as read: its JSON object, or why it is none.

    Writes through the store keep whatever bytes zarr gave, so a document may be no JSON
    object at all; readers that must refuse it raise with ``problem``, the others read the
    fields of an empty document.
    """

    doc: dict[str, Any]
    """The document (empty when ``problem`` is set)."""
    problem: str = ""
    """Why the bytes are no JSON object (``not JSON (...)``), or ``""``."""

    @property
    def node_type(self) -> Any:
        """``"group"``, ``"array"``, or whatever else the document says (None if absent)."""
        return self.doc.get("node_type")

    @property
    def attributes(self) -> dict[str, Any]:
        """The user attributes; an empty dict when absent or not an object."""
        attributes = self.doc.get("attributes")
        return attributes if isinstance(attributes, dict) else {}

    @property
    def data_type(self) -> Any:
        """The Zarr v3 ``data_type``: a name, or a JSON object for parametrised types."""
        return self.doc.get("data_type")

    @property
    def chunk_shape(self) -> tuple[int, ...] | None:
        """The regular grid's chunk shape as written, or None if it is not a list."""
        grid = self.doc.get("chunk_grid")
        conf = (grid.get("configuration") if isinstance(grid, dict) else None) or {}
        shape = conf.get("chunk_shape") if isinstance(conf, dict) else None
        return tuple(shape) if isinstance(shape, list) else None

    @property
    def data_type_name(self) -> str | None:
        """The data type as people read it (see ``data_type_name``); None if absent."""
        spec = self.data_type
        return None if spec is None else data_type_name(spec)

    def without(self, *fields: str) -> dict[str, Any]:
        """A copy of the document without ``fields`` (to compare what is left)."""
        return {k: v for k, v in self.doc.items() if k not in fields}

    def error_text(self, node: str) -> str:
        """The message for a document that must be a JSON object and is not, naming ``node``."""
        return f"the zarr.json of {node} is not valid Zarr v3 metadata: {self.problem}"


def data_type_name(spec: Any) -> str:
    """A Zarr v3 ``data_type`` as people read it: ``int32``, ``struct{a:int32,b:float64}``,
    ``bytes[5]``, ``str[7]``, ``datetime64[ns]``; a spec it cannot read comes back as JSON."""
    try:
        return _data_type_name(spec)
    except (ValueError, TypeError, KeyError, AttributeError):
        return json.dumps(spec)


def _data_type_name(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    name = str(spec["name"])
    config = spec.get("configuration") or {}
    short = name.removeprefix("numpy.")
    if short in ("datetime64", "timedelta64"):
        scale = config.get("scale_factor", 1)
        return f"{short}[{'' if scale == 1 else scale}{config.get('unit', '')}]"
    if name == "structured":
        fields = ",".join(f"{f}:{_data_type_name(t)}" for f, t in config.get("fields", []))
        return f"struct{{{fields}}}"
    if name == "null_terminated_bytes":
        return f"bytes[{config['length_bytes']}]"
    if name == "raw_bytes":
        return f"raw[{config['length_bytes']}]"
    if name == "fixed_length_utf32":
        return f"str[{config['length_bytes'] // 4}]"
    if not config:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in sorted(config.items()))}]"


def read_zarr_json(meta: bytes) -> ZarrJson:
    """Parse ``zarr.json`` bytes; never raises (see ``ZarrJson.problem``)."""
    try:
        doc: Any = json.loads(meta)
    except (ValueError, UnicodeDecodeError) as exc:
        return ZarrJson({}, f"not JSON ({exc})")
    if not isinstance(doc, dict):
        return ZarrJson({}, f"expected a JSON object, got {type(doc).__name__}")
    return ZarrJson(doc)


@functools.lru_cache(maxsize=4096)
def parse_array_meta(meta: bytes) -> ArrayInfo | None:
    """What the engine needs from an array's ``zarr.json``; None unless it describes a Zarr v3
    array it can index.

    Cached by document: the store asks on every key it classifies and the commit for every
    array it writes, and the bytes of a node's metadata are one object for its lifetime
    (``bytes`` keep their hash, so a hit costs no hashing of the document).
    """
    doc = read_zarr_json(meta).doc
    if doc.get("node_type") != "array":
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
    grid, problem = _grid(tuple(shape), chunk_shape)
    return ArrayInfo(
        ndim=len(shape),
        shape=tuple(shape),
        chunk_shape=tuple(c if type(c) is int else 0 for c in chunk_shape),
        prefix=prefix,
        separator=separator,
        grid=grid,
        grid_problem=problem,
    )


def key_to_path(key_prefix: str) -> str:
    """Node path for the key prefix of a node: ``""`` -> ``/``, ``a/b`` -> ``/a/b``."""
    return "/" + key_prefix if key_prefix else "/"


def path_to_prefix(path: str) -> str:
    """Key prefix of a node path: ``/`` -> ``""``, ``/a/b`` -> ``a/b/``."""
    return "" if path == "/" else path[1:] + "/"
