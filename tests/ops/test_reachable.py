"""``ops.reachable.walk``: each reachable object once, reads bounded, storage failures raised.

The walk is what verify and gc's mark phase stand on, so it is tested on its own: what it
reaches is exactly what refs name, it never has more reads in flight than asked, stopping
it early leaves nothing running, and a failing storage raises instead of looking like
damage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
import zarr
from faulty_storage import FaultyStorage, InjectedFaultError

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.ops.reachable import (
    Found,
    KnownSnapshot,
    ManifestFound,
    RefFound,
    SnapshotFound,
    TransactionLogFound,
    walk,
)

CONFIG = ic.RepositoryConfig(
    inline_chunk_threshold_bytes=0, manifest=ic.ManifestConfig(max_refs_per_manifest=2)
)


class CountingStorage(FaultyStorage):
    """Records the most ``get`` calls ever in flight at once."""

    def __init__(self, inner: ic.Storage) -> None:
        super().__init__(inner)
        self.in_flight = 0
        self.peak = 0

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.001)  # let the walk start whatever else it would
            return await super().get(key, byte_range)
        finally:
            self.in_flight -= 1


def _repo(storage: ic.Storage) -> ic.Repository:
    repo = ic.Repository.create(storage, CONFIG)
    for i in range(3):
        session = repo.writable_session("main")
        if i == 0:
            zarr.create_array(session.store, name="a", shape=(8,), chunks=(1,), dtype="i4")
        zarr.open_array(session.store, path="a")[i:] = i + 1
        session.commit(f"commit {i}")
    repo.create_branch("side", repo.lookup_branch("main"))
    repo.create_tag("t", repo.lookup_branch("main"))
    return repo


def _walk(storage: ic.Storage, concurrency: int = 16) -> list[Found]:
    async def collect() -> list[Found]:
        return [found async for found in walk(storage, concurrency=concurrency)]

    return _sync.run(collect())


def _key(found: Found) -> str:
    return found.key


def _listed(storage: ic.Storage, prefix: str) -> list[str]:
    async def collect() -> list[str]:
        return sorted([info.key async for info in storage.list(prefix)])

    return _sync.run(collect())


def test_walk_reaches_each_object_once(storage: ic.Storage) -> None:
    _repo(storage)
    found = _walk(storage)
    refs = [f for f in found if isinstance(f, RefFound)]
    names = [(r.kind, r.name) for r in refs]
    assert names == [("branch", "main"), ("branch", "side"), ("tag", "t")]
    assert found[: len(refs)] == refs  # refs come first
    for kind, prefix in (
        (SnapshotFound, "snapshots/"),
        (TransactionLogFound, "transactions/"),
        (ManifestFound, "manifests/"),
    ):
        keys = [f.key for f in found if isinstance(f, kind)]
        assert len(keys) == len(set(keys))  # once each
        assert sorted(keys) == _listed(storage, prefix)  # nothing unreachable was written
    assert all(f.error is None for f in found)
    # A snapshot comes before each manifest it names.
    seen: set[str] = set()
    for f in found:
        if isinstance(f, SnapshotFound) and f.snapshot is not None:
            seen.update(m.manifest_id for n in f.snapshot.nodes for m in n.manifests)
        elif isinstance(f, ManifestFound):
            assert f.manifest_id in seen


@pytest.mark.parametrize("concurrency", [1, 3])
def test_walk_keeps_reads_in_flight_bounded(storage: ic.Storage, concurrency: int) -> None:
    _repo(storage)
    counting = CountingStorage(storage)
    found = _walk(counting, concurrency)
    assert sorted(map(_key, found)) == sorted(map(_key, _walk(storage)))
    assert counting.peak == concurrency  # used, never exceeded


def test_stopping_early_cancels_the_reads_in_flight(storage: ic.Storage) -> None:
    _repo(storage)
    counting = CountingStorage(storage)

    async def first_snapshot() -> SnapshotFound:
        stream = walk(counting, concurrency=4)
        try:
            async for found in stream:
                if isinstance(found, SnapshotFound):
                    return found
        finally:
            await stream.aclose()
        raise AssertionError("no snapshot")

    assert _sync.run(first_snapshot()).snapshot is not None
    assert counting.in_flight == 0


def test_storage_failure_raises_instead_of_reporting_damage(storage: ic.Storage) -> None:
    _repo(storage)
    faulty = FaultyStorage(storage)
    faulty.arm(5)
    with pytest.raises(InjectedFaultError):
        _walk(faulty)
    faulty.disarm()
    repo = ic.Repository.open(faulty)
    faulty.arm(8)
    with pytest.raises(InjectedFaultError):
        repo.verify()


def test_damaged_snapshot_is_an_event_and_the_walk_goes_on(storage: ic.Storage) -> None:
    repo = _repo(storage)
    tip = repo.lookup_branch("main")
    _sync.run(storage.delete(f"transactions/{tip}"))
    parent = next(iter(repo.ancestry(branch="main"))).parent_id
    assert parent is not None
    _sync.run(storage.put(f"snapshots/{parent}", b"garbage"))
    found = _walk(storage)
    logs = {f.snapshot_id: f.error for f in found if isinstance(f, TransactionLogFound)}
    assert isinstance(logs[tip], ic.CorruptObjectError)
    snaps = {f.snapshot_id: f for f in found if isinstance(f, SnapshotFound)}
    assert snaps[parent].snapshot is None
    assert isinstance(snaps[parent].error, ic.CorruptObjectError)
    assert snaps[parent].via == f"snapshot {tip}"
    assert snaps[tip].snapshot is not None
    assert any(isinstance(f, ManifestFound) for f in found)  # the tip's manifests still read


def test_walk_stops_at_what_the_caller_knows(storage: ic.Storage) -> None:
    repo = _repo(storage)
    history = [e.id for e in repo.ancestry(branch="main")]  # newest first
    tip, parent = history[0], history[1]
    everything = _walk(storage)
    manifests_of = {
        f.snapshot_id: {m.manifest_id for n in f.snapshot.nodes for m in n.manifests}
        for f in everything
        if isinstance(f, SnapshotFound) and f.snapshot is not None
    }
    known = set(history[1:])
    known_manifests = set().union(*(manifests_of[s] for s in known))

    async def collect() -> list[Found]:
        stream = walk(storage, known_snapshots=known, known_manifests=known_manifests)
        return [found async for found in stream]

    found = _sync.run(collect())
    assert [f.snapshot_id for f in found if isinstance(f, SnapshotFound)] == [tip]
    assert [f.snapshot_id for f in found if isinstance(f, TransactionLogFound)] == [tip]
    assert [(f.snapshot_id, f.via) for f in found if isinstance(f, KnownSnapshot)] == [
        (parent, f"snapshot {tip}")
    ]
    read = {f.manifest_id for f in found if isinstance(f, ManifestFound)}
    assert read == manifests_of[tip] - known_manifests and read
    # A ref naming a known snapshot stops there at once.
    found = _sync.run(collect_known(storage, set(history)))
    assert not [f for f in found if isinstance(f, SnapshotFound | ManifestFound)]
    assert {f.snapshot_id for f in found if isinstance(f, KnownSnapshot)} == {tip}


def collect_known(storage: ic.Storage, known: set[str]) -> Coroutine[Any, Any, list[Found]]:
    async def collect() -> list[Found]:
        return [found async for found in walk(storage, known_snapshots=known)]

    return collect()
