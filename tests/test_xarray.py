"""xarray and dask through the store: full round trips of values, attributes and encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr

import icechunk_lib as ic

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")


def _dataset() -> xr.Dataset:
    rng = np.random.default_rng(42)
    time = pd.date_range("2024-01-01", periods=12, freq="D")
    lat = np.linspace(-60, 60, 20)
    lon = np.linspace(0, 350, 36)
    temp = rng.normal(280, 5, size=(12, 20, 36)).astype("f4")
    precip = rng.gamma(2.0, 1.5, size=(12, 20, 36))
    ds = xr.Dataset(
        {
            "temperature": (("time", "lat", "lon"), temp, {"units": "K", "long_name": "air T"}),
            "precip": (("time", "lat", "lon"), precip, {"units": "mm/day"}),
            "station": (("lat",), np.arange(20, dtype="i2")),
        },
        coords={"time": time, "lat": ("lat", lat, {"units": "degrees_north"}), "lon": lon},
        attrs={"title": "test dataset", "version": 3},
    )
    ds["temperature"].encoding = {"chunks": (4, 10, 18)}
    ds["precip"].encoding = {"chunks": (6, 20, 36), "_FillValue": -9999.0}
    return ds


def test_dataset_round_trip(repo: ic.Repository) -> None:
    ds = _dataset()
    session = repo.writable_session("main")
    ds.to_zarr(session.store, consolidated=False)
    snap = session.commit("write dataset")

    back = xr.open_zarr(repo.readonly_session(snapshot_id=snap).store, consolidated=False)
    xr.testing.assert_identical(back.load(), ds)
    assert back["temperature"].encoding["chunks"] == (4, 10, 18)
    assert back["precip"].encoding["_FillValue"] == -9999.0
    assert back.attrs == {"title": "test dataset", "version": 3}
    assert back["lat"].attrs["units"] == "degrees_north"
    assert back["time"].dtype == np.dtype("datetime64[ns]")


def test_append_along_time_and_time_travel(repo: ic.Repository) -> None:
    ds = _dataset()
    s1 = repo.writable_session("main")
    ds.isel(time=slice(0, 6)).to_zarr(s1.store, consolidated=False)
    first = s1.commit("first half")
    s2 = repo.writable_session("main")
    ds.isel(time=slice(6, None)).to_zarr(s2.store, consolidated=False, append_dim="time")
    s2.commit("second half")

    full = xr.open_zarr(repo.readonly_session("main").store, consolidated=False).load()
    xr.testing.assert_identical(full, ds)
    half = xr.open_zarr(repo.readonly_session(snapshot_id=first).store, consolidated=False)
    assert half.sizes["time"] == 6


def test_dask_threaded_write(repo: ic.Repository) -> None:
    import dask

    values = np.arange(200 * 300, dtype="f8").reshape(200, 300)
    arr = da.from_array(values, chunks=(50, 60))
    ds = xr.Dataset({"v": (("y", "x"), arr)})
    session = repo.writable_session("main")
    with dask.config.set(scheduler="threads"):
        ds.to_zarr(session.store, consolidated=False, compute=True)
    session.commit("dask write")
    back = xr.open_zarr(repo.readonly_session("main").store, consolidated=False)
    np.testing.assert_array_equal(back["v"].values, values)
    assert back["v"].encoding["chunks"] == (50, 60)


def test_dask_tokens_are_cheap_and_distinct(repo: ic.Repository) -> None:
    """dask names stores by a token instead of pickling them (and the storage with them)."""
    from dask.base import tokenize

    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(2,), dtype="i1")
    first = session.commit("a")
    second = repo.writable_session("main")
    ro = repo.readonly_session(snapshot_id=first)
    assert tokenize(ro.store) == tokenize(repo.readonly_session(snapshot_id=first).store)
    assert tokenize(ro.store) != tokenize(second.store)
    assert tokenize(second.store) != tokenize(repo.writable_session("main").store)
    if "memory" in repo.storage.url:
        from icechunk_lib.storage import InMemoryStorage

        calls = []
        original = InMemoryStorage.__reduce__

        def spy(self: InMemoryStorage) -> object:
            calls.append(1)
            return original(self)

        InMemoryStorage.__reduce__ = spy  # type: ignore[method-assign]
        try:
            tokenize(ro.store)
        finally:
            InMemoryStorage.__reduce__ = original  # type: ignore[method-assign]
        assert calls == []
