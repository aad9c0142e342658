"""Hostile kerchunk reference sets: templates and generators sized to exhaust memory are
refused before anything is built, naming the key."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import icechunk_lib as ic
from icechunk_lib.errors import InvalidReferencesError

ZARRAY = json.dumps(
    {
        "zarr_format": 2,
        "shape": [8],
        "chunks": [2],
        "dtype": "|u1",
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "compressor": None,
    }
)


@pytest.fixture
def session(tmp_path: Path) -> ic.Session:
    config = ic.RepositoryConfig.default()
    prefix = f"file://{tmp_path}/files/"
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(str(tmp_path / "files")))
    )
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config)
    return repo.writable_session("main")


def test_a_template_repeating_text_past_any_url_is_refused(session: ic.Session) -> None:
    # 'a' * 4e9 would build a 4 GB string before any check looks at it.
    refs = {
        "version": 1,
        "templates": {"u": "a"},
        "refs": {"x/.zarray": ZARRAY, "x/0": ["{{u * 4000000000}}", 0, 2]},
    }
    with pytest.raises(InvalidReferencesError, match=r"x/0.*too long"):
        ic.import_kerchunk(session, refs)
    refs["refs"]["x/0"] = ["{{ 4000000000 * 'a' }}", 0, 2]  # either order
    with pytest.raises(InvalidReferencesError, match="too long"):
        ic.import_kerchunk(session, refs)
    refs["refs"]["x/0"] = ["{{ '%999999999d' % 1 }}", 0, 2]  # or formatting
    with pytest.raises(InvalidReferencesError, match="formatting"):
        ic.import_kerchunk(session, refs)


def test_a_generator_dimension_too_large_is_refused_before_it_is_listed(
    session: ic.Session,
) -> None:
    gen = {
        "key": "x/{{i}}",
        "url": "file:///nowhere",
        "offset": 0,
        "length": 1,
        "dimensions": {"i": {"stop": 10**15}},
    }
    refs = {"version": 1, "refs": {"x/.zarray": ZARRAY}, "gen": [gen]}
    with pytest.raises(InvalidReferencesError, match="too many"):
        ic.import_kerchunk(session, refs)


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"chunks": [0]}, "chunk"), ({"shape": [2**70]}, "shape"), ({"shape": [2**64]}, "shape")],
)
def test_a_zarray_zarr_cannot_open_is_refused_before_anything_is_written(
    session: ic.Session, fields: dict[str, object], field: str
) -> None:
    doc = {**json.loads(ZARRAY), **fields}
    with pytest.raises(InvalidReferencesError, match=rf"x/\.zarray.*{field}") as info:
        ic.import_kerchunk(session, {"x/.zarray": json.dumps(doc)})
    assert info.value.key == "x/.zarray"
    assert not session.has_uncommitted_changes


@pytest.mark.parametrize(
    "docs",
    [
        {".zarray": ZARRAY, ".zgroup": '{"zarr_format": 2}'},
        {".zarray": ZARRAY, "zarr.json": '{"zarr_format": 3, "node_type": "group"}'},
        {".zgroup": '{"zarr_format": 2}', "zarr.json": '{"zarr_format": 3, "node_type": "group"}'},
    ],
)
def test_a_node_described_twice_is_refused(session: ic.Session, docs: dict[str, str]) -> None:
    # Which document would win is a guess (zarr itself refuses an array that is a group).
    refs = {f"x/{leaf}": doc for leaf, doc in docs.items()}
    with pytest.raises(InvalidReferencesError, match=r"'x/.*both"):
        ic.import_kerchunk(session, refs)
    assert not session.has_uncommitted_changes


def test_a_parquet_index_claiming_a_huge_grid_loads_only_the_files_there(
    session: ic.Session, tmp_path: Path
) -> None:
    # 2**40 records of one chunk each: the loader must not look for each file in turn.
    import fastparquet
    import pandas as pd

    root = tmp_path / "refs.parq"
    (root / "x").mkdir(parents=True)
    zarray = {**json.loads(ZARRAY), "shape": [2**40], "chunks": [1]}
    index = {"metadata": {".zgroup": {"zarr_format": 2}, "x/.zarray": zarray}, "record_size": 1}
    (root / ".zmetadata").write_text(json.dumps(index))
    frame = pd.DataFrame({"path": [None], "offset": [0], "size": [0], "raw": [b"\x07"]})
    fastparquet.write(str(root / "x" / "refs.3.parq"), frame)
    done: list[ic.KerchunkImportSummary] = []
    worker = threading.Thread(
        target=lambda: done.append(ic.import_kerchunk(session, root)), daemon=True
    )
    worker.start()
    worker.join(30)
    assert done, "the import did not finish in 30 s"
    assert done[0].inline_chunks == 1
    import zarr

    assert zarr.open_array(session.store, path="x", mode="r")[3] == 7


def test_a_zero_length_reference_is_refused(session: ic.Session, tmp_path: Path) -> None:
    # No codec decodes a chunk from no bytes: imported, it would fail every read of it.
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "files" / "empty").write_bytes(b"")
    source = str(tmp_path / "files" / "f")
    for ref in ([source, 0, 0], [str(tmp_path / "files" / "empty")]):
        with pytest.raises(InvalidReferencesError, match=r"'x/0'.*length"):
            ic.import_kerchunk(session, {"x/.zarray": ZARRAY, "x/0": ref})
        assert not session.has_uncommitted_changes
