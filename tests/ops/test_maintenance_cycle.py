"""Expire, then gc, on a repository with history on two branches and tags: what must hold.

* every snapshot still reachable from a branch or tag reads completely, equal to what it
  held before (values of every array);
* ``verify`` is clean afterwards;
* a dry run deletes nothing and reports exactly what the real run then deletes;
* the chunks deleted are exactly those no retained snapshot's manifests name (computed here
  independently from the stored files), and every released snapshot is gone;
* a second gc right after deletes nothing.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest
import zarr
from zarr.errors import GroupNotFoundError

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.format.manifest import NATIVE
from icechunk_lib.format.manifest_codec import decode_manifest
from icechunk_lib.format.snapshot import decode_snapshot
from icechunk_lib.objects import chunk_key

CONFIG = ic.RepositoryConfig(
    inline_chunk_threshold_bytes=16, manifest=ic.ManifestConfig(max_refs_per_manifest=3)
)


def _keys(storage: ic.Storage, prefix: str) -> set[str]:
    async def collect() -> set[str]:
        return {info.key async for info in storage.list(prefix)}

    return _sync.run(collect())


def _everything(storage: ic.Storage) -> set[str]:
    return _keys(storage, "")


def _contents(repo: ic.Repository, snapshot_id: str) -> dict[str, np.ndarray]:
    """Every array of a snapshot, read whole."""
    store = repo.readonly_session(snapshot_id=snapshot_id).store
    try:
        group = zarr.open_group(store, mode="r")
    except GroupNotFoundError:  # the repository's first snapshot is empty
        return {}
    return {path: np.asarray(array[...]) for path, array in group.arrays()}


def _referenced_chunks(storage: ic.Storage, snapshot_ids: set[str]) -> set[str]:
    """Keys of the native chunks the manifests of these snapshots name, read from storage."""
    found: set[str] = set()
    manifests: set[str] = set()
    for sid in snapshot_ids:
        key = f"snapshots/{sid}"
        snap = decode_snapshot(_sync.run(storage.get(key)), sid, path=key)
        manifests |= {m.manifest_id for n in snap.nodes for m in n.manifests}
    for mid in manifests:
        key = f"manifests/{mid}"
        manifest = decode_manifest(_sync.run(storage.get(key)), mid, path=key)
        for table in manifest.tables.values():
            for row in range(len(table)):
                ref = table.ref(row)
                if ref.kind == NATIVE:
                    found.add(chunk_key(ref.chunk_id))
    return found


def _retained(repo: ic.Repository) -> set[str]:
    """Every snapshot in the history of some branch or tag."""
    ids: set[str] = set()
    for branch in repo.list_branches():
        ids |= {s.id for s in repo.ancestry(branch=branch)}
    for tag in repo.list_tags():
        ids |= {s.id for s in repo.ancestry(tag=tag)}
    return ids


def _commit_values(repo: ic.Repository, branch: str, seed: int, rows: slice) -> str:
    session = repo.writable_session(branch)
    array = zarr.open_array(session.store, path="data")
    array[rows] = np.random.default_rng(seed).random(array[rows].shape)
    return session.commit(f"seed {seed}")


def _pause() -> dt.datetime:
    """A moment strictly between the commit before and the commit after."""
    time.sleep(0.005)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(0.005)
    return moment


def test_expire_then_gc_keeps_every_retained_snapshot_whole(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_array("data", shape=(12, 8), chunks=(2, 4), dtype="f8", fill_value=0.0)
    small = root.create_array("small", shape=(4,), chunks=(1,), dtype="i2", fill_value=0)
    small[:] = np.arange(4)  # 2-byte chunks: inline
    session.commit("arrays")
    old = [_commit_values(repo, "main", seed, slice(0, 6)) for seed in range(3)]
    repo.create_tag("old-tag", old[1])
    repo.create_branch("stale", old[0])
    _commit_values(repo, "stale", 10, slice(6, 12))
    cutoff = _pause()
    for seed in range(3, 6):
        _commit_values(repo, "main", seed, slice(0 if seed % 2 else 6, 6 if seed % 2 else 12))
    repo.create_branch("feature", repo.lookup_branch("main"))
    _commit_values(repo, "feature", 20, slice(2, 4))

    before = {sid: _contents(repo, sid) for sid in _retained(repo)}
    released = repo.expire_snapshots(cutoff)
    assert released, "the old commits of main were released"
    assert released.isdisjoint(
        {repo.lookup_branch(b) for b in repo.list_branches()}
        | {repo.lookup_tag(t) for t in repo.list_tags()}
    )
    retained = _retained(repo)
    assert retained.isdisjoint(released)

    keys_before = _everything(storage)
    chunks_before = _keys(storage, "chunks/")
    expected_chunks = chunks_before - _referenced_chunks(storage, retained)
    assert expected_chunks, "the released commits held chunks nothing else names"

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    dry = repo.garbage_collect(later, dry_run=True)
    assert _everything(storage) == keys_before, "a dry run deleted something"
    real = repo.garbage_collect(later)
    assert _summary(dry) == _summary(real)

    gone = keys_before - _everything(storage)
    assert {k for k in gone if k.startswith("chunks/")} == expected_chunks
    assert real.chunks_deleted == len(expected_chunks)
    assert {k[len("snapshots/") :] for k in gone if k.startswith("snapshots/")} == released
    assert real.snapshots_deleted == len(released)
    assert real.manifests_deleted == len({k for k in gone if k.startswith("manifests/")})
    assert real.transaction_logs_deleted == len({k for k in gone if k.startswith("transactions/")})
    kinds = ("chunks/", "snapshots/", "manifests/", "transactions/")
    assert all(k.startswith(kinds) for k in gone), gone

    for sid in retained:
        after = _contents(repo, sid)
        assert after.keys() == before[sid].keys()
        for path, values in after.items():
            np.testing.assert_array_equal(values, before[sid][path])
    report = repo.verify(data=True)
    assert report.ok, report.problems

    again = repo.garbage_collect(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert _summary(again) == dict.fromkeys(_summary(again), 0)


def _summary(summary: object) -> dict[str, int]:
    return {
        name: getattr(summary, name)
        for name in (
            "bytes_deleted",
            "chunks_deleted",
            "manifests_deleted",
            "snapshots_deleted",
            "attributes_deleted",
            "transaction_logs_deleted",
        )
    }


@pytest.mark.parametrize("flags", ["branches", "tags", "branches,tags"])
def test_expired_refs_deleted_by_the_flags_leave_nothing_dangling(
    storage: ic.Storage, flags: str
) -> None:
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="data", shape=(12, 8), chunks=(2, 4), dtype="f8")
    session.commit("array")
    first = _commit_values(repo, "main", 1, slice(0, 12))
    repo.create_branch("old-branch", first)
    repo.create_tag("old-tag", first)
    cutoff = _pause()
    _commit_values(repo, "main", 2, slice(0, 12))

    released = repo.expire_snapshots(
        cutoff,
        delete_expired_branches="branches" in flags,
        delete_expired_tags="tags" in flags,
    )
    # A tip another kept ref names is not expired, so its ref stays: with one flag, the
    # other kind of ref keeps ``first``, and both refs stay; with both, both go.
    both = flags == "branches,tags"
    assert ("old-branch" in repo.list_branches()) == (not both)
    assert ("old-tag" in repo.list_tags()) == (not both)
    assert (first in released) == both
    snapshots_before = _keys(storage, "snapshots/")
    summary = repo.garbage_collect(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    gone = {k[len("snapshots/") :] for k in snapshots_before - _keys(storage, "snapshots/")}
    assert gone == released
    assert summary.snapshots_deleted == len(released)
    assert repo.verify(data=True).ok
    main = _contents(repo, repo.lookup_branch("main"))["data"]
    np.testing.assert_array_equal(main, np.random.default_rng(2).random((12, 8)))
    if first not in released:
        np.testing.assert_array_equal(
            _contents(repo, first)["data"], np.random.default_rng(1).random((12, 8))
        )
