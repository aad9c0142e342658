"""A weakly consistent S3 storage (Icechunk's ``tigris_storage(use_weak_consistency=True)``:
reads from the nearest region, possibly stale) opens read-only: reads work, every write is
refused with ``ReadOnlyStorageError`` saying why, and opening it writes nothing (no probe)."""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import pytest
import s3_servers
import s3fs
import zarr
from s3_servers import S3Server, s3_at

import icechunk_lib as ic


def _weak(server: S3Server, prefix: str) -> ic.Storage:
    kwargs = server.storage_kwargs()
    del kwargs["force_path_style"]  # tigris_storage has no such keyword
    return ic.tigris_storage(
        bucket=s3_servers.BUCKET, prefix=prefix, use_weak_consistency=True, **kwargs
    )


def _keys(server: S3Server, prefix: str) -> set[str]:
    fs = s3fs.S3FileSystem(**server.client_kwargs())
    return {path.split(f"/{prefix}/", 1)[1] for path in fs.find(f"{s3_servers.BUCKET}/{prefix}")}


def test_weak_consistency_opens_read_only(seaweedfs_server: S3Server) -> None:
    prefix = seaweedfs_server.fresh_prefix()
    repo = ic.Repository.create(s3_at(seaweedfs_server, prefix))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), dtype="i4")[:] = np.arange(4)
    first = session.commit("setup")
    before = _keys(seaweedfs_server, prefix)

    storage = _weak(seaweedfs_server, prefix)
    assert not storage.capabilities.safe_writes and not storage.unsafe_writes
    clone = pickle.loads(pickle.dumps(storage))
    assert not clone.capabilities.safe_writes and "weak consistency, read-only" in repr(clone)
    weak = ic.Repository.open(storage)
    assert weak.lookup_branch("main") == first
    data = zarr.open_array(weak.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(data, np.arange(4))

    def commit() -> None:
        writer = weak.writable_session("main")
        zarr.open_array(writer.store, path="a", mode="r+")[0] = 9
        writer.commit("refused")

    refusals = [
        commit,
        lambda: weak.create_branch("dev", first),
        lambda: weak.create_tag("v1", first),
        lambda: weak.reset_branch("main", first),
        lambda: weak.save_config(),
    ]
    elsewhere = _weak(seaweedfs_server, seaweedfs_server.fresh_prefix())
    for refused, url in [(r, storage.url) for r in refusals] + [
        (lambda: ic.Repository.create(elsewhere), elsewhere.url)
    ]:
        with pytest.raises(ic.ReadOnlyStorageError) as info:
            refused()
        message = str(info.value)
        assert url in message and "is read-only" in message, message
        # the way out that works: allow_unsafe_writes would not lift it
        assert "use_weak_consistency=False" in message and "unsafe" not in message, message
        assert s3_servers.SECRET_KEY not in message
    # Directly on the storage too, each write says why: weak consistency, and the way out.
    for write in (
        storage.put("config", b"x"),
        storage.put_new("chunks/X", b"x"),
        storage.put_if_absent("refs/x", b"x"),
        storage.put_if_match("config", b"x", "etag"),
        storage.delete("config"),
        storage.delete_many(["config"]),
        storage.create_root(),
    ):
        with pytest.raises(ic.ReadOnlyStorageError, match="use_weak_consistency=False"):
            asyncio.run(write)
    assert _keys(seaweedfs_server, prefix) == before  # nothing written, not even a probe
    assert ic.Repository.open(s3_at(seaweedfs_server, prefix)).lookup_branch("main") == first
