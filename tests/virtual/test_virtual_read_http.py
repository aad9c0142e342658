"""Reading virtual chunks over HTTP from a small aiohttp file server on 127.0.0.1 that the
test starts and stops: h5py files read back through zarr and xarray, neighbouring chunks
in one request, ETag and last_updated_at checks, and every failure naming its location."""

from __future__ import annotations

import datetime as dt
import os
import urllib.request
from collections import Counter
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from aiohttp import web
from hdf5_files import WARNING_FILTER, Layout, add_arrays, read_all, write_sources
from http_servers import LoopbackHttpServer

import icechunk_lib as ic
from icechunk_lib.virtual.fetch import MAX_GAP

pytestmark = pytest.mark.filterwarnings(WARNING_FILTER)


class FileServer(LoopbackHttpServer):
    """Serves a directory over HTTP (ranges, ``If-Match``, ``If-Unmodified-Since``, as
    aiohttp's ``FileResponse`` does), counting GETs per file; can fail on demand."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.gets: Counter[str] = Counter()
        self.fail_with = 0
        """Answer this status (0: none) instead of serving."""
        self.ignore_ranges = False
        """Send the whole file with its ETag and Last-Modified, ignoring ranges and
        conditions, as a plain server does."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.gets[name] += 1
        if self.fail_with:
            return web.Response(status=self.fail_with, text="no")
        path = self.root / name
        if not path.is_file():
            raise web.HTTPNotFound()
        if self.ignore_ranges:
            st = path.stat()
            headers = {
                "ETag": f'"{st.st_mtime_ns:x}-{st.st_size:x}"',  # FileResponse's own
                "Last-Modified": formatdate(st.st_mtime, usegmt=True),
            }
            return web.Response(body=path.read_bytes(), headers=headers)
        return web.FileResponse(path)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/data/{name}", self._handle)

    @property
    def url_prefix(self) -> str:
        return f"http://127.0.0.1:{self.port}/data/"

    def etag(self, name: str) -> str:
        request = urllib.request.Request(self.url_prefix + name, method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as reply:
            etag: str = reply.headers["ETag"]
        return etag


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    running = FileServer(root)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _repo(
    tmp_path: Path, server: FileServer, checksum: object = None
) -> tuple[ic.Repository, Layout]:
    layout = write_sources(server.root / "obs.nc")
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(server.url_prefix, ic.http_store()))
    config.storage = ic.StorageSettings(
        retries=ic.StorageRetriesSettings(max_tries=2, initial_backoff_ms=10)
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")),
        config,
        {server.url_prefix: None},
    )
    session = repo.writable_session("main")
    if checksum == "etag":
        checksum = server.etag("obs.nc")
    assert checksum is None or isinstance(checksum, str | dt.datetime)
    add_arrays(session.store, layout, server.url_prefix + "obs.nc", checksum=checksum)
    session.commit("virtual over http")
    return repo, layout


def _read_temp(repo: ic.Repository) -> np.ndarray:
    return zarr.open_array(repo.readonly_session("main").store, path="temp")[...]


def _assert_equal(got: dict[str, np.ndarray], layout: Layout) -> None:
    for name, ds in layout.datasets.items():
        np.testing.assert_array_equal(got[name], ds.values, err_msg=name)


def test_http_virtual_chunks_read_back_through_zarr_and_xarray(
    tmp_path: Path, server: FileServer
) -> None:
    repo, layout = _repo(tmp_path, server)
    session = repo.readonly_session("main")
    _assert_equal(read_all(session.store, layout), layout)
    ds = xr.open_zarr(session.store, consolidated=False)
    for name, source in layout.datasets.items():
        np.testing.assert_array_equal(ds[name].values, source.values, err_msg=name)


def test_http_neighbouring_chunks_come_in_one_request(tmp_path: Path, server: FileServer) -> None:
    repo, layout = _repo(tmp_path, server)
    server.gets.clear()
    np.testing.assert_array_equal(_read_temp(repo), layout.datasets["temp"].values)
    assert server.gets["obs.nc"] == 1


def test_a_server_ignoring_ranges_still_gives_each_chunk_its_bytes(
    tmp_path: Path, server: FileServer
) -> None:
    repo, layout = _repo(tmp_path, server)
    server.ignore_ranges = True
    _assert_equal(read_all(repo.readonly_session("main").store, layout), layout)


