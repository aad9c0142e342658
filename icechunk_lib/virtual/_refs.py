"""Reading a kerchunk reference set into one flat ``key -> reference`` dict.

Accepted: a dict (version 0, flat; or version 1 with ``refs``, ``templates`` and ``gen``),
a path to a JSON file (``.json``, or compressed ``.json.gz``/``.json.zst``), or a parquet
reference directory. Templates and generators are expanded here, so the importer sees only
inline data (``str``, ``bytes``), references (``[url]``, ``[url, offset, length]``) and
metadata documents.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icechunk_lib.errors import ImportSourceNotFoundError, InvalidReferencesError
from icechunk_lib.storage.url import file_url_path
from icechunk_lib.virtual._parquet import load_parquet_refs
from icechunk_lib.virtual._templates import TemplateError, expand_gen, render

__all__ = ["KerchunkRefs", "RefSet", "load_refs"]

KerchunkRefs = Mapping[str, Any] | str | os.PathLike[str]
"""A reference set: a dict, or the path of a JSON file or parquet reference directory."""


@dataclass(frozen=True)
class RefSet:
    """A loaded reference set, templates expanded."""

    refs: dict[str, Any]
    name: str
    """How messages name the source: its path, or ``"kerchunk references"`` for a dict."""
    base_dir: Path
    """Where relative local paths in references are resolved: the reference file's
    directory, or the current directory for a dict."""


def load_refs(refs: KerchunkRefs) -> RefSet:
    """The flat reference dict of ``refs``.

    Raises:
        ImportSourceNotFoundError: no file or directory at the path given.
        InvalidReferencesError: not a kerchunk reference set (the message says why).
        ImportSourceError: parquet references, with neither fastparquet nor pyarrow installed.
    """
    if isinstance(refs, Mapping):
        name = "kerchunk references"
        return RefSet(_flatten(refs, name), name, Path.cwd())
    if not isinstance(refs, str | os.PathLike):
        raise InvalidReferencesError(
            repr(refs),
            f"references are a dict or a path to a .json file or parquet directory, "
            f"not {type(refs).__name__}",
        )
    text = os.fspath(refs)
    if "://" in text and not text.startswith("file://"):
        raise InvalidReferencesError(
            text, "reference files are read from local disk; download it first"
        )
    if text.startswith("file://"):
        text = file_url_path(text)
    path = Path(text).expanduser().absolute()
    name = str(path)
    if path.is_dir():
        return RefSet(load_parquet_refs(path, name), name, path.parent)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImportSourceNotFoundError(name, "no such file or directory") from None
    except OSError as exc:
        raise InvalidReferencesError(name, f"cannot read it: {exc.strerror or exc}") from None
    try:
        doc = json.loads(_decompress(raw, path.name))
    except (ValueError, OSError) as exc:
        raise InvalidReferencesError(name, f"it is not a JSON reference file ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidReferencesError(name, "a reference file holds a JSON object")
    return RefSet(_flatten(doc, name), name, path.parent)


def _decompress(raw: bytes, filename: str) -> bytes:
    """``raw``, gunzipped or unzstded by its name or its magic bytes."""
    if filename.endswith(".gz") or raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if filename.endswith(".zst") or raw[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return raw


def _flatten(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The flat references of a version 0 or version 1 reference set."""
    version = doc.get("version")
    if version is None or not isinstance(doc.get("refs"), dict):
        if version not in (None, 0):
            raise InvalidReferencesError(
                name, f"reference set version {version!r} is not one ick reads (0 or 1)"
            )
        return {k: v for k, v in doc.items() if k != "version"}
    if version != 1:
        raise InvalidReferencesError(
            name, f"reference set version {version!r} is not one ick reads (0 or 1)"
        )
    templates = doc.get("templates") or {}
    if not isinstance(templates, dict) or not all(isinstance(v, str) for v in templates.values()):
        raise InvalidReferencesError(name, "'templates' maps names to text", key="templates")
    for tname, value in templates.items():
        if "{{" in value:
            raise InvalidReferencesError(
                name,
                f"template {tname!r} is itself a template ({value!r}), which ick does not "
                "render; expand the references with fsspec or kerchunk first",
                key="templates",
            )
    out: dict[str, Any] = {}
    for key, value in doc["refs"].items():
        if templates and isinstance(value, list) and value and isinstance(value[0], str):
            try:
                value = [render(value[0], templates), *value[1:]]
            except TemplateError as exc:
                raise InvalidReferencesError(name, f"key {key!r}: {exc}", key=key) from None
        out[key] = value
    try:
        for key, ref in expand_gen(doc.get("gen") or [], templates):
            out[key] = ref
    except TemplateError as exc:
        raise InvalidReferencesError(name, str(exc), key="gen") from None
    return out
