"""Checks of an import source's ``zarr.json`` documents, before anything is written.

The importer copies metadata byte for byte, so a document zarr cannot open, or one whose chunk
grid the engine cannot index, would be committed and fail only when read. Each document is
parsed the way zarr parses it on open, after our own checks of the fields the engine relies on
(shape and chunk grid), and a bad one raises ``InvalidImportSourceError`` naming the file and
the field.
"""

from __future__ import annotations

import json
import math
from typing import Any

from zarr.core.array import parse_array_metadata
from zarr.core.chunk_key_encodings import parse_chunk_key_encoding
from zarr.core.dtype import get_data_type_from_json
from zarr.core.group import GroupMetadata
from zarr.core.metadata.v3 import parse_codecs

from icechunk_lib.errors import InvalidImportSourceError
from icechunk_lib.zarr_keys import read_zarr_json

__all__ = ["MAX_CHUNKS", "MAX_DIMENSION", "check_source_meta", "source_file"]

MAX_DIMENSION = 2**63 - 1
"""Largest array or chunk dimension: numpy and zarr index with int64."""
MAX_CHUNKS = 2**63 - 1
"""Most chunks an array's grid may hold: the manifest folds coordinates into one int64 key."""
_GRID_SHAPE = "chunk_grid.configuration.chunk_shape"


def source_file(source: str, key: str) -> str:
    """How messages name the source file ``key``: ``/data/src/grp/zarr.json``."""
    return f"{source.rstrip('/')}/{key}"


class _Checker:
    """Raises ``InvalidImportSourceError`` for one document, naming its file and the field."""

    def __init__(self, source: str, key: str) -> None:
        self.source = source
        self.key = key

    def bad(self, field: str, reason: str) -> InvalidImportSourceError:
        where = source_file(self.source, self.key)
        what = f"{field}: {reason}" if field else reason
        return InvalidImportSourceError(
            self.source, f"{where} is not valid Zarr v3 metadata: {what}", key=self.key, field=field
        )

    def ints(self, field: str, value: Any, low: int) -> tuple[int, ...]:
        """``value`` as a tuple of integers in ``[low, MAX_DIMENSION]``."""
        # bool is an int in Python but not in JSON; zarr itself would accept [true].
        if (
            not isinstance(value, list)
            or not all(type(v) is int for v in value)
            or not all(low <= v <= MAX_DIMENSION for v in value)
        ):
            raise self.bad(
                field, f"expected a list of integers from {low} to 2**63 - 1, got {_show(value)}"
            )
        return tuple(value)

    def zarr_step(self, field: str, step: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one of zarr's parsers; any failure is the source's, so name the field."""
        try:
            return step(*args, **kwargs)
        # zarr's parsers raise ValueError, TypeError, KeyError and its own errors for bad
        # input; all of them mean the same thing here.
        except Exception as exc:
            raise self.bad(field, f"{type(exc).__name__}: {exc}") from exc


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if _jsonable(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def check_source_meta(source: str, key: str, data: bytes) -> bytes:
    """``data`` if it is a ``zarr.json`` zarr opens and the engine can index, else raise.

    Raises:
        InvalidImportSourceError: naming ``key`` in ``source`` and the field at fault.
    """
    check = _Checker(source, key)
    read = read_zarr_json(data)
    if read.problem:
        raise check.bad("", read.problem)
    doc = read.doc
    fmt = doc.get("zarr_format")
    if type(fmt) is not int or fmt != 3:
        raise check.bad("zarr_format", f"expected 3, got {_show(fmt)}")
    kind = doc.get("node_type")
    if kind not in ("group", "array"):
        raise check.bad("node_type", f'expected "group" or "array", got {_show(kind)}')
    if "attributes" in doc and not isinstance(doc["attributes"], dict):
        raise check.bad("attributes", f"expected an object, got {_show(doc['attributes'])}")
    if kind == "group":
        check.zarr_step("", GroupMetadata.from_dict, doc)
    else:
        _check_array(check, doc)
    return data


def _check_array(check: _Checker, doc: dict[str, Any]) -> None:
    for field in ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value"):
        if field not in doc:
            raise check.bad(field, "missing")
    shape = check.ints("shape", doc["shape"], 0)
    grid = doc["chunk_grid"]
    if not isinstance(grid, dict) or grid.get("name") != "regular":
        raise check.bad("chunk_grid", f'only the "regular" grid is supported, got {_show(grid)}')
    conf = grid.get("configuration")
    if not isinstance(conf, dict) or "chunk_shape" not in conf:
        raise check.bad(_GRID_SHAPE, "missing")
    chunks = check.ints(_GRID_SHAPE, conf["chunk_shape"], 1)
    if len(chunks) != len(shape):
        raise check.bad(_GRID_SHAPE, f"has {len(chunks)} dimension(s) but shape has {len(shape)}")
    count = math.prod(-(-s // c) for s, c in zip(shape, chunks, strict=True))
    if count > MAX_CHUNKS:
        raise check.bad("shape", f"the chunk grid holds {count} chunks, more than 2**63 - 1")
    check.zarr_step("chunk_key_encoding", parse_chunk_key_encoding, doc["chunk_key_encoding"])
    dtype = check.zarr_step("data_type", get_data_type_from_json, doc["data_type"], zarr_format=3)
    check.zarr_step("fill_value", dtype.from_json_scalar, doc["fill_value"], zarr_format=3)
    if "codecs" not in doc:
        raise check.bad("codecs", "missing")
    check.zarr_step("codecs", parse_codecs, doc["codecs"])
    # Everything together, as zarr does on open: codecs against the dtype and grid, extra
    # fields, dimension names, storage transformers.
    check.zarr_step("", parse_array_metadata, doc)