def test_http_etag_reference_reads_then_refuses_a_modified_source(
    tmp_path: Path, server: FileServer
) -> None:
    repo, layout = _repo(tmp_path, server, checksum="etag")
    np.testing.assert_array_equal(_read_temp(repo), layout.datasets["temp"].values)
    path = server.root / "obs.nc"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    with pytest.raises(ic.VirtualSourceChangedError) as info:
        _read_temp(repo)
    assert server.url_prefix + "obs.nc" in str(info.value)
    server.ignore_ranges = True  # a server ignoring If-Match: the reply's ETag is checked
    with pytest.raises(ic.VirtualSourceChangedError, match="ETag"):
        _read_temp(repo)


def test_http_last_updated_at_reference_refuses_a_source_modified_after(
    tmp_path: Path, server: FileServer
) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    repo, layout = _repo(tmp_path, server, checksum=when)
    np.testing.assert_array_equal(_read_temp(repo), layout.datasets["temp"].values)
    path = server.root / "obs.nc"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 60_000_000_000))
    with pytest.raises(ic.VirtualSourceChangedError, match="modified after"):
        _read_temp(repo)
    server.ignore_ranges = True  # a server ignoring the condition: the reply is checked
    with pytest.raises(ic.VirtualSourceChangedError, match="modified after"):
        _read_temp(repo)


def test_http_missing_truncated_and_failing_sources_fail_naming_the_location(
    tmp_path: Path, server: FileServer
) -> None:
    repo, layout = _repo(tmp_path, server)
    location = server.url_prefix + "obs.nc"
    path = server.root / "obs.nc"
    offset, length = layout.datasets["temp"].ranges[(1, 1)]
    data = path.read_bytes()
    path.write_bytes(data[: offset + length - 1])
    with pytest.raises(ic.VirtualSourceTruncatedError, match=location):
        _read_temp(repo)
    path.write_bytes(data[:100])  # every chunk past the end: 416
    with pytest.raises(ic.VirtualSourceTruncatedError, match=location):
        _read_temp(repo)
    path.unlink()
    with pytest.raises(ic.VirtualSourceNotFoundError, match=location):
        _read_temp(repo)
    path.write_bytes(data)
    server.fail_with = 503
    server.gets.clear()
    with pytest.raises(ic.VirtualSourceError, match="gave up after 2 tries") as info:
        _read_temp(repo)
    assert location in str(info.value) and server.gets["obs.nc"] == 2  # retried once
    server.fail_with = 403
    with pytest.raises(ic.VirtualSourceError, match="access denied"):
        _read_temp(repo)
    server.fail_with = 0
    np.testing.assert_array_equal(_read_temp(repo), layout.datasets["temp"].values)


def test_gcs_and_azure_containers_fail_clearly(tmp_path: Path) -> None:
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer("gs://bucket/", ic.gcs_store()))
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")), config, {"gs://bucket/": None}
    )
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="a").create_array("a", shape=(2,), chunks=(2,), dtype="<i4")
    session.store.set_virtual_ref("a/c/0", "gs://bucket/f.nc", offset=0, length=8)
    with pytest.raises(ic.VirtualStoreUnsupportedError) as info:
        zarr.open_array(session.store, path="a")[...]
    assert "gs://bucket/f.nc" in str(info.value) and "not supported yet" in str(info.value)


def test_http_ranges_far_apart_in_one_object_are_separate_requests(
    tmp_path: Path, server: FileServer
) -> None:
    blob = np.random.default_rng(3).integers(0, 255, size=3 * MAX_GAP, dtype="u1").tobytes()
    (server.root / "blob.bin").write_bytes(blob)
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(server.url_prefix, ic.http_store()))
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")), config, {server.url_prefix: None}
    )
    session = repo.writable_session("main")
    arr = zarr.open_group(session.store, mode="a").create_array(
        "b", shape=(4 * 16,), chunks=(16,), dtype="u1", compressors=None
    )
    # Chunks 0 and 1 are neighbours; chunk 2 is more than MAX_GAP after 1, chunk 3 just
    # within MAX_GAP of 2.
    offsets = [0, 16, 16 + 16 + MAX_GAP + 1, 16 + 16 + MAX_GAP + 1 + 16 + MAX_GAP]
    for i, offset in enumerate(offsets):
        session.store.set_virtual_ref(
            f"b/c/{i}", server.url_prefix + "blob.bin", offset=offset, length=16
        )
    server.gets.clear()
    got = arr[...].tobytes()
    assert got == b"".join(blob[o : o + 16] for o in offsets)
    assert server.gets["blob.bin"] == 2
