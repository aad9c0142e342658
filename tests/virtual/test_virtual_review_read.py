"""Hostile reads of virtual chunks from ``file://`` containers: the container in effect
for a location follows the config as it is now, and ranges of one object requested
together (overlapping, identical, at its end, partial) each get their own bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import VirtualContainerNotAuthorizedError, VirtualSourceTruncatedError
from icechunk_lib.session import workspace_of

DATA = bytes(range(256)) * 4


def _repo(tmp_path: Path, authorised: list[str]) -> tuple[ic.Repository, str]:
    outer = f"file://{tmp_path}/src/"
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "f").write_bytes(DATA)
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(outer, ic.local_filesystem_store(str(tmp_path / "src")))
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")),
        config,
        authorize_virtual_chunk_access={p: None for p in authorised or [outer]},
    )
    return repo, outer


def test_a_container_declared_in_place_after_a_read_takes_over_its_locations(
    tmp_path: Path,
) -> None:
    repo, outer = _repo(tmp_path, [])
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="x", shape=(64,), chunks=(64,), dtype="u1", compressors=None
    )
    session.store.set_virtual_ref("x/c/0", outer + "sub/f", offset=0, length=64)
    session.commit("virtual")
    arr = zarr.open_array(repo.readonly_session(branch="main").store, path="x", mode="r")
    np.testing.assert_array_equal(arr[:], np.frombuffer(DATA[:64], dtype="u1"))
    # The dict edited in place: the longer prefix wins, and it was not authorised.
    inner = outer + "sub/"
    repo.config.virtual_chunk_containers[inner] = ic.VirtualChunkContainer(  # type: ignore[index]
        inner, ic.local_filesystem_store(str(tmp_path / "src" / "sub"))
    )
    with pytest.raises(VirtualContainerNotAuthorizedError, match=inner):
        arr[:]
