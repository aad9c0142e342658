"""Listing groups and arrays, with storage statistics."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import icechunk_lib as ic


def test_list_nodes(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    a = root.create_array(
        "g/a", shape=(10, 10), chunks=(5, 5), dtype="f8", compressors=None, attributes={"u": 1}
    )
    a[:5, :] = np.ones((5, 10))
    root.create_group("h")
    zarr.create_array(session.store, name="x/y/z", shape=(3,), dtype="i2")

    top = session.list_nodes("/")
    assert [(n.path, n.kind) for n in top] == [("/g", "group"), ("/h", "group"), ("/x", "group")]
    deep = {n.path: n for n in session.list_nodes("/", recursive=True, stats=True)}
    assert set(deep) == {"/g", "/g/a", "/h", "/x", "/x/y", "/x/y/z"}
    arr = deep["/g/a"]
    assert (arr.kind, arr.shape, arr.dtype, arr.chunk_shape) == (
        "array",
        (10, 10),
        "float64",
        (5, 5),
    )
    assert arr.attributes == {"u": 1}
    assert (arr.chunks_written, arr.bytes_written) == (2, 2 * 200)
    assert deep["/x/y/z"].chunks_written == 0
    session.commit("tree")

    ro = repo.readonly_session("main")
    listed = ro.list_nodes("/g", stats=True)
    assert [(n.path, n.chunks_written, n.bytes_written) for n in listed] == [("/g/a", 2, 400)]
    assert ro.list_nodes("/h") == []
    with pytest.raises(ic.NodeNotFoundError):
        ro.list_nodes("/missing")
