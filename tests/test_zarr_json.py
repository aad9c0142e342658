"""The one reader of ``zarr.json``: a typed view, one message for what is wrong, and the data
type names ``ick ls`` shows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from icechunk_lib.zarr_keys import data_type_name, read_zarr_json

ARRAY = json.dumps(
    {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "int32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
    }
).encode()


def test_one_reader_names_what_is_wrong_with_a_zarr_json() -> None:
    good = read_zarr_json(ARRAY)
    assert not good.problem and good.node_type == "array"
    assert good.chunk_shape == (2,) and good.data_type == "int32" and good.attributes == {}
    assert good.data_type_name == "int32"
    assert "shape" not in good.without("shape", "attributes")
    bad = read_zarr_json(b"{not json")
    assert bad.problem.startswith("not JSON (") and bad.doc == {}
    assert bad.error_text("/a/b") == (
        f"the zarr.json of /a/b is not valid Zarr v3 metadata: {bad.problem}"
    )
    listed = read_zarr_json(b"[1, 2]")
    assert listed.problem == "expected a JSON object, got list"
    odd = read_zarr_json(b'{"attributes": [1], "chunk_grid": "regular"}')
    assert odd.attributes == {} and odd.chunk_shape is None and odd.data_type_name is None


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("float32", "float32"),
        (
            {"name": "structured", "configuration": {"fields": [["a", "int32"], ["b", "float64"]]}},
            "struct{a:int32,b:float64}",
        ),
        (
            {
                "name": "structured",
                "configuration": {
                    "fields": [
                        ["p", {"name": "structured", "configuration": {"fields": [["x", "int8"]]}}]
                    ]
                },
            },
            "struct{p:struct{x:int8}}",
        ),
        ({"name": "null_terminated_bytes", "configuration": {"length_bytes": 5}}, "bytes[5]"),
        ({"name": "raw_bytes", "configuration": {"length_bytes": 3}}, "raw[3]"),
        ({"name": "fixed_length_utf32", "configuration": {"length_bytes": 28}}, "str[7]"),
        (
            {"name": "numpy.datetime64", "configuration": {"unit": "ns", "scale_factor": 1}},
            "datetime64[ns]",
        ),
        (
            {"name": "numpy.timedelta64", "configuration": {"unit": "s", "scale_factor": 10}},
            "timedelta64[10s]",
        ),
        ({"name": "future", "configuration": {"k": 1}}, "future[k=1]"),
        ({"no": "name"}, '{"no": "name"}'),
    ],
)
def test_data_type_names(spec: Any, shown: str) -> None:
    assert data_type_name(spec) == shown
