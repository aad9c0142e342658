"""``Repository.chunk_storage_stats`` and ``storage_stats``: exact bytes, each chunk once.

Arrays are written uncompressed, so every chunk's size is known from its shape and dtype;
the expected numbers are also recomputed independently by reading every reachable snapshot
and manifest through the format layer and counting with plain Python sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.format.ids import new_object_id
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL, ChunkRef, ChunkTable, ManifestFile
from icechunk_lib.format.manifest_codec import decode_manifest, encode_manifest
from icechunk_lib.format.snapshot import ManifestRef, decode_snapshot, encode_snapshot
from icechunk_lib.ops.chunk_rows import COMPACT_ROWS, ChunkRows, group_order, mix
from icechunk_lib.ops.stats import ChunkStorageStats, ChunkUsage, StorageReport, StorageView

THRESHOLD = 64
CONFIG = ic.RepositoryConfig(
    inline_chunk_threshold_bytes=THRESHOLD, manifest=ic.ManifestConfig(max_refs_per_manifest=4)
)
BIG = 4 * 16 * 8
"""Bytes of one chunk of ``big``: (4, 16) float64, no compression: native."""
SMALL = 2 * 4
"""Bytes of one chunk of ``small``: (2,) int32: inline."""


def _array(
    root: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str
) -> zarr.Array:
    """An uncompressed array, so each chunk's stored size is its element count times size."""
    return root.create_array(
        name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0, compressors=None
    )


@dataclass
class Built:
    repo: ic.Repository
    storage: ic.Storage
    first: str
    """main's first commit, tagged ``v1``: 16 native chunks of big, 4 inline of small."""
    second: str
    """main's tip: one chunk of big rewritten."""
    dev: str
    """The tip of ``dev`` (forked at ``first``): one new chunk of big, small rewritten."""


def _build(storage: ic.Storage) -> Built:
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    _array(root, "big", (16, 64), (4, 16), "f8")[:] = 1.5
    _array(root, "small", (8,), (2,), "i4")[:] = np.arange(8) + 1
    first = session.commit("first")
    repo.create_tag("v1", first)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="big")[:4, :16] = 2.5
    second = session.commit("second")
    repo.create_branch("dev", first)
    session = repo.writable_session("dev")
    zarr.open_array(session.store, path="big")[12:, 48:] = 3.5
    zarr.open_array(session.store, path="small")[:] = 7
    dev = session.commit("on dev")
    return Built(repo, storage, first, second, dev)


@pytest.fixture
def built(storage: ic.Storage) -> Built:
    return _build(storage)


# --- an independent count: every reachable snapshot and manifest, read with the format layer --


@dataclass
class Held:
    """What one snapshot's manifests hold: native id -> length, inline bytes per manifest."""

    native: dict[bytes, int]
    inline: dict[str, int]


def _get(storage: ic.Storage, key: str) -> bytes:
    return _sync.run(storage.get(key))


def _held(storage: ic.Storage, snapshot_id: str) -> Held:
    snap = decode_snapshot(_get(storage, f"snapshots/{snapshot_id}"), snapshot_id, path="")
    native: dict[bytes, int] = {}
    inline: dict[str, int] = {}
    for mid in {m.manifest_id for n in snap.nodes for m in n.manifests}:
        manifest = decode_manifest(_get(storage, f"manifests/{mid}"), mid, path="")
        inline[mid] = 0
        for table in manifest.tables.values():
            for i in range(len(table)):
                ref = table.ref(i)
                if ref.kind == NATIVE:
                    native[ref.chunk_id] = ref.length
                elif ref.kind == INLINE:
                    inline[mid] += len(ref.data)
    return Held(native, inline)


def _reachable(repo: ic.Repository) -> dict[str, Held]:
    tips = [repo.lookup_branch(b) for b in repo.list_branches()]
    tips += [repo.lookup_tag(t) for t in repo.list_tags()]
    ids = {info.id for tip in tips for info in repo.ancestry(snapshot_id=tip)}
    return {sid: _held(repo._storage, sid) for sid in ids}


def _union(helds: list[Held]) -> Held:
    native: dict[bytes, int] = {}
    inline: dict[str, int] = {}
    for held in helds:
        native.update(held.native)
        inline.update(held.inline)
    return Held(native, inline)


