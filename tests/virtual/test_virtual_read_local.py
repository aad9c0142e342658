"""Reading virtual chunks from local files (``file://``): real HDF5 files written by h5py,
read back through zarr and xarray; every way a read can fail fails clearly, naming the
location, and never returns bytes."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from hdf5_files import WARNING_FILTER, Layout, add_arrays, read_all, write_sources

import icechunk_lib as ic
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL, ChunkRef
from icechunk_lib.virtual import local_file_etag

pytestmark = pytest.mark.filterwarnings(WARNING_FILTER)


def _prefix(directory: Path) -> str:
    return directory.as_uri() + "/"


def _repo(
    tmp_path: Path, sources: Path, *, authorise: bool = True, declare: bool = True
) -> ic.Repository:
    config = ic.RepositoryConfig.default()
    if declare:
        config.set_virtual_chunk_container(
            ic.VirtualChunkContainer(_prefix(sources), ic.local_filesystem_store(str(sources)))
        )
    auth = {_prefix(sources): None} if authorise else None
    return ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config, auth)


def _reopen(tmp_path: Path, sources: Path | None) -> ic.Repository:
    auth = {_prefix(sources): None} if sources is not None else None
    return ic.Repository.open(ic.local_filesystem_storage(str(tmp_path / "repo")), None, auth)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    directory = tmp_path / "archive"
    directory.mkdir()
    return directory


def _build(
    tmp_path: Path,
    sources: Path,
    checksum: str | dt.datetime | None = None,
    *,
    etag: bool = False,
) -> tuple[ic.Repository, Layout, str]:
    layout = write_sources(sources / "obs.nc")
    if etag:
        checksum = local_file_etag(sources / "obs.nc")
    repo = _repo(tmp_path, sources)
    session = repo.writable_session("main")
    location = _prefix(sources) + "obs.nc"
    add_arrays(session.store, layout, location, checksum=checksum)
    session.commit("virtual datasets")
    return repo, layout, location


def _assert_equal(got: dict[str, np.ndarray], layout: Layout) -> None:
    for name, ds in layout.datasets.items():
        np.testing.assert_array_equal(got[name], ds.values, err_msg=name)


def test_chunked_gzip_uncompressed_and_contiguous_datasets_read_back_equal_to_h5py(
    tmp_path: Path, sources: Path
) -> None:
    repo, layout, _ = _build(tmp_path, sources)
    _assert_equal(read_all(repo.readonly_session("main").store, layout), layout)
    # A fresh repository object (authorised at open) reads them too, partial selections too.
    arr = zarr.open_array(_reopen(tmp_path, sources).readonly_session("main").store, path="temp")
    np.testing.assert_array_equal(arr[2:5, 1:7], layout.datasets["temp"].values[2:5, 1:7])


def test_xarray_reads_the_virtual_dataset_equal_to_h5py(tmp_path: Path, sources: Path) -> None:
    repo, layout, _ = _build(tmp_path, sources)
    ds = xr.open_zarr(repo.readonly_session("main").store, consolidated=False)
    for name, source in layout.datasets.items():
        np.testing.assert_array_equal(ds[name].values, source.values, err_msg=name)
        assert ds[name].dims == (f"{name}_y", f"{name}_x")


def test_partial_reads_of_a_virtual_chunk(tmp_path: Path, sources: Path) -> None:
    repo, layout, _ = _build(tmp_path, sources)
    store = repo.readonly_session("main").store
    offset, length = layout.datasets["wind"].ranges[(1, 0)]
    raw = (sources / "obs.nc").read_bytes()[offset : offset + length]

    async def parts() -> list[bytes | None]:
        proto = zarr.core.buffer.default_buffer_prototype()
        key_ranges = [
            ("wind/c/1/0", zarr.abc.store.RangeByteRequest(4, 20)),
            ("wind/c/1/0", zarr.abc.store.SuffixByteRequest(8)),
            ("wind/c/1/0", zarr.abc.store.OffsetByteRequest(40)),
            ("wind/c/1/0", None),
        ]
        got = await store.get_partial_values(proto, key_ranges)
        return [None if b is None else b.to_bytes() for b in got]

    assert ic._sync.run(parts()) == [raw[4:20], raw[-8:], raw[40:], raw]


def test_mixed_native_inline_and_virtual_chunks_in_one_array(tmp_path: Path, sources: Path) -> None:
    values = np.arange(32 * 32, dtype="<i4").reshape(32, 32)
    with h5py.File(sources / "big.h5", "w") as f:
        f.create_dataset("v", data=values, chunks=(16, 16))
    with h5py.File(sources / "big.h5", "r") as f:
        info = f["v"].id.get_chunk_info_by_coord((16, 0))
    repo = _repo(tmp_path, sources)
    session = repo.writable_session("main")
    arr = zarr.open_group(session.store, mode="a").create_array(
        "v", shape=(32, 32), chunks=(16, 16), dtype="<i4", fill_value=-1, compressors=None
    )
    arr[0:16, 0:16] = values[0:16, 0:16]  # 1 KiB: a native chunk
    session.store.set_virtual_ref(
        "v/c/1/0", _prefix(sources) + "big.h5", offset=info.byte_offset, length=info.size
    )
    small = zarr.open_group(session.store, mode="a").create_array(
        "small", shape=(2,), chunks=(1,), dtype="<i4"
    )
    small[:] = [5, 6]  # 4-byte chunks: inline
    session.commit("mixed")
    reader = repo.readonly_session("main")
    ws = ic.session.workspace_of(reader)

    async def kinds() -> list[int]:
        nodes = await ws.nodes()
        refs = [await ws.chunk_ref(nodes["/v"], c) for c in ((0, 0), (1, 0))]
        refs.append(await ws.chunk_ref(nodes["/small"], (0,)))
        return [r.kind for r in refs if r is not None]

    assert ic._sync.run(kinds()) == [NATIVE, VIRTUAL, INLINE]
    got = zarr.open_array(reader.store, path="v")[...]
    expected = np.full((32, 32), -1, dtype="<i4")
    expected[0:16, 0:16] = values[0:16, 0:16]
    expected[16:32, 0:16] = values[16:32, 0:16]
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(zarr.open_array(reader.store, path="small")[...], [5, 6])


# --- errors: each names the location, none returns bytes ---------------------------------


def _read_temp(repo: ic.Repository) -> np.ndarray:
    return zarr.open_array(repo.readonly_session("main").store, path="temp")[...]


def test_an_undeclared_container_fails_naming_the_location(tmp_path: Path, sources: Path) -> None:
    layout = write_sources(sources / "obs.nc")
    repo = _repo(tmp_path, sources, declare=False)
    session = repo.writable_session("main")
    location = _prefix(sources) + "obs.nc"
    zarr.open_group(session.store, mode="a").create_array(
        "grid", shape=(4, 6), chunks=(4, 6), dtype="<i2"
    )
    offset, length = layout.datasets["grid"].ranges[(0, 0)]
    session.store.set_virtual_ref(
        "grid/c/0/0", location, offset=offset, length=length, validate_container=False
    )
    session.commit("undeclared")
    with pytest.raises(ic.VirtualContainerNotFoundError, match=re.escape(location)):
        zarr.open_array(repo.readonly_session("main").store, path="grid")[...]


def test_a_declared_but_unauthorised_container_fails_saying_how_to_authorise(
    tmp_path: Path, sources: Path
) -> None:
    _build(tmp_path, sources)
    repo = _reopen(tmp_path, None)
    with pytest.raises(ic.VirtualContainerNotAuthorizedError) as info:
        _read_temp(repo)
    assert "obs.nc" in str(info.value) and "authorize_virtual_chunk_access" in str(info.value)


def test_a_location_escaping_its_container_is_refused(tmp_path: Path, sources: Path) -> None:
    repo, _, _ = _build(tmp_path, sources)
    (tmp_path / "secret.bin").write_bytes(b"x" * 64)
    session = repo.writable_session("main")
    escaping = _prefix(sources) + "%2E%2E/secret.bin"
    with pytest.raises(ic.InvalidVirtualLocationError, match=re.escape(escaping)):
        session.store.set_virtual_ref("grid/c/0/0", escaping, offset=0, length=48)
    # One recorded without checks (as an import might) is refused when read.
    ws = ic.session.workspace_of(session)

    async def read() -> bytes:
        ref = ChunkRef(VIRTUAL, offset=0, length=48, location=escaping)
        return await ws.read_ref(ref)

    with pytest.raises(ic.InvalidVirtualLocationError, match=re.escape(escaping)):
        ic._sync.run(read())


def test_a_source_modified_after_an_etag_reference_is_refused(
    tmp_path: Path, sources: Path
) -> None:
    path = sources / "obs.nc"
    repo, layout, location = _build(tmp_path, sources, etag=True)
    _assert_equal(read_all(repo.readonly_session("main").store, layout), layout)
    _touch_later(path)  # same bytes, another mtime: the ETag changes
    with pytest.raises(ic.VirtualSourceChangedError) as info:
        _read_temp(repo)
    assert location in str(info.value) and "changed since the reference" in str(info.value)
    assert isinstance(info.value, ic.IntegrityError)


def test_a_source_modified_after_last_updated_at_is_refused(tmp_path: Path, sources: Path) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    repo, layout, location = _build(tmp_path, sources, checksum=when)
    _assert_equal(read_all(repo.readonly_session("main").store, layout), layout)
    _touch_later(sources / "obs.nc", seconds=60)
    with pytest.raises(ic.VirtualSourceChangedError, match="modified after") as info:
        _read_temp(repo)
    assert location in str(info.value)


def test_a_deleted_source_fails_as_not_found_not_as_fill_values(
    tmp_path: Path, sources: Path
) -> None:
    repo, _, location = _build(tmp_path, sources)
    (sources / "obs.nc").unlink()
    with pytest.raises(ic.VirtualSourceNotFoundError) as info:
        _read_temp(repo)
    assert location in str(info.value) and isinstance(info.value, ic.NotFoundError)
    assert not isinstance(info.value, KeyError | FileNotFoundError)


def test_a_truncated_source_fails_naming_the_location(tmp_path: Path, sources: Path) -> None:
    repo, layout, location = _build(tmp_path, sources)
    offset, length = layout.datasets["temp"].ranges[(1, 1)]
    with (sources / "obs.nc").open("r+b") as f:
        f.truncate(offset + length - 1)
    with pytest.raises(ic.VirtualSourceTruncatedError) as info:
        _read_temp(repo)
    assert location in str(info.value) and f"byte {offset + length}" in str(info.value)


def test_a_pickled_session_reads_with_containers_authorised_with_none(
    tmp_path: Path, sources: Path
) -> None:
    repo, layout, _ = _build(tmp_path, sources)
    session = pickle.loads(pickle.dumps(repo.readonly_session("main")))
    _assert_equal(read_all(session.store, layout), layout)
    unauthorised = pickle.loads(pickle.dumps(_reopen(tmp_path, None).readonly_session("main")))
    with pytest.raises(ic.VirtualContainerNotAuthorizedError):
        zarr.open_array(unauthorised.store, path="temp")[...]


def _touch_later(path: Path, seconds: int = 10) -> None:
    st = path.stat()
    later = st.st_mtime_ns + seconds * 1_000_000_000
    os.utime(path, ns=(st.st_atime_ns, later))
