"""Real HDF5 (NetCDF4-style) files written by h5py, and virtual references to their chunks.

``write_sources`` writes a small file with a chunked gzip dataset, a chunked uncompressed
one and a contiguous one; ``Layout`` says where h5py put each chunk (``get_chunk_info``,
``get_offset``), and ``add_arrays`` creates matching zarr arrays and records the references
through ``store.set_virtual_ref``, so a test reads back through zarr what h5py wrote.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import zarr
from zarr.codecs.numcodecs import Zlib

import icechunk_lib as ic

WARNING_FILTER = "ignore:Numcodecs codecs are not in the Zarr version 3 specification"
"""zarr warns about numcodecs' Zlib, the codec that decodes HDF5's deflate chunks."""


@dataclass
class Dataset:
    """One HDF5 dataset: its values and its chunks' byte ranges in the file."""

    name: str
    values: np.ndarray
    chunks: tuple[int, ...]
    gzip: bool
    ranges: dict[tuple[int, ...], tuple[int, int]] = field(default_factory=dict)
    """Chunk index -> (offset, length) in the file."""


@dataclass
class Layout:
    """The datasets of one file."""

    path: Path
    datasets: dict[str, Dataset]


def write_sources(path: Path, seed: int = 0) -> Layout:
    """Write ``path`` with h5py: ``temp`` (chunked, gzip), ``wind`` (chunked, uncompressed,
    a partial edge chunk) and ``grid`` (contiguous); their layout from h5py itself."""
    rng = np.random.default_rng(seed)
    temp = rng.normal(15, 5, size=(6, 8)).astype("<f4")
    wind = np.arange(7 * 5, dtype="<i4").reshape(7, 5) * (seed + 1)
    grid = rng.integers(0, 1000, size=(4, 6)).astype("<i2")
    with h5py.File(path, "w") as f:
        f.create_dataset("temp", data=temp, chunks=(3, 4), compression="gzip")
        f.create_dataset("wind", data=wind, chunks=(4, 3))
        f.create_dataset("grid", data=grid)
    datasets = {
        "temp": Dataset("temp", temp, (3, 4), gzip=True),
        "wind": Dataset("wind", wind, (4, 3), gzip=False),
        "grid": Dataset("grid", grid, grid.shape, gzip=False),
    }
    with h5py.File(path, "r") as f:
        for ds in datasets.values():
            dset = f[ds.name]
            if dset.chunks is None:
                offset = dset.id.get_offset()
                ds.ranges[(0,) * ds.values.ndim] = (offset, dset.id.get_storage_size())
                continue
            for i in range(dset.id.get_num_chunks()):
                info = dset.id.get_chunk_info(i)
                index = tuple(o // c for o, c in zip(info.chunk_offset, ds.chunks, strict=True))
                ds.ranges[index] = (info.byte_offset, info.size)
    return Layout(path, datasets)


def add_arrays(
    store: ic.IcechunkStore,
    layout: Layout,
    location: str,
    *,
    group: str = "",
    checksum: str | dt.datetime | None = None,
) -> None:
    """Create a zarr array per dataset (codecs matching h5py's) under ``group`` and point
    every chunk at its bytes in the file at ``location``."""
    root = zarr.open_group(store=store, mode="a")
    parent = root.require_group(group) if group else root
    for ds in layout.datasets.values():
        parent.create_array(
            ds.name,
            shape=ds.values.shape,
            chunks=ds.chunks,
            dtype=ds.values.dtype,
            compressors=[Zlib(level=4)] if ds.gzip else None,
            fill_value=0,
            dimension_names=[f"{ds.name}_y", f"{ds.name}_x"],
        )
        prefix = f"{group}/" if group else ""
        for index, (offset, length) in ds.ranges.items():
            key = f"{prefix}{ds.name}/c/" + "/".join(map(str, index))
            store.set_virtual_ref(key, location, offset=offset, length=length, checksum=checksum)


def read_all(store: Any, layout: Layout, group: str = "") -> dict[str, np.ndarray]:
    """Every dataset read back through zarr."""
    root = zarr.open_group(store=store, mode="r")
    parent = root[group] if group else root
    return {name: parent[name][...] for name in layout.datasets}