def _storage_bytes(storage: ic.Storage, prefix: str) -> int:
    async def total() -> int:
        return sum([info.size async for info in storage.list(prefix)])

    return _sync.run(total())


# --- totals --------------------------------------------------------------------------------------


def test_every_reachable_chunk_counts_once(built: Built) -> None:
    stats = built.repo.chunk_storage_stats()
    assert isinstance(stats, ChunkStorageStats)
    # big: 16 chunks, then 1 rewritten on main and 1 on dev; small: 4, then 4 rewritten on dev.
    assert stats.native_bytes == (16 + 1 + 1) * BIG
    # Every chunk file is reachable here, so the listing agrees.
    assert stats.native_bytes == _storage_bytes(built.storage, "chunks/")
    everything = _union(list(_reachable(built.repo).values()))
    assert stats.native_bytes == sum(everything.native.values())
    assert stats.inlined_bytes == sum(everything.inline.values())
    assert stats.virtual_bytes == 0
    assert stats.non_virtual_bytes == stats.native_bytes + stats.inlined_bytes
    assert stats.total_bytes == stats.non_virtual_bytes
    assert _sync.run(built.repo.chunk_storage_stats_async()) == stats


def test_a_branch_or_tag_more_on_the_same_snapshots_adds_nothing(built: Built) -> None:
    before = built.repo.chunk_storage_stats()
    built.repo.create_branch("copy", built.dev)
    built.repo.create_tag("v2", built.second)
    assert built.repo.chunk_storage_stats() == before


def test_chunks_of_an_unreachable_snapshot_are_not_counted(built: Built) -> None:
    before = built.repo.chunk_storage_stats()
    built.repo.delete_branch("dev")
    after = built.repo.chunk_storage_stats()
    assert before.native_bytes - after.native_bytes == BIG  # dev's one new big chunk
    # dev's small table (4 inline chunks) lived in a manifest only dev named.
    assert before.inlined_bytes - after.inlined_bytes == 4 * SMALL


