"""Must hold: an array of 1,000,000 chunks with splitting configured commits, reads back,
a read of one region fetches only the manifests covering it, and garbage collection after a
change deletes exactly what the change replaced.

Chunks are written through the session's workspace (the path the store's ``set`` takes
after parsing the key): zarr's own cost per chunk (codecs, buffers) is some 100 us, which
would make a million chunks take minutes and measure zarr, not the manifests.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest
import zarr
from faulty_storage import FaultyStorage
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.format.manifest import INLINE
from icechunk_lib.format.snapshot import RegionRef
from icechunk_lib.objects import MANIFESTS
from icechunk_lib.session import workspace_of

S = ic.ManifestSplitCondition
D = ic.ManifestSplitDimCondition


def _write(storage: ic.Storage, rows: int, cols: int, split: int, chunk: int) -> np.ndarray:
    """Commit a ``rows x cols`` grid of chunks of ``chunk`` uint8 elements; its values."""
    splitting = ic.ManifestSplittingConfig.from_dict({S.name_matches("^big$"): {D.Any(): split}})
    config = ic.RepositoryConfig(manifest=ic.ManifestConfig(splitting=splitting))
    repo = ic.Repository.create(storage, config)
    session = repo.writable_session("main")
    zarr.group(session.store).create_array(
        "big",
        shape=(rows, cols * chunk),
        chunks=(1, chunk),
        dtype="u1",
        fill_value=0,
        compressors=None,
    )
    values = (np.arange(rows * cols * chunk, dtype=np.int64) % 251 + 1).astype("u1")
    values = values.reshape(rows, cols * chunk)
    ws = workspace_of(session)

    async def write() -> None:
        node = (await ws.nodes())["/big"]
        for i in range(rows):
            row = values[i].tobytes()
            for j in range(cols):
                await ws.set_chunk(node, (i, j), row[j * chunk : (j + 1) * chunk])

    sync(write())
    session.commit("a big array")
    return values


def _check(storage: ic.Storage, values: np.ndarray, split: int, chunk: int) -> None:
    counting = FaultyStorage(storage)
    repo = ic.Repository.open(counting)
    session = repo.readonly_session("main")
    node = sync(workspace_of(session).nodes())["/big"]
    rows, cols = values.shape[0], values.shape[1] // chunk
    regions = -(-rows // split) * -(-cols // split)
    assert len(node.manifests) == regions and all(type(p) is RegionRef for p in node.manifests)
    arr = zarr.open_array(session.store, path="big", mode="r")
    for r0, c0 in [(0, 0), (rows - 7, cols - 9), (split + 3, 2 * split - 4)]:
        counting.reset()
        region = (slice(r0, r0 + 4), slice(c0 * chunk, (c0 + 3) * chunk))
        np.testing.assert_array_equal(arr[region], values[region])
        wanted = {
            MANIFESTS + p.manifest_id
            for p in node.manifests
            if isinstance(p, RegionRef)
            and p.lower[0] <= r0 + 3
            and p.upper[0] >= r0
            and p.lower[1] <= c0 + 2
            and p.upper[1] >= c0
        }
        read = {c.key for c in counting.calls if c.key.startswith(MANIFESTS)}
        assert read == wanted and 1 <= len(read) <= 4
    # The whole array, from every piece: inline bytes gathered with numpy, native chunks read.
    got = np.zeros_like(values)
    seen = 0
    ws = workspace_of(session)
    for piece in node.manifests:
        table = sync(ws.objects.manifest(piece.manifest_id)).tables[node.id]
        coords = table.coords()
        blob = np.frombuffer(table.inline_data, "u1")
        inline = table.kinds == INLINE
        starts = table.offsets[inline].astype(np.int64)
        cells = got.reshape(rows, cols, chunk)
        cells[coords[inline, 0], coords[inline, 1]] = blob[starts[:, None] + np.arange(chunk)]
        for row in np.flatnonzero(~inline).tolist():
            i, j = coords[row].tolist()
            cells[i, j] = np.frombuffer(sync(ws.read_ref(table.ref(row))), "u1")
        seen += len(table)
    assert seen == rows * cols
    np.testing.assert_array_equal(got, values)


def _rewrite_and_collect(
    storage: ic.Storage, values: np.ndarray, chunk: int, rows: range, cols: range
) -> ic.GCSummary:
    """Rewrite the chunks ``rows x cols`` (inside one region), commit, expire the history
    before that commit, then gc with a cut-off of now; ``values`` is updated to match."""
    repo = ic.Repository.open(storage)
    session = repo.writable_session("main")
    ws = workspace_of(session)
    values[rows.start : rows.stop, cols.start * chunk : cols.stop * chunk] ^= 0xFF

    async def write() -> None:
        node = (await ws.nodes())["/big"]
        for i in rows:
            row = values[i].tobytes()
            for j in cols:
                await ws.set_chunk(node, (i, j), row[j * chunk : (j + 1) * chunk])

    sync(write())
    session.commit("a region rewritten")
    assert len(repo.expire_snapshots(dt.datetime.now(dt.UTC))) == 1  # the first commit
    summary = repo.garbage_collect(dt.datetime.now(dt.UTC))
    again = repo.garbage_collect(dt.datetime.now(dt.UTC))
    assert (again.manifests_deleted, again.chunks_deleted, again.snapshots_deleted) == (0, 0, 0)
    return summary


@pytest.mark.parametrize("backend", ["memory", "local"])
def test_a_million_inline_chunks_split_by_region(storage_factory, backend: str) -> None:  # type: ignore[no-untyped-def]
    storage = storage_factory(backend)
    start = time.perf_counter()
    values = _write(storage, 1000, 1000, split=100, chunk=1)
    written = time.perf_counter()
    _check(storage, values, split=100, chunk=1)
    done = time.perf_counter()
    print(
        f"\n1,000,000 chunks ({backend}): write+commit {written - start:.1f} s, "
        f"reads {done - written:.1f} s"
    )
    # One region's piece is replaced: gc deletes that manifest alone (the chunks are inline),
    # and every region still reads back.
    summary = _rewrite_and_collect(storage, values, 1, range(210, 215), range(330, 340))
    assert (summary.manifests_deleted, summary.chunks_deleted) == (1, 0)
    assert summary.snapshots_deleted == 1
    _check(storage, values, split=100, chunk=1)


def test_native_chunks_split_by_region(storage_factory) -> None:  # type: ignore[no-untyped-def]
    # Chunks over the inline threshold: one object each under chunks/.
    storage = storage_factory("local")
    values = _write(storage, 60, 50, split=16, chunk=600)
    _check(storage, values, split=16, chunk=600)
    # 4 x 5 chunks of one region rewritten: their old objects and the region's old manifest go.
    summary = _rewrite_and_collect(storage, values, 600, range(17, 21), range(33, 38))
    assert (summary.snapshots_deleted, summary.manifests_deleted) == (1, 1)
    assert summary.chunks_deleted == 20
    assert summary.bytes_deleted >= 20 * 600
    _check(storage, values, split=16, chunk=600)
    assert ic.Repository.open(storage).verify(data=True).ok
