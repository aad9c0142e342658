"""``import_kerchunk`` of hand-written reference sets: templates and generators, inline data
(read back through zarr), Zarr v2 metadata corners (Fortran order, NaN fill, big-endian,
separators), malformed sets and undeclared containers (nothing written), ``group=``
placement, re-imports, compressed JSON files and Unicode names."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr
import zstandard

import icechunk_lib as ic
from icechunk_lib.errors import (
    ImportSourceNotFoundError,
    InvalidNameError,
    InvalidReferencesError,
    ReadOnlySessionError,
    UndeclaredContainersError,
    VirtualContainerNotFoundError,
)
from icechunk_lib.format.manifest import VIRTUAL
from icechunk_lib.session import workspace_of

pytestmark = pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in:UserWarning")

DATA = "file:///data/"
BUCKET = "s3://bucket/nc/"


def zarray(shape: list[int], chunks: list[int], dtype: str = "<i4", **extra: Any) -> str:
    doc = {
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": dtype,
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "compressor": None,
        **extra,
    }
    return json.dumps(doc)


def b64(data: bytes) -> str:
    return "base64:" + base64.b64encode(data).decode()


@pytest.fixture
def repo(tmp_path: Path) -> ic.Repository:
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(DATA, ic.local_filesystem_store("/data"))
    )
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(BUCKET, ic.s3_store()))
    local = f"file://{tmp_path}/files/"
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(local, ic.local_filesystem_store(str(tmp_path / "files")))
    )
    return ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config)


@pytest.fixture
def session(repo: ic.Repository) -> ic.Session:
    return repo.writable_session("main")


def refs_of(session: ic.Session, path: str) -> dict[tuple[int, ...], Any]:
    ws = workspace_of(session)

    async def go() -> dict[tuple[int, ...], Any]:
        node = (await ws.nodes())[path]
        return {coords: ref async for coords, ref in ws.iter_chunks(node)}

    return ic._sync.run(go())


def ranges(session: ic.Session, path: str) -> dict[tuple[int, ...], tuple[str, int, int]]:
    return {
        c: (r.location, r.offset, r.length)
        for c, r in refs_of(session, path).items()
        if r.kind == VIRTUAL
    }


def read(session: ic.Session, path: str) -> Any:
    return zarr.open_array(session.store, path=path, mode="r")[...]


# --- references and templates ---------------------------------------------------------------


def test_version_0_and_1_sets_record_ranges_and_inline_data(session: ic.Session) -> None:
    values = np.array([[1, 2], [3, 4]], dtype="<i4")
    refs = {
        ".zgroup": '{"zarr_format": 2}',
        "a/.zarray": zarray([4, 2], [2, 2]),
        "a/0.0": [DATA + "one.nc", 100, 16],
        "a/1.0": b64(values.tobytes()),
    }
    summary = ic.import_kerchunk(session, refs)
    assert ranges(session, "/a") == {(0, 0): (DATA + "one.nc", 100, 16)}
    assert summary.as_dict() == {
        "arrays": 1,
        "groups": 1,
        "virtual_chunks": 1,
        "inline_chunks": 1,
        "objects": 1,
    }
    arr = zarr.open_array(session.store, path="a", mode="r")
    np.testing.assert_array_equal(arr[2:4], values)

    other = ic.Repository.create(ic.in_memory_storage(), session.config).writable_session("main")
    ic.import_kerchunk(other, {"version": 1, "refs": refs})
    assert ranges(other, "/a") == ranges(session, "/a")


def test_templates_and_generators_are_expanded(session: ic.Session) -> None:
    refs = {
        "version": 1,
        "templates": {"u": DATA + "big file.nc", "b": BUCKET},
        "refs": {
            "t/.zarray": zarray([6], [1]),
            "t/0": ["{{u}}", 0, 4],
            "t/1": ["{{ b }}part.nc", 8, 4],
        },
        "gen": [
            {
                "key": "t/{{i}}",
                "url": "{{b}}gen-{{i}}.nc",
                "offset": "{{(i - 2) * 1000 + 10}}",
                "length": "4",
                "dimensions": {"i": {"start": 2, "stop": 6}},
            }
        ],
    }
    ic.import_kerchunk(session, refs)
    assert ranges(session, "/t") == {
        (0,): (DATA + "big file.nc", 0, 4),
        (1,): (BUCKET + "part.nc", 8, 4),
        (2,): (BUCKET + "gen-2.nc", 10, 4),
        (3,): (BUCKET + "gen-3.nc", 1010, 4),
        (4,): (BUCKET + "gen-4.nc", 2010, 4),
        (5,): (BUCKET + "gen-5.nc", 3010, 4),
    }


@pytest.mark.parametrize(
    ("refs", "words"),
    [
        ({"t/0": ["{{u|upper}}", 0, 4]}, "not supported"),
        ({"t/0": ["{{nope}}", 0, 4]}, "'nope'"),
        ({"t/0": ["{{u.__class__}}", 0, 4]}, "not supported"),
    ],
    ids=["jinja-filter", "unknown-name", "attribute"],
)
def test_templates_ick_cannot_render_are_refused_naming_the_key(
    session: ic.Session, refs: dict[str, Any], words: str
) -> None:
    doc = {
        "version": 1,
        "templates": {"u": DATA + "a.nc"},
        "refs": {"t/.zarray": zarray([1], [1]), **refs},
    }
    with pytest.raises(InvalidReferencesError, match=words) as info:
        ic.import_kerchunk(session, doc)
    assert info.value.key == "t/0" and "'t/0'" in str(info.value)
    assert not session.has_uncommitted_changes


# --- Zarr v2 metadata ----------------------------------------------------------------------


def test_fortran_order_becomes_a_transpose_and_reads_back(session: ic.Session) -> None:
    full = np.arange(24, dtype="<f8").reshape(4, 6)
    refs: dict[str, Any] = {"f/.zarray": zarray([4, 6], [2, 3], "<f8", order="F")}
    for i in range(2):
        for j in range(2):
            chunk = full[i * 2 : i * 2 + 2, j * 3 : j * 3 + 3]
            refs[f"f/{i}.{j}"] = b64(chunk.tobytes(order="F"))
    ic.import_kerchunk(session, refs)
    np.testing.assert_array_equal(read(session, "f"), full)
    codecs = zarr.open_array(session.store, path="f", mode="r").metadata.to_dict()["codecs"]
    assert codecs[0] == {"name": "transpose", "configuration": {"order": (1, 0)}}


@pytest.mark.parametrize(
    ("fill", "dtype", "expected"),
    [
        ("NaN", "<f4", np.nan),
        ("Infinity", "<f8", np.inf),
        ("-Infinity", "<f8", -np.inf),
        (None, "<f8", 0.0),
        (-5, "<i2", -5),
    ],
)
def test_fill_values_carry_over(
    session: ic.Session, fill: Any, dtype: str, expected: float
) -> None:
    refs = {"v/.zarray": zarray([4], [2], dtype, fill_value=fill)}
    ic.import_kerchunk(session, refs)
    got = read(session, "v")  # no chunk: all fill
    np.testing.assert_array_equal(got, np.full(4, expected, dtype=dtype))


def test_big_endian_compressed_chunks_read_back(session: ic.Session) -> None:
    values = np.arange(-4, 4, dtype=">i4")
    shuffle, zlib = numcodecs.Shuffle(elementsize=4), numcodecs.Zlib(level=3)
    gz = numcodecs.GZip(level=5)
    refs = {
        "be/.zarray": zarray(
            [8], [4], ">i4", filters=[shuffle.get_config()], compressor=zlib.get_config()
        ),
        "be/0": b64(zlib.encode(shuffle.encode(values[:4].tobytes()))),
        "be/1": b64(zlib.encode(shuffle.encode(values[4:].tobytes()))),
        "gz/.zarray": zarray([8], [8], "<u2", compressor=gz.get_config()),
        "gz/0": b64(gz.encode(np.arange(8, dtype="<u2").tobytes())),
    }
    ic.import_kerchunk(session, refs)
    np.testing.assert_array_equal(read(session, "be"), values)
    np.testing.assert_array_equal(read(session, "gz"), np.arange(8))
    meta = zarr.open_array(session.store, path="be", mode="r").metadata.to_dict()
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "numcodecs.shuffle", "numcodecs.zlib"]
    assert meta["codecs"][0]["configuration"] == {"endian": "big"}
    gz_meta = zarr.open_array(session.store, path="gz", mode="r").metadata.to_dict()
    assert gz_meta["codecs"][1] == {"name": "gzip", "configuration": {"level": 5}}


@pytest.mark.parametrize("sep", [".", "/"])
def test_dimension_separators_keep_v2_chunk_keys(session: ic.Session, sep: str) -> None:
    values = np.arange(4, dtype="<i4").reshape(2, 2)
    refs = {
        "s/.zarray": zarray([2, 4], [2, 2], dimension_separator=sep),
        f"s/0{sep}1": b64(values.tobytes()),
        f"s/0{sep}0": [BUCKET + "x.nc", 0, 16],
    }
    ic.import_kerchunk(session, refs)
    assert ranges(session, "/s") == {(0, 0): (BUCKET + "x.nc", 0, 16)}
    arr = zarr.open_array(session.store, path="s", mode="r")
    assert arr.metadata.to_dict()["chunk_key_encoding"] == {
        "name": "v2",
        "configuration": {"separator": sep},
    }
    np.testing.assert_array_equal(arr[:, 2:], values)

    async def keys() -> list[str]:
        return sorted([k async for k in session.store.list_prefix("s/")])

    assert ic._sync.run(keys()) == [f"s/0{sep}0", f"s/0{sep}1", "s/zarr.json"]


def test_zattrs_become_attributes_and_dimension_names(session: ic.Session) -> None:
    refs = {
        ".zgroup": '{"zarr_format": 2}',
        ".zattrs": '{"title": "t"}',
        "g/.zgroup": '{"zarr_format": 2}',
        "g/.zattrs": {"k": [1, 2]},
        "g/v/.zarray": zarray([3, 2], [3, 2]),
        "g/v/.zattrs": '{"_ARRAY_DIMENSIONS": ["time", "x"], "units": "m"}',
    }
    ic.import_kerchunk(session, refs)
    root = zarr.open_group(session.store, mode="r")
    assert root.attrs.asdict() == {"title": "t"}
    assert root["g"].attrs.asdict() == {"k": [1, 2]}
    v = root["g/v"]
    assert v.metadata.dimension_names == ("time", "x")
    assert v.attrs.asdict() == {"units": "m"}


def test_zarr_v3_documents_pass_through(session: ic.Session) -> None:
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "int16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 7,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {"a": 1},
    }
    refs = {"v3/zarr.json": json.dumps(doc), "v3/c/1": [BUCKET + "v3.bin", 4, 4]}
    ic.import_kerchunk(session, refs)
    assert ranges(session, "/v3") == {(1,): (BUCKET + "v3.bin", 4, 4)}
    assert zarr.open_array(session.store, path="v3", mode="r").fill_value == 7


# --- malformed sets: refused, naming the key, nothing written -------------------------------


@pytest.mark.parametrize(
    ("refs", "key", "words"),
    [
        ({"a/.zarray": "{not json"}, "a/.zarray", "not a JSON document"),
        ({"a/.zarray": zarray([2], [1], "<q9")}, "a/.zarray", "q9"),
        ({"a/.zarray": zarray([2], [1]), "a/0": [DATA + "x.nc", 1]}, "a/0", r"\[url, offset"),
        ({"a/.zarray": zarray([2], [1]), "a/0": [DATA + "x.nc", "1", 2]}, "a/0", "offset"),
        ({"a/.zarray": zarray([2], [1]), "a/0": [DATA + "x.nc", 0, -2]}, "a/0", "length"),
        ({"a/.zarray": zarray([2], [1]), "a/5": [DATA + "x.nc", 0, 2]}, "a/5", "not a chunk"),
        ({"a/.zarray": zarray([2], [1]), "a/0": 12}, "a/0", "a reference is"),
        ({"a/.zarray": zarray([2], [1]), "a/0": "base64:***"}, "a/0", "base64"),
        ({"b/0": [DATA + "x.nc", 0, 2]}, "b/0", "no .zarray"),
        (
            {"a/.zarray": zarray([2], [1]), "a/.zattrs": '{"_ARRAY_DIMENSIONS": ["x", "y"]}'},
            "a/.zarray",
            "_ARRAY_DIMENSIONS",
        ),
        (
            {
                "a/.zarray": zarray(
                    [2], [1], filters=[{"id": "shuffle"}, {"id": "delta", "dtype": "<i4"}]
                )
            },
            "a/.zarray",
            "cannot express",
        ),
        (
            {"a/.zarray": zarray([2], [1], compressor={"id": "no-such-codec"})},
            "a/.zarray",
            "no-such-codec",
        ),
        ({"a/.zarray": zarray([2], [1]), "a/0": [DATA + "../etc/x", 0, 2]}, "a/0", "'..'"),
        ({"a/.zarray": zarray([2], [1]), "a/0": [DATA + "x.nc", 2**63, 2**63]}, "a/0", "2\\*\\*64"),
    ],
    ids=[
        "bad-json",
        "bad-dtype",
        "two-items",
        "text-offset",
        "negative-length",
        "outside-grid",
        "number",
        "bad-base64",
        "orphan-chunk",
        "dims-length",
        "filter-order",
        "unknown-codec",
        "dot-dot",
        "past-2**64",
    ],
)
def test_malformed_references_name_the_key_and_change_nothing(
    session: ic.Session, refs: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(InvalidReferencesError, match=words) as info:
        ic.import_kerchunk(session, refs)
    assert info.value.key == key
    assert repr(key) in str(info.value)
    assert not session.has_uncommitted_changes


def test_unknown_versions_and_non_sets_are_refused(session: ic.Session, tmp_path: Path) -> None:
    with pytest.raises(InvalidReferencesError, match="version 2"):
        ic.import_kerchunk(session, {"version": 2, "refs": {}})
    with pytest.raises(InvalidReferencesError, match="not a JSON reference file"):
        ic.import_kerchunk(session, _write(tmp_path / "x.json", b"[1,"))
    with pytest.raises(ImportSourceNotFoundError, match="no such file"):
        ic.import_kerchunk(session, tmp_path / "missing.json")
    with pytest.raises(InvalidReferencesError, match="local disk"):
        ic.import_kerchunk(session, "s3://bucket/refs.json")
    assert not session.has_uncommitted_changes


def test_undeclared_containers_are_listed_and_nothing_is_written(session: ic.Session) -> None:
    refs = {
        ".zgroup": '{"zarr_format": 2}',
        "a/.zarray": zarray([4], [1]),
        "a/0": [DATA + "ok.nc", 0, 4],
        "a/1": ["s3://other/nc/x.nc", 0, 4],
        "a/2": ["https://example.org/files/y.nc", 0, 4],
        "a/3": ["s3://other/nc/z.nc", 0, 4],
    }
    with pytest.raises(UndeclaredContainersError) as info:
        ic.import_kerchunk(session, refs)
    err = info.value
    assert isinstance(err, VirtualContainerNotFoundError)
    assert err.prefixes == ["https://example.org/files/", "s3://other/nc/"]
    assert "'https://example.org/files/', 's3://other/nc/'" in str(err)
    assert "set_virtual_chunk_container" in str(err) and "nothing was imported" in str(err)
    assert sorted(err.declared) == sorted(session.config.virtual_chunk_containers)
    assert not session.has_uncommitted_changes


# --- where things land ----------------------------------------------------------------------


def test_group_places_everything_below_it(session: ic.Session) -> None:
    zarr.group(store=session.store, attributes={"mine": 1}).create_group("keep")
    refs = {
        ".zgroup": '{"zarr_format": 2}',
        ".zattrs": '{"a": 1}',
        "v/.zarray": zarray([2], [1]),
        "v/0": [DATA + "f.nc", 0, 4],
    }
    ic.import_kerchunk(session, refs, group="/deep/er/")
    assert ranges(session, "/deep/er/v") == {(0,): (DATA + "f.nc", 0, 4)}
    paths = {n.path for n in session.list_nodes(recursive=True)}
    assert {"/keep", "/deep", "/deep/er", "/deep/er/v"} <= paths
    assert zarr.open_group(session.store, path="deep/er", mode="r").attrs.asdict() == {"a": 1}
    assert zarr.open_group(session.store, mode="r").attrs.asdict() == {"mine": 1}  # untouched


def test_import_again_repoints_an_array_and_keeps_other_children(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    first = {
        ".zgroup": '{"zarr_format": 2}',
        "v/.zarray": zarray([2], [1]),
        "v/0": [DATA + "old.nc", 0, 4],
        "v/1": [DATA + "old.nc", 4, 4],
    }
    ic.import_kerchunk(session, first, group="g")
    zarr.open_group(session.store, path="g", mode="r+").create_array("mine", shape=(1,), dtype="i1")
    session.commit("first")
    session = repo.writable_session("main")
    second = {
        ".zgroup": '{"zarr_format": 2}',
        "v/.zarray": zarray([2], [1]),
        "v/0": [DATA + "new.nc", 8, 4],
    }
    ic.import_kerchunk(session, second, group="g")
    assert ranges(session, "/g/v") == {(0,): (DATA + "new.nc", 8, 4)}  # the old (1,) is gone
    assert "/g/mine" in {n.path for n in session.list_nodes(recursive=True)}


def test_an_array_over_a_groups_children_is_refused_before_writing(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    zarr.group(store=session.store).create_group("g").create_group("child")
    session.commit("tree")
    session = repo.writable_session("main")
    with pytest.raises(InvalidNameError, match="/g/child"):
        ic.import_kerchunk(session, {"g/.zarray": zarray([1], [1])})
    assert not session.has_uncommitted_changes


def test_a_root_array_imports_alone_and_is_refused_over_children(repo: ic.Repository) -> None:
    refs = {".zarray": zarray([2], [1], "|u1"), "0": "base64:Bw==", "1": [DATA + "r.nc", 0, 1]}
    alone = ic.Repository.create(ic.in_memory_storage(), repo.config).writable_session("main")
    ic.import_kerchunk(alone, refs)
    assert ranges(alone, "/") == {(1,): (DATA + "r.nc", 0, 1)}
    assert zarr.open_array(alone.store, mode="r")[0] == 7

    session = repo.writable_session("main")
    zarr.group(store=session.store).create_group("child")
    session.commit("tree")
    session = repo.writable_session("main")
    with pytest.raises(InvalidNameError, match="/child"):
        ic.import_kerchunk(session, refs)
    assert not session.has_uncommitted_changes


def test_a_group_over_an_existing_array_is_refused(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    zarr.group(store=session.store).create_array("arr", shape=(2,), dtype="i1")
    session.commit("array")
    session = repo.writable_session("main")
    refs = {"v/.zarray": zarray([1], [1]), "v/0": [DATA + "f.nc", 0, 4]}
    with pytest.raises(InvalidNameError, match="/arr"):
        ic.import_kerchunk(session, refs, group="/arr")
    with pytest.raises(InvalidNameError, match="/arr"):
        ic.import_kerchunk(session, refs, group="/arr/below")
    assert not session.has_uncommitted_changes


def test_unicode_names_and_paths(session: ic.Session, tmp_path: Path) -> None:
    refs = {
        "température/.zarray": zarray([2], [1]),
        "température/.zattrs": '{"_ARRAY_DIMENSIONS": ["durée"]}',
        "température/0": [DATA + "données/é t.nc", 0, 4],
        "température/1": [str(tmp_path / "files" / "ß.nc"), 4, 4],
    }
    ic.import_kerchunk(session, refs, group="/mesures")
    assert ranges(session, "/mesures/température") == {
        (0,): (DATA + "données/é t.nc", 0, 4),
        (1,): (f"file://{tmp_path}/files/ß.nc", 4, 4),
    }
    arr = zarr.open_array(session.store, path="mesures/température", mode="r")
    assert arr.metadata.dimension_names == ("durée",)


# --- locations ------------------------------------------------------------------------------


def test_local_paths_become_file_urls(session: ic.Session, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "whole.bin").write_bytes(b"x" * 12)
    refs = {
        "a/.zarray": zarray([4], [1]),
        "a/0": [str(files / "sub" / ".." / "p.nc"), 0, 4],
        "a/1": [f"file:{files}/q.nc", 0, 4],
        "a/2": [f"file://localhost{files}/r%25.nc", 0, 4],
        "a/3": [str(files / "whole.bin")],
    }
    ic.import_kerchunk(session, refs)
    base = f"file://{files}/"
    assert ranges(session, "/a") == {
        (0,): (base + "p.nc", 0, 4),
        (1,): (base + "q.nc", 0, 4),
        (2,): (base + "r%25.nc", 0, 4),
        (3,): (base + "whole.bin", 0, 12),
    }


def test_a_whole_remote_object_needs_its_size(session: ic.Session) -> None:
    with pytest.raises(InvalidReferencesError, match=r"\[url, 0, size\]"):
        ic.import_kerchunk(session, {"a/.zarray": zarray([1], [1]), "a/0": [BUCKET + "w.nc"]})


@pytest.mark.parametrize("suffix", [".json", ".json.gz", ".json.zst"])
def test_reference_files_plain_and_compressed(
    session: ic.Session, tmp_path: Path, suffix: str
) -> None:
    doc = json.dumps(
        {"version": 1, "refs": {"a/.zarray": zarray([1], [1]), "a/0": [BUCKET + "f.nc", 3, 4]}}
    ).encode()
    packed = {
        ".json": doc,
        ".json.gz": gzip.compress(doc),
        ".json.zst": zstandard.ZstdCompressor().compress(doc),
    }[suffix]
    ic.import_kerchunk(session, _write(tmp_path / f"refs{suffix}", packed))
    assert ranges(session, "/a") == {(0,): (BUCKET + "f.nc", 3, 4)}


def test_last_updated_at_is_recorded_and_read_only_sessions_refuse(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    refs = {"a/.zarray": zarray([1], [1]), "a/0": [BUCKET + "f.nc", 0, 4]}
    ic.import_kerchunk(session, refs, last_updated_at=when)
    assert [r.checksum for r in refs_of(session, "/a").values()] == [int(when.timestamp())]
    session.commit("x")
    with pytest.raises(ReadOnlySessionError):
        ic.import_kerchunk(repo.readonly_session("main"), refs)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