def test_inline_and_native_split_at_the_configured_threshold(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    _array(root, "at", (THRESHOLD * 3,), (THRESHOLD,), "u1")[:] = 1  # exactly the threshold
    _array(root, "over", (2 * (THRESHOLD + 1),), (THRESHOLD + 1,), "u1")[:] = 2
    session.commit("sizes")
    stats = repo.chunk_storage_stats()
    assert stats.inlined_bytes == 3 * THRESHOLD
    assert stats.native_bytes == 2 * (THRESHOLD + 1)
    arrays = {a.path: a.usage for a in repo.storage_stats(by="array").arrays}
    assert arrays == {
        "/at": ChunkUsage(chunks=3, inlined_bytes=3 * THRESHOLD),
        "/over": ChunkUsage(chunks=2, native_bytes=2 * (THRESHOLD + 1)),
    }


def test_an_empty_repository_has_nothing(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    assert repo.chunk_storage_stats() == ChunkStorageStats(0, 0, 0)
    report = repo.storage_stats()
    assert report.total == ChunkUsage()
    [root] = report.snapshots
    assert root.snapshot_id == repo.lookup_branch("main")
    assert root.refs == ("branch main",)
    assert root.usage == root.only_here == ChunkUsage()
    assert repo.storage_stats(by="array").arrays == ()
    [main] = repo.storage_stats(by="branch").refs
    assert (main.name, main.snapshots, main.usage) == ("main", 1, ChunkUsage())
    meta = report.metadata
    assert (meta.snapshots, meta.manifests, meta.transaction_logs) == (1, 0, 0)
    assert meta.snapshot_bytes == _storage_bytes(storage, "snapshots/")


# --- the views -----------------------------------------------------------------------------------


def test_array_view_at_a_revision(built: Built) -> None:
    def arrays(rev: str | None) -> dict[str, ChunkUsage]:
        report = built.repo.storage_stats(rev, by="array")
        return {a.path: a.usage for a in report.arrays}

    at_first = {
        "/big": ChunkUsage(chunks=16, native_bytes=16 * BIG),
        "/small": ChunkUsage(chunks=4, inlined_bytes=4 * SMALL),
    }
    assert arrays("v1") == at_first
    assert arrays(None) == arrays("main") == at_first  # main rewrote a chunk: same sizes
    assert built.repo.storage_stats(by="array").snapshot_id == built.second
    assert arrays(built.dev) == at_first


def test_snapshot_view_sizes_and_only_here_match_an_independent_count(built: Built) -> None:
    report = built.repo.storage_stats()
    held = _reachable(built.repo)
    assert {s.snapshot_id for s in report.snapshots} == set(held)
    times = [s.written_at for s in report.snapshots]
    assert times == sorted(times, reverse=True)
    for row in report.snapshots:
        mine = held[row.snapshot_id]
        others = _union([h for sid, h in held.items() if sid != row.snapshot_id])
        only = {cid: n for cid, n in mine.native.items() if cid not in others.native}
        only_inline = sum(n for mid, n in mine.inline.items() if mid not in others.inline)
        assert row.only_here.native_bytes == sum(only.values()), row.message
        assert row.only_here.inlined_bytes == only_inline, row.message
        # Every array here is read whole, so what a reader sees is what the manifests hold.
        assert row.usage.native_bytes == sum(mine.native.values()), row.message
        assert row.usage.inlined_bytes == sum(mine.inline.values()), row.message
    rows = {s.message: s for s in report.snapshots}
    assert rows["second"].only_here == ChunkUsage(chunks=1, native_bytes=BIG)
    # main rewrote a chunk of first, but dev (forked at first) still holds it.
    assert rows["first"].only_here == ChunkUsage()
    assert rows["on dev"].only_here == ChunkUsage(
        chunks=1 + 4, native_bytes=BIG, inlined_bytes=4 * SMALL
    )
    assert rows["first"].refs == ("tag v1",)
    assert rows["on dev"].refs == ("branch dev",)


def test_only_here_is_what_dropping_that_snapshot_releases(built: Built) -> None:
    """The chunks and inline bytes no longer reachable once dev's tip (no children) goes are
    exactly its ``only_here``: what gc would then delete."""
    row = next(s for s in built.repo.storage_stats().snapshots if s.snapshot_id == built.dev)
    before = _union(list(_reachable(built.repo).values()))
    built.repo.delete_branch("dev")
    after = _union(list(_reachable(built.repo).values()))
    freed = {cid: n for cid, n in before.native.items() if cid not in after.native}
    assert row.only_here.native_bytes == sum(freed.values()) == BIG
    freed_inline = sum(n for mid, n in before.inline.items() if mid not in after.inline)
    assert row.only_here.inlined_bytes == freed_inline == 4 * SMALL


def test_snapshot_view_limited_to_a_history(built: Built) -> None:
    report = built.repo.storage_stats("dev")
    assert report.snapshot_id == built.dev
    assert [s.message for s in report.snapshots] == ["on dev", "first", "Repository initialized"]


def test_branch_view_counts_a_history_once(built: Built) -> None:
    report = built.repo.storage_stats(by="branch")
    refs = {(r.kind, r.name): r for r in report.refs}
    assert list(refs) == [("branch", "dev"), ("branch", "main"), ("tag", "v1")]
    assert refs[("branch", "main")].snapshots == 3
    assert refs[("branch", "main")].usage == ChunkUsage(
        chunks=17 + 4, native_bytes=17 * BIG, inlined_bytes=4 * SMALL
    )
    assert refs[("branch", "dev")].usage == ChunkUsage(
        chunks=17 + 8, native_bytes=17 * BIG, inlined_bytes=8 * SMALL
    )
    assert refs[("tag", "v1")].usage == ChunkUsage(
        chunks=16 + 4, native_bytes=16 * BIG, inlined_bytes=4 * SMALL
    )
    held = _reachable(built.repo)
    for ref in report.refs:
        history = [i.id for i in built.repo.ancestry(snapshot_id=ref.snapshot_id)]
        mine = _union([held[s] for s in history])
        assert ref.usage.native_bytes == sum(mine.native.values())
        assert ref.usage.inlined_bytes == sum(mine.inline.values())
    assert report.total == ChunkUsage(chunks=18 + 8, native_bytes=18 * BIG, inlined_bytes=8 * SMALL)


def test_metadata_bytes_are_the_reachable_objects(built: Built) -> None:
    meta = built.repo.storage_stats().metadata
    assert (meta.snapshots, meta.transaction_logs) == (4, 3)
    # Nothing is unreachable yet, so the listings agree.
    assert meta.snapshot_bytes == _storage_bytes(built.storage, "snapshots/")
    assert meta.manifest_bytes == _storage_bytes(built.storage, "manifests/")
    assert meta.transaction_log_bytes == _storage_bytes(built.storage, "transactions/")
    assert (
        meta.total_bytes == meta.snapshot_bytes + meta.manifest_bytes + meta.transaction_log_bytes
    )


def test_progress_hears_each_phase(built: Built) -> None:
    heard: list[tuple[str, int, int]] = []
    built.repo.storage_stats(by="branch", progress=lambda *a: heard.append(a))
    phases = {p for p, _, _ in heard}
    assert phases == {"snapshots", "manifests", "refs"}
    assert max(d for p, d, _ in heard if p == "snapshots") == 4
    assert heard[-1] == ("refs", 3, 3)


def test_async_twin_and_bad_arguments(built: Built) -> None:
    report = _sync.run(built.repo.storage_stats_async(by="branch"))
    assert isinstance(report, StorageReport)
    assert report == built.repo.storage_stats(by="branch")
    with pytest.raises(ValueError, match="branch view"):
        built.repo.storage_stats("main", by="branch")
    with pytest.raises(ValueError, match="by must be one of"):
        built.repo.storage_stats(by="nodes")  # type: ignore[arg-type]
    with pytest.raises(ic.RevisionNotFoundError):
        built.repo.storage_stats("nope", by="array")
    with pytest.raises(ValueError, match="max_concurrent_manifest_fetches"):
        built.repo.chunk_storage_stats(max_concurrent_manifest_fetches=0)
    # Icechunk's limits are taken; one read at a time gives the same answer.
    assert (
        built.repo.chunk_storage_stats(
            max_snapshots_in_memory=1,
            max_compressed_manifest_mem_bytes=1,
            max_concurrent_manifest_fetches=1,
        )
        == built.repo.chunk_storage_stats()
    )


@pytest.mark.parametrize("by", ["array", "snapshot"])
def test_an_unreachable_revision_is_refused(built: Built, by: StorageView) -> None:
    built.repo.delete_branch("dev")
    with pytest.raises(ic.SnapshotNotFoundError, match="not reachable from any branch or tag"):
        built.repo.storage_stats(built.dev, by=by)


# --- damage --------------------------------------------------------------------------------------


def _a_manifest(built: Built) -> str:
    snap = decode_snapshot(_get(built.storage, f"snapshots/{built.second}"), built.second, path="")
    return snap.nodes[-1].manifests[0].manifest_id


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_damaged_manifest_is_an_integrity_error_naming_it(built: Built, damage: str) -> None:
    key = f"manifests/{_a_manifest(built)}"
    if damage == "deleted":
        _sync.run(built.storage.delete(key))
    else:
        _sync.run(built.storage.put(key, _get(built.storage, key)[:-7]))
    for call in (built.repo.chunk_storage_stats, built.repo.storage_stats):
        with pytest.raises(ic.IntegrityError, match=key):
            call()


def test_a_ref_to_a_missing_snapshot_is_an_integrity_error(built: Built) -> None:
    key = f"snapshots/{built.dev}"
    _sync.run(built.storage.delete(key))
    with pytest.raises(ic.IntegrityError, match=key):
        built.repo.chunk_storage_stats()


# --- virtual chunks ------------------------------------------------------------------------------


def test_virtual_chunks_count_once_per_location_and_range(storage: ic.Storage) -> None:
    """No public API writes virtual references yet, so one is written with the format layer:
    a snapshot whose array's manifest holds two virtual rows naming the same byte range, one
    naming another range, and one native row."""
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    _array(zarr.group(session.store), "v", (4, 16), (1, 16), "f8")[0] = 1.0
    base_id = session.commit("one native chunk")
    base = decode_snapshot(_get(storage, f"snapshots/{base_id}"), base_id, path="")
    [node] = [n for n in base.nodes if n.path == "/v"]
    [old] = node.manifests
    native = decode_manifest(
        _get(storage, f"manifests/{old.manifest_id}"), old.manifest_id, path=""
    )
    native_ref = native.tables[node.id].ref(0)
    url = "s3://bucket/data.nc"
    refs = [
        native_ref,
        ChunkRef(VIRTUAL, offset=0, length=1000, location=url),
        ChunkRef(VIRTUAL, offset=0, length=1000, location=url),
        ChunkRef(VIRTUAL, offset=1000, length=24, location=url),
    ]
    coords = np.array([[0], [1], [2], [3]])
    table = ChunkTable.from_refs(node.id, coords, refs)
    manifest = ManifestFile(new_object_id(), {node.id: table})
    _sync.run(storage.put(f"manifests/{manifest.id}", encode_manifest(manifest)))
    mref = ManifestRef(manifest.id, (0,), (3,), 4)
    nodes = tuple(
        msgspec.structs.replace(n, manifests=(mref,)) if n.id == node.id else n for n in base.nodes
    )
    snap = msgspec.structs.replace(
        base, id=new_object_id(), parent_id=base.id, written_at=base.written_at + 1, nodes=nodes
    )
    _sync.run(storage.put(f"snapshots/{snap.id}", encode_snapshot(snap)))
    repo.reset_branch("main", snap.id)

    stats = repo.chunk_storage_stats()
    assert stats == ChunkStorageStats(native_bytes=16 * 8, virtual_bytes=1000 + 24, inlined_bytes=0)
    assert stats.non_virtual_bytes == 16 * 8
    assert stats.total_bytes == 16 * 8 + 1024
    [array] = repo.storage_stats(by="array").arrays
    # A reader of the array sees four chunks; the repeated range is one stored range.
    assert array.usage == ChunkUsage(
        chunks=4, native_bytes=16 * 8, virtual_bytes=2024, virtual_chunks=3
    )
    tip = repo.storage_stats().snapshots[0]
    assert tip.snapshot_id == snap.id
    assert tip.only_here == ChunkUsage(chunks=2, virtual_bytes=1024, virtual_chunks=2)


# --- grouping ------------------------------------------------------------------------------------


def _groups(keys: list[np.ndarray]) -> list[tuple[int, ...]]:
    order, new = group_order(keys)
    rows = list(zip(*(k[order].tolist() for k in keys), strict=True))
    starts = np.flatnonzero(new).tolist()
    runs = [rows[a:b] for a, b in zip(starts, [*starts[1:], len(rows)], strict=True)]
    for run in runs:
        assert len(set(run)) == 1, run  # a run holds one key
    return [run[0] for run in runs]


def testgroup_order_puts_each_key_in_one_run() -> None:
    rng = np.random.default_rng(3)
    high = rng.integers(0, 2**64 - 1, 50, dtype=np.uint64, endpoint=True)[rng.integers(0, 50, 2000)]
    low = rng.integers(0, 3, 2000).astype(np.uint64)
    found = _groups([high, low])
    assert sorted(found) == sorted(set(zip(high.tolist(), low.tolist(), strict=True)))


def testgroup_order_survives_a_collision_of_its_mix() -> None:
    """Two distinct keys built to mix to the same 64-bit value still make two runs."""
    first = np.array([5, 9], dtype=np.uint64)
    mixed = mix([first, np.zeros(2, dtype=np.uint64)])
    second = np.array([0, (int(mixed[0]) - int(mixed[1])) % 2**64], dtype=np.uint64)
    assert mix([first, second])[0] == mix([first, second])[1]
    high = np.concatenate([first, first])
    low = np.concatenate([second, second])
    assert sorted(_groups([high, low])) == [(5, 0), (9, int(second[1]))]


def test_a_plain_total_folds_rows_to_distinct_chunks_as_it_goes() -> None:
    """Without per-manifest views, memory follows the distinct chunks, not the rows read."""
    column = ChunkRows(2, by_manifest=False)
    ids = np.arange(1000, dtype=np.uint64)
    per_manifest = COMPACT_ROWS // 4 + 1
    for manifest in range(8):  # the same 1000 chunks, again and again
        high = ids[np.arange(per_manifest) % 1000]
        column.add((high, high % 7), high + 1, manifest)
        assert column.pending <= COMPACT_ROWS + per_manifest
    assert column.pending < 8 * per_manifest
    groups = column.grouped()
    assert len(groups.starts) == 1000
    assert int(groups.lengths.sum()) == sum(range(1, 1001))
