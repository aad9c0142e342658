"""``import_kerchunk`` of the references kerchunk makes from a real HDF5 file written by h5py:
as a dict, a JSON file and a parquet directory, every virtual ref at the byte range h5py
reports, and the converted metadata as zarr and xarray see it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.format.manifest import VIRTUAL
from icechunk_lib.session import workspace_of

INLINE_THRESHOLD = 40
# HDF5's shuffle and zlib filters become numcodecs.* codecs, which zarr warns about on open.
pytestmark = pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in:UserWarning")


def write_hdf5(path: Path) -> dict[str, np.ndarray]:
    """An HDF5 file with chunked+gzip, contiguous, big-endian and tiny datasets, a fill value,
    attributes and dimension scales; the values written, by dataset name."""
    rng = np.random.default_rng(12)
    values = {
        "y": np.arange(8, dtype="f8"),
        "x": np.linspace(0.0, 1.0, 12),
        "temp": rng.normal(280.0, 10.0, size=(8, 12)).astype("f4"),
        "counts": np.arange(96, dtype=">i4").reshape(8, 12) - 7,
        "flags": (np.arange(12) % 3 == 0).astype("u1"),
    }
    with h5py.File(path, "w") as f:
        for name in ("y", "x"):
            f.create_dataset(name, data=values[name]).make_scale(name)
        temp = f.create_dataset(
            "temp",
            data=values["temp"],
            chunks=(4, 6),
            compression="gzip",
            shuffle=True,
            fillvalue=-9999.0,
        )
        temp.attrs["units"] = "K"
        temp.attrs["long_name"] = "air temperature"
        temp.dims[0].attach_scale(f["y"])
        temp.dims[1].attach_scale(f["x"])
        counts = f.create_dataset("counts", data=values["counts"], dtype=">i4")  # contiguous
        flags = f.create_dataset("flags", data=values["flags"])
        counts.dims[0].attach_scale(f["y"])
        counts.dims[1].attach_scale(f["x"])
        flags.dims[0].attach_scale(f["x"])
        f.attrs["title"] = "test file"
    return values


def kerchunk_refs(path: Path) -> dict[str, Any]:
    from kerchunk.hdf import SingleHdf5ToZarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SingleHdf5ToZarr(str(path), inline_threshold=INLINE_THRESHOLD).translate()


def h5_ranges(path: Path, name: str) -> dict[tuple[int, ...], tuple[int, int]]:
    """Chunk index -> (offset, length) of a dataset, as h5py reports them."""
    with h5py.File(path, "r") as f:
        dset = f[name]
        if dset.chunks is None:
            return {(0,) * dset.ndim: (dset.id.get_offset(), dset.id.get_storage_size())}
        out = {}
        for i in range(dset.id.get_num_chunks()):
            info = dset.id.get_chunk_info(i)
            index = tuple(o // c for o, c in zip(info.chunk_offset, dset.chunks, strict=True))
            out[index] = (info.byte_offset, info.size)
        return out


def repo_for(tmp_path: Path, data_dir: Path) -> ic.Repository:
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(f"file://{data_dir}/", ic.local_filesystem_store(str(data_dir)))
    )
    return ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config)


def chunk_refs(session: ic.Session, path: str) -> dict[tuple[int, ...], Any]:
    ws = workspace_of(session)

    async def go() -> dict[tuple[int, ...], Any]:
        node = (await ws.nodes())[path]
        return {coords: ref async for coords, ref in ws.iter_chunks(node)}

    return ic._sync.run(go())


@pytest.fixture
def h5(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "sample.h5"
    return path, write_hdf5(path)


def _as_json(refs: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(refs))
    return path


def _as_parquet(refs: dict[str, Any], path: Path) -> Path:
    from kerchunk.df import refs_to_dataframe

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refs_to_dataframe(refs, str(path), record_size=2)
    return path


@pytest.mark.parametrize("form", ["dict", "json", "parquet"])
def test_kerchunk_refs_of_an_hdf5_file_import_at_h5py_byte_ranges(
    tmp_path: Path, h5: tuple[Path, dict[str, np.ndarray]], form: str
) -> None:
    path, values = h5
    refs = kerchunk_refs(path)
    source: Any = {
        "dict": lambda: refs,
        "json": lambda: _as_json(refs, path.parent / "refs.json"),
        "parquet": lambda: _as_parquet(refs, path.parent / "refs.parq"),
    }[form]()
    repo = repo_for(tmp_path, path.parent)
    session = repo.writable_session("main")
    summary = ic.import_kerchunk(session, source)
    assert not session.read_only and session.has_uncommitted_changes  # not committed
    session.commit("import")

    location = f"file://{path}"
    virtual = 0
    for name in ("temp", "counts", "x", "y"):
        found = chunk_refs(session, f"/{name}")
        expected = h5_ranges(path, name)
        assert {c: (r.location, r.offset, r.length) for c, r in found.items()} == {
            c: (location, off, size) for c, (off, size) in expected.items()
        }, name
        assert all(r.kind == VIRTUAL for r in found.values())
        virtual += len(found)
    flags = chunk_refs(session, "/flags")
    assert [r.kind for r in flags.values()] != [VIRTUAL]  # 12 bytes: inlined by kerchunk
    assert summary.as_dict() == {
        "arrays": 5,
        "groups": 1 if form != "parquet" else summary.groups,
        "virtual_chunks": virtual,
        "inline_chunks": 1,
        "objects": 1,
    }
    assert sorted(summary.paths) == ["/counts", "/flags", "/temp", "/x", "/y"]

    # Inline chunks read back now; the converted metadata is what h5py holds.
    root = zarr.open_group(repo.readonly_session("main").store, mode="r")
    np.testing.assert_array_equal(root["flags"][:], values["flags"])
    temp = root["temp"]
    assert (temp.shape, temp.chunks, temp.dtype) == ((8, 12), (4, 6), np.dtype("f4"))
    assert temp.fill_value == -9999.0
    assert temp.metadata.dimension_names == ("y", "x")
    assert temp.attrs["units"] == "K" and temp.attrs["long_name"] == "air temperature"
    counts = root["counts"]
    codecs = counts.metadata.to_dict()["codecs"]
    assert codecs[0] == {"name": "bytes", "configuration": {"endian": "big"}}
    assert counts.dtype.kind == "i" and counts.dtype.itemsize == 4
    meta = temp.metadata.to_dict()
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "numcodecs.shuffle", "numcodecs.zlib"]
    assert meta["chunk_key_encoding"] == {"name": "v2", "configuration": {"separator": "."}}
    assert root.attrs["title"] == "test file"


def test_xarray_sees_the_dimensions_and_attributes(
    tmp_path: Path, h5: tuple[Path, dict[str, np.ndarray]]
) -> None:
    xr = pytest.importorskip("xarray")
    path, _ = h5
    repo = repo_for(tmp_path, path.parent)
    session = repo.writable_session("main")
    ic.import_kerchunk(session, kerchunk_refs(path))
    session.commit("import")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_zarr(
            repo.readonly_session("main").store,
            consolidated=False,
            zarr_format=3,
            chunks=None,
            decode_cf=False,
            create_default_indexes=False,
        )
    try:
        assert ds["temp"].dims == ("y", "x")
        assert ds["temp"].attrs["units"] == "K"
        assert set(ds.coords) >= {"x", "y"}
        assert ds.attrs["title"] == "test file"
        assert ds["temp"].shape == (8, 12)
    finally:
        ds.close()


def test_relative_locations_are_taken_from_the_json_files_directory(
    tmp_path: Path, h5: tuple[Path, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = h5
    refs = kerchunk_refs(path)
    for key, value in refs["refs"].items():
        if isinstance(value, list):
            refs["refs"][key] = ["sample.h5", *value[1:]]
    source = _as_json(refs, path.parent / "refs.json")
    monkeypatch.chdir(tmp_path)  # not where the file is
    repo = repo_for(tmp_path, path.parent)
    session = repo.writable_session("main")
    ic.import_kerchunk(session, source)
    assert {r.location for r in chunk_refs(session, "/temp").values()} == {f"file://{path}"}


def reader(tmp_path: Path, data_dir: Path) -> ic.Repository:
    return ic.Repository.open(
        ic.local_filesystem_storage(str(tmp_path / "repo")),
        authorize_virtual_chunk_access={f"file://{data_dir}/": None},
    )


@pytest.mark.parametrize("form", ["dict", "json", "parquet"])
def test_imported_refs_read_back_equal_to_h5py(
    tmp_path: Path, h5: tuple[Path, dict[str, np.ndarray]], form: str
) -> None:
    path, values = h5
    refs = kerchunk_refs(path)
    source: Any = {
        "dict": lambda: refs,
        "json": lambda: _as_json(refs, path.parent / "refs.json"),
        "parquet": lambda: _as_parquet(refs, path.parent / "refs.parq"),
    }[form]()
    session = repo_for(tmp_path, path.parent).writable_session("main")
    ic.import_kerchunk(session, source, group="/nc")
    session.commit("import")

    root = zarr.open_group(reader(tmp_path, path.parent).readonly_session("main").store, mode="r")
    for name, expected in values.items():
        got = root[f"nc/{name}"][...]
        np.testing.assert_array_equal(got, expected, err_msg=name)
        assert got.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(root["nc/temp"][1:7, 2:11], values["temp"][1:7, 2:11])


def test_xarray_reads_the_imported_dataset_equal_to_h5py(
    tmp_path: Path, h5: tuple[Path, dict[str, np.ndarray]]
) -> None:
    xr = pytest.importorskip("xarray")
    path, values = h5
    session = repo_for(tmp_path, path.parent).writable_session("main")
    ic.import_kerchunk(session, _as_json(kerchunk_refs(path), path.parent / "refs.json"))
    session.commit("import")
    store = reader(tmp_path, path.parent).readonly_session("main").store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_zarr(store, consolidated=False, zarr_format=3)
    try:
        assert ds["temp"].dims == ("y", "x")
        np.testing.assert_array_equal(ds["x"].values, values["x"])
        np.testing.assert_array_equal(ds["y"].values, values["y"])
        for name in ("temp", "counts", "flags"):
            np.testing.assert_array_equal(ds[name].values, values[name], err_msg=name)
        assert ds["temp"].attrs["units"] == "K"
    finally:
        ds.close()


def test_a_source_changed_after_last_updated_at_fails_naming_it(
    tmp_path: Path, h5: tuple[Path, dict[str, np.ndarray]]
) -> None:
    import datetime as dt
    import os

    path, _ = h5
    session = repo_for(tmp_path, path.parent).writable_session("main")
    when = dt.datetime.now(dt.UTC)
    ic.import_kerchunk(session, kerchunk_refs(path), last_updated_at=when)
    session.commit("import")
    later = when.timestamp() + 60
    os.utime(path, (later, later))
    root = zarr.open_group(reader(tmp_path, path.parent).readonly_session("main").store, mode="r")
    with pytest.raises(ic.VirtualSourceChangedError, match=str(path)):
        root["temp"][...]
