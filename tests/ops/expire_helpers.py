"""Histories for the expiration tests: one array ``a`` of 16 one-element chunks, each commit
writing one chunk, so every snapshot's content is known and checkable."""

from __future__ import annotations

import asyncio
import datetime as dt
import traceback
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype

import icechunk_lib as ic

SIZE = 16


def new_repo(storage: ic.Storage) -> ic.Repository:
    """A repository whose first commit on ``main`` creates array ``a`` (all zeros)."""
    repo = ic.Repository.create(storage, ic.RepositoryConfig(inline_chunk_threshold_bytes=0))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store,
        name="a",
        shape=(SIZE,),
        chunks=(1,),
        dtype="<i8",
        fill_value=0,
        compressors=None,
    )
    session.commit("create a")
    return repo


def commit(repo: ic.Repository, branch: str, index: int, value: int) -> str:
    """Write ``value`` at ``a[index]`` on ``branch``; return the new snapshot id."""
    session = repo.writable_session(branch)
    zarr.open_array(session.store, path="a")[index] = value
    return session.commit(f"a[{index}] = {value} on {branch}")


def values(repo: ic.Repository, snapshot_id: str) -> list[int]:
    """All of ``a`` at a snapshot."""
    session = repo.readonly_session(snapshot_id=snapshot_id)
    data: list[int] = zarr.open_array(session.store, path="a", mode="r")[:].tolist()
    return data


def written_at(repo: ic.Repository, snapshot_id: str) -> dt.datetime:
    return repo.lookup_snapshot(snapshot_id).written_at


def commit_on_own_loop(storage: ic.Storage, branch: str, index: int, value: int) -> str:
    """Commit from another thread's own event loop (callable while the engine's loop is
    held inside a storage call): raw chunk bytes, async API only."""

    async def run() -> str:
        repo = await ic.Repository.open_async(storage)
        session = await repo.writable_session_async(branch)
        raw = np.array([value], dtype="<i8").tobytes()
        await session.store.set(f"a/c/{index}", default_buffer_prototype().buffer.from_bytes(raw))
        return await session.commit_async(f"a[{index}] = {value} on {branch} (elsewhere)")

    return asyncio.run(run())


def rebasing_writer(path: str, index: int, commits: int, results: Any) -> None:
    """A process committing ``a[index] = 1..commits`` on main, rebasing after each lost race
    (``ConflictDetector``); puts ``(index, [snapshot ids])`` or ``(index, traceback)``."""
    try:
        repo = ic.Repository.open(ic.local_filesystem_storage(path))
        landed = []
        for n in range(1, commits + 1):
            session = repo.writable_session("main")
            zarr.open_array(session.store, path="a")[index] = n
            for _ in range(1_000):
                try:
                    landed.append(session.commit(f"a[{index}] = {n}"))
                    break
                except ic.RebaseFailedError:
                    raise
                except ic.ConflictError:
                    session.rebase(ic.ConflictDetector())
            else:
                raise RuntimeError(f"a[{index}] = {n} never landed")
        results.put((index, landed))
    except BaseException:
        results.put((index, traceback.format_exc()))
        raise
