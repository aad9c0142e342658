"""How ``tests/data/format2-rich`` was written; kept as its record, never run by the tests.

Usage::

    python tests/make_golden_rich.py OUT      # OUT must not exist yet

The fixture must never be rewritten for an existing format version (test_golden_rich.py reads
the committed bytes): run this only to make the fixture of a new format version, under a new
name, and pin its ids and values in a new test. Ids and times are random and current, so a
second run writes other bytes; the test pins what the committed run wrote.

What it writes (four commits on ``main`` and ``dev``, tags, a tag tombstone, a reflog page):

- config: ``manifest.max_refs_per_manifest = 500``, everything else default.
- ``first`` (main, tag ``v1``): root attrs; group ``/g`` with attrs; ``/g/native`` float64
  (300,) in three uncompressed 800-byte native chunks, with attrs; ``/small`` int8 [1, 2, 3],
  one inline chunk.
- ``grid`` (main, tag ``v2``): ``/grid`` int16 (40, 30), chunks (1, 1), values
  ``arange(1200) + 1``: 1200 inline chunks over three manifests (500, 500, 200 refs, so the
  manifests and the transaction log are big enough to be zstd-compressed); ``/g/native``
  chunk 1 rewritten (x 10); ``/doomed`` int8 [7, 7].
- ``dev`` branches from ``grid``; ``dev work`` (dev): ``/small`` moved to ``/g/tiny``;
  ``grid[0, :] = 0`` (30 chunks of the fill value, so deleted); ``/g/native`` chunk 2
  rewritten (x -1) and its attrs changed; the extra key ``notes.txt``.
- tag ``gone`` on ``dev work``, then deleted: its tombstone stays.
- ``main again`` (main): ``/doomed`` deleted; root attrs changed.
- ``dev`` reset to ``grid`` and back enough times to archive its reflog in a page.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.refs import REFLOGS


def main(out: Path) -> None:
    config = ic.RepositoryConfig()
    config.manifest.max_refs_per_manifest = 500
    repo = ic.Repository.create(ic.local_filesystem_storage(str(out)), config)

    session = repo.writable_session("main")
    root = zarr.group(session.store, attributes={"title": "rich golden", "version": 1})
    g = root.create_group("g", attributes={"kind": "group attrs"})
    native = g.create_array(
        "native", shape=(300,), chunks=(100,), dtype="float64", compressors=None
    )
    native[:] = np.arange(300, dtype="float64") / 4
    native.attrs["units"] = "m"
    small = root.create_array("small", shape=(3,), chunks=(3,), dtype="int8")
    small[:] = [1, 2, 3]
    first = session.commit("first", metadata={"step": 1})
    repo.create_tag("v1", first)

    session = repo.writable_session("main")
    root = zarr.open_group(session.store)
    grid = root.create_array("grid", shape=(40, 30), chunks=(1, 1), dtype="int16")
    grid[:] = np.arange(1200, dtype="int16").reshape(40, 30) + 1
    native = root["g/native"]
    native[100:200] = np.arange(100, 200, dtype="float64") / 4 * 10
    root.create_array("doomed", shape=(2,), chunks=(2,), dtype="int8")[:] = [7, 7]
    second = session.commit("grid", metadata={"step": 2})
    repo.create_tag("v2", second)
    repo.create_branch("dev", second)

    session = repo.writable_session("dev")
    session.move("/small", "/g/tiny")
    root = zarr.open_group(session.store)
    root["grid"][0, :] = 0
    native = root["g/native"]
    native[200:300] = -np.arange(200, 300, dtype="float64") / 4
    native.attrs["units"] = "cm"
    notes = default_buffer_prototype().buffer.from_bytes(b"written by make_golden_rich.py\n")
    sync(session.store.set("notes.txt", notes))
    third = session.commit("dev work", metadata={"step": 3, "branch": "dev"})
    repo.create_tag("gone", third)
    repo.delete_tag("gone")

    session = repo.writable_session("main")
    root = zarr.open_group(session.store)
    del root["doomed"]
    root.attrs["version"] = 2
    session.commit("main again", metadata={"step": 4})

    storage = repo.storage
    while not sync(_has_reflog_page(storage)):
        repo.reset_branch("dev", second)
        repo.reset_branch("dev", third)
    print("main:", [(s.id, s.message) for s in repo.ancestry(branch="main")])
    print("dev:", [(s.id, s.message) for s in repo.ancestry(branch="dev")])


async def _has_reflog_page(storage: ic.Storage) -> bool:
    async for _ in storage.list(REFLOGS):
        return True
    return False


if __name__ == "__main__":
    if len(sys.argv) != 2 or Path(sys.argv[1]).exists():
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
