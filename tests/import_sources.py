"""Fuzzed Zarr v3 import sources: a small valid store whose ``zarr.json`` files hypothesis damages.

Shared by the importer's library tests and the ``ick commit --from`` tests. The fuzzed array
holds no chunks (it reads as its fill value), so any metadata zarr accepts also reads back
without chunk bytes that no longer match it; the other array holds real chunks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import strategies as st
from zarr.storage import LocalStore

__all__ = ["TARGETS", "apply", "assert_reads_back", "mutations", "write_base"]

TARGETS = ["m/zarr.json", "zarr.json", "a/zarr.json"]
"""The ``zarr.json`` files a mutation may hit: the chunk-less array, the root, the data array."""

FIELDS = [
    "zarr_format",
    "node_type",
    "shape",
    "data_type",
    "chunk_grid",
    "chunk_grid.name",
    "chunk_grid.configuration",
    "chunk_grid.configuration.chunk_shape",
    "chunk_key_encoding",
    "chunk_key_encoding.configuration.separator",
    "fill_value",
    "codecs",
    "attributes",
    "dimension_names",
    "storage_transformers",
]
BIG = [0, 1, -1, 2**31, 2**53, 2**62, 2**63 - 1, 2**63, 2**64, 10**30]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 7),
    st.sampled_from(BIG),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["int8", "float64", "bool", "uint64", "complex64", "NaN", "/", ".", "c"]),
)
dims = st.lists(st.one_of(st.integers(-2, 7), st.sampled_from(BIG), st.booleans()), max_size=3)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
size = st.one_of(st.integers(-1, 7), st.sampled_from(BIG))
# A new shape and chunk shape of the same rank: zero, negative and huge dimensions.
regrid = st.integers(0, 3).flatmap(
    lambda n: st.tuples(
        st.just("grid"),
        st.lists(size, min_size=n, max_size=n),
        st.lists(size, min_size=n, max_size=n),
    )
)
mutation = st.one_of(
    regrid,
    st.tuples(st.just("set"), st.sampled_from(FIELDS), st.one_of(dims, json_values)),
    st.tuples(st.just("delete"), st.sampled_from(FIELDS), st.none()),
    st.tuples(st.just("truncate"), st.integers(0, 300), st.none()),
    st.tuples(st.just("bytes"), st.none(), st.binary(max_size=24)),
)
mutations = st.lists(mutation, min_size=1, max_size=3)


def write_base(path: Path) -> None:
    """The valid source: a root group, array ``a`` with chunks, chunk-less array ``m``."""
    root = zarr.open_group(LocalStore(path), mode="w", attributes={"title": "base"})
    a = root.create_array("a", shape=(6, 4), chunks=(4, 4), dtype="i2", fill_value=0)
    a[:] = np.arange(1, 25, dtype="i2").reshape(6, 4)
    root.create_array("m", shape=(5, 3), chunks=(2, 2), dtype="f4", fill_value=1.5)


def apply(path: Path, target: str, changes: list[tuple[str, Any, Any]]) -> None:
    """Damage ``path/target`` with each change in turn."""
    file = path / target
    for kind, where, value in changes:
        data = file.read_bytes()
        if kind == "truncate":
            file.write_bytes(data[:where])
            continue
        if kind == "bytes":
            file.write_bytes(value)
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            continue  # already damaged beyond editing
        if kind == "grid":
            if isinstance(doc, dict) and isinstance(doc.get("chunk_grid"), dict):
                doc["shape"] = where
                doc["chunk_grid"]["configuration"] = {"chunk_shape": value}
                file.write_text(json.dumps(doc))
            continue
        node = doc
        *parents, last = where.split(".")
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if kind == "delete":
            node.pop(last, None)
        else:
            node[last] = value
        file.write_text(json.dumps(doc))


def assert_reads_back(source: Path, store: Any, dest: str = "") -> None:
    """Every source ``zarr.json`` is in ``store`` below ``dest`` with the same bytes, and each
    array opens in both and reads the same values at its first corner.

    zarr must open the source's arrays: an import that succeeded from metadata zarr refuses
    is exactly the failure this looks for.
    """
    src = LocalStore(source, read_only=True)
    for meta in sorted(source.rglob("zarr.json")):
        key = meta.relative_to(source).as_posix()
        got = store.get_sync(dest + key)
        assert got is not None and got.to_bytes() == meta.read_bytes(), key
        if json.loads(meta.read_bytes())["node_type"] != "array":
            continue
        path = key[: -len("zarr.json")].rstrip("/")
        theirs = zarr.open_array(src, path=path, mode="r")
        mine = zarr.open_array(store, path=dest + path, mode="r")
        corner = tuple(slice(0, min(n, 3)) for n in theirs.shape)
        try:
            expected = theirs[corner]
        except Exception as exc:
            # Chunks written under other metadata may not decode under this one; that is the
            # source's data, not its metadata, and the copy must fail the same way.
            chunks = [
                p for p in (source / path).rglob("*") if p.is_file() and p.name != "zarr.json"
            ]
            assert chunks, f"zarr cannot read {path} of the source: {exc!r}"
            with pytest.raises(type(exc)):
                mine[corner]
            continue
        np.testing.assert_array_equal(mine[corner], expected)
