"""Reading virtual chunks from an S3-compatible server (SeaweedFS): the h5py files of the
local tests uploaded, read back through zarr and xarray with the credentials the container
was authorised with; neighbouring chunks come in one request; a changed, deleted or
truncated source fails naming its location; the secret never shows."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import s3_servers
import s3fs
import xarray as xr
import zarr
from hdf5_files import WARNING_FILTER, Layout, add_arrays, read_all, write_sources
from s3_servers import S3Server

import icechunk_lib as ic

pytestmark = pytest.mark.filterwarnings(WARNING_FILTER)

_REQUEST_COUNTER = Path(__file__).resolve().parents[2] / "benchmarks"


class Archive:
    """Source files in a fresh prefix of the server's bucket, and a repository pointing at
    them through a container on ``endpoint`` (the server, or a counting proxy before it)."""

    def __init__(self, server: S3Server, tmp_path: Path, endpoint: str | None = None) -> None:
        self.server = server
        self.fs = s3fs.S3FileSystem(**server.client_kwargs())
        self.prefix = server.fresh_prefix()
        self.url_prefix = f"s3://{s3_servers.BUCKET}/{self.prefix}/"
        self.tmp_path = tmp_path
        self.endpoint = endpoint or server.endpoint_url
        self.layout = write_sources(tmp_path / "obs.nc")
        self.location = self.url_prefix + "obs.nc"
        self.put("obs.nc", (tmp_path / "obs.nc").read_bytes())

    def key(self, name: str) -> str:
        return f"{s3_servers.BUCKET}/{self.prefix}/{name}"

    def put(self, name: str, data: bytes) -> None:
        self.fs.pipe(self.key(name), data)

    def etag(self, name: str) -> str:
        etag: str = self.fs.info(self.key(name), refresh=True)["ETag"]
        return etag

    def config(self) -> ic.RepositoryConfig:
        config = ic.RepositoryConfig.default()
        store = ic.s3_store(
            region=s3_servers.REGION,
            endpoint_url=self.endpoint,
            allow_http=True,
            force_path_style=True,
            s3_compatible=True,
        )
        config.set_virtual_chunk_container(ic.VirtualChunkContainer(self.url_prefix, store))
        config.storage = ic.StorageSettings(
            retries=ic.StorageRetriesSettings(max_tries=2, initial_backoff_ms=10)
        )
        return config

    def credentials(self) -> dict[str, ic.AnyContainerCredential | None]:
        return ic.containers_credentials(
            {
                self.url_prefix: ic.s3_credentials(
                    access_key_id=s3_servers.ACCESS_KEY,
                    secret_access_key=s3_servers.SECRET_KEY,
                )
            }
        )

    def repo(self, checksum: str | dt.datetime | None = None) -> ic.Repository:
        repo = ic.Repository.create(
            ic.local_filesystem_storage(str(self.tmp_path / "repo")),
            self.config(),
            self.credentials(),
        )
        session = repo.writable_session("main")
        add_arrays(session.store, self.layout, self.location, checksum=checksum)
        session.commit("virtual datasets in S3")
        return repo


@pytest.fixture
def archive(seaweedfs_server: S3Server, tmp_path: Path) -> Archive:
    return Archive(seaweedfs_server, tmp_path)


def _assert_equal(got: dict[str, np.ndarray], layout: Layout) -> None:
    for name, ds in layout.datasets.items():
        np.testing.assert_array_equal(got[name], ds.values, err_msg=name)


def _read_temp(repo: ic.Repository) -> np.ndarray:
    return zarr.open_array(repo.readonly_session("main").store, path="temp")[...]


def test_s3_virtual_chunks_read_back_through_zarr_and_xarray(archive: Archive) -> None:
    repo = archive.repo()
    session = repo.readonly_session("main")
    _assert_equal(read_all(session.store, archive.layout), archive.layout)
    ds = xr.open_zarr(session.store, consolidated=False)
    for name, source in archive.layout.datasets.items():
        np.testing.assert_array_equal(ds[name].values, source.values, err_msg=name)


def test_s3_etag_and_last_updated_at_checks_pass_while_the_source_is_unchanged(
    archive: Archive,
) -> None:
    repo = archive.repo(checksum=archive.etag("obs.nc"))
    _assert_equal(read_all(repo.readonly_session("main").store, archive.layout), archive.layout)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    session = repo.writable_session("main")
    add_arrays(session.store, archive.layout, archive.location, group="later", checksum=later)
    session.commit("last_updated_at refs")
    got = read_all(repo.readonly_session("main").store, archive.layout, group="later")
    _assert_equal(got, archive.layout)


def test_s3_source_replaced_after_an_etag_reference_is_refused(archive: Archive) -> None:
    repo = archive.repo(checksum=archive.etag("obs.nc"))
    data = bytearray((archive.tmp_path / "obs.nc").read_bytes())
    data[-1] ^= 0xFF  # same size, another ETag
    archive.put("obs.nc", bytes(data))
    with pytest.raises(ic.VirtualSourceChangedError) as info:
        _read_temp(repo)
    assert archive.location in str(info.value)
    assert "changed since the reference was made" in str(info.value)


def test_s3_source_modified_after_last_updated_at_is_refused(archive: Archive) -> None:
    repo = archive.repo(checksum=dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(ic.VirtualSourceChangedError, match="modified after") as info:
        _read_temp(repo)
    assert archive.location in str(info.value)


def test_s3_deleted_source_fails_as_not_found(archive: Archive) -> None:
    repo = archive.repo()
    archive.fs.rm(archive.key("obs.nc"))
    with pytest.raises(ic.VirtualSourceNotFoundError) as info:
        _read_temp(repo)
    assert archive.location in str(info.value)


def test_s3_truncated_source_fails_naming_the_location(archive: Archive) -> None:
    repo = archive.repo()
    offset, length = archive.layout.datasets["temp"].ranges[(1, 1)]
    archive.put("obs.nc", (archive.tmp_path / "obs.nc").read_bytes()[: offset + length - 1])
    with pytest.raises(ic.VirtualSourceTruncatedError) as info:
        _read_temp(repo)
    assert archive.location in str(info.value)
    archive.put("obs.nc", (archive.tmp_path / "obs.nc").read_bytes()[:100])  # before them all
    with pytest.raises(ic.VirtualSourceTruncatedError):
        _read_temp(repo)


def test_s3_credentials_never_show_and_a_pickled_session_reads(archive: Archive) -> None:
    repo = archive.repo()
    session = repo.readonly_session("main")
    blob = pickle.dumps(session)
    assert s3_servers.SECRET_KEY.encode() not in blob
    _assert_equal(read_all(pickle.loads(blob).store, archive.layout), archive.layout)
    archive.fs.rm(archive.key("obs.nc"))
    with pytest.raises(ic.VirtualSourceNotFoundError) as info:
        _read_temp(repo)
    shown = [str(info.value), repr(info.value), repr(repo), repr(session)]
    shown.append(pickle.dumps(info.value).decode("latin-1"))
    assert not any(s3_servers.SECRET_KEY in text for text in shown)


# --- coalescing, counted by a proxy in front of the server -------------------------------


@pytest.fixture
def counted(seaweedfs_server: S3Server, tmp_path: Path) -> Iterator[tuple[Archive, object]]:
    sys.path.insert(0, str(_REQUEST_COUNTER))
    try:
        import request_counter as rc
    finally:
        sys.path.remove(str(_REQUEST_COUNTER))
    counter = rc.RequestCounter(seaweedfs_server.endpoint_url).start()
    try:
        yield Archive(seaweedfs_server, tmp_path, counter.endpoint_url), counter
    finally:
        counter.stop()


def test_neighbouring_chunks_of_one_object_come_in_one_request(
    counted: tuple[Archive, object],
) -> None:
    archive, counter = counted
    repo = archive.repo()
    temp = archive.layout.datasets["temp"]
    before = counter.counts(archive.prefix)["GET"]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(_read_temp(repo), temp.values)
    assert counter.counts(archive.prefix)["GET"] - before == 1  # type: ignore[attr-defined]

    # get_partial_values: four ranges of one chunk, and one of another, in one request too.
    store = repo.readonly_session("main").store

    async def parts() -> list[bytes]:
        proto = zarr.core.buffer.default_buffer_prototype()
        rng = zarr.abc.store.RangeByteRequest
        key_ranges = [("wind/c/0/0", rng(i * 8, i * 8 + 8)) for i in range(4)]
        key_ranges.append(("wind/c/1/1", None))
        got = await store.get_partial_values(proto, key_ranges)
        return [b.to_bytes() for b in got if b is not None]

    raw = (archive.tmp_path / "obs.nc").read_bytes()
    wind = archive.layout.datasets["wind"]
    first, last = wind.ranges[(0, 0)], wind.ranges[(1, 1)]
    before = counter.counts(archive.prefix)["GET"]  # type: ignore[attr-defined]
    expected = [raw[first[0] + i * 8 : first[0] + i * 8 + 8] for i in range(4)]
    expected.append(raw[last[0] : last[0] + last[1]])
    assert ic._sync.run(parts()) == expected
    assert counter.counts(archive.prefix)["GET"] - before == 1  # type: ignore[attr-defined]


# --- a session pickled to another process (as dask sends it to workers) -------------------

_ELSEWHERE = """
import pickle, sys, warnings
warnings.simplefilter("ignore")
import zarr
import icechunk_lib as ic
session = pickle.loads(open(sys.argv[1], "rb").read())
try:
    print(zarr.open_array(session.store, path="temp")[...].sum())
except ic.VirtualSourceError as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.slow
def test_a_session_pickled_to_another_process_reads_with_the_environments_credentials(
    archive: Archive,
) -> None:
    root = Path(__file__).resolve().parents[2]
    repo = archive.repo()
    path = archive.tmp_path / "session.pickle"
    path.write_bytes(pickle.dumps(repo.readonly_session("main")))
    assert s3_servers.SECRET_KEY.encode() not in path.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(root)

    def run(extra: dict[str, str]) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _ELSEWHERE, str(path)],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    # The keys given in code stayed behind; the worker's environment stands in for them.
    with_env = run(
        {"AWS_ACCESS_KEY_ID": s3_servers.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": "env-secret"}
    )
    expected = archive.layout.datasets["temp"].values.sum()
    assert np.isclose(float(with_env), expected, rtol=1e-5), with_env
    without = run({"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/none"})
    assert without.startswith("VirtualSourceError") and archive.location in without
    assert "never pickled" in without and s3_servers.SECRET_KEY not in without
