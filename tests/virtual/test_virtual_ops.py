"""Maintenance with virtual chunks: storage statistics, ``ls -l`` counts, gc and expiration
leave the sources alone, and verify checks what it can without reading them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import numpy as np
import pytest
import zarr
from virtual_mixed import CHUNKS, SHAPE, Mixed, build, chunk_ref, files_state, later

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.format import content_checksum
from icechunk_lib.format.ids import new_object_id
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL, ChunkRef, ChunkTable, ManifestFile
from icechunk_lib.format.manifest_codec import decode_manifest, encode_manifest
from icechunk_lib.format.snapshot import ManifestRef, decode_snapshot, encode_snapshot
from icechunk_lib.ops.stats import ChunkStorageStats
from icechunk_lib.session import workspace_of


@pytest.fixture
def mixed(tmp_path: Path) -> Mixed:
    return build(tmp_path)


def _sizes(m: Mixed) -> tuple[int, int]:
    """(native bytes, inline bytes) of the first commit's rows 0 and 1."""
    session = m.repo.readonly_session("main")
    native, inline = chunk_ref(session, "/mixed", (0, 0)), chunk_ref(session, "/mixed", (1, 0))
    assert native is not None and inline is not None
    assert (native.kind, inline.kind) == (NATIVE, INLINE)
    return native.length, inline.length


# --- statistics ----------------------------------------------------------------------------------


def test_stats_count_a_range_once_across_snapshots_and_arrays(mixed: Mixed) -> None:
    (o2, l2), (_, l3) = mixed.ranges
    native, inline = _sizes(mixed)
    first = mixed.repo.chunk_storage_stats()
    assert first == ChunkStorageStats(native, l2 + l3, inline)

    # A second array names one of the same ranges, and one range of its own; the first
    # commit stays reachable through a tag.
    mixed.repo.create_tag("v1", mixed.first)
    session = mixed.repo.writable_session("main")
    zarr.create_array(session.store, name="other", shape=(3,), chunks=(1,), dtype="f8")
    session.store.set_virtual_ref("other/c/0", mixed.blob, offset=o2, length=l2)
    session.store.set_virtual_ref("other/c/1", mixed.blob, offset=0, length=10)
    session.commit("another array over the same file")

    stats = mixed.repo.chunk_storage_stats()
    assert stats == ChunkStorageStats(native, l2 + l3 + 10, inline)
    assert stats.total_bytes == native + inline + l2 + l3 + 10
    report = mixed.repo.storage_stats(by="branch")
    assert report.total.virtual_chunks == 3 and report.total.virtual_bytes == l2 + l3 + 10
    assert report.total.chunks == 2 + 3  # one native, one inline, three distinct ranges
    by_ref = {r.name: r.usage for r in report.refs}
    assert (by_ref["v1"].virtual_chunks, by_ref["v1"].virtual_bytes) == (2, l2 + l3)
    assert (by_ref["main"].virtual_chunks, by_ref["main"].virtual_bytes) == (3, l2 + l3 + 10)
    # Per array, what a reader of each sees (the shared range is in both).
    arrays = {a.path: a.usage for a in mixed.repo.storage_stats(by="array").arrays}
    assert arrays["/other"].virtual_bytes == l2 + 10 and arrays["/other"].virtual_chunks == 2
    assert arrays["/mixed"].virtual_bytes == l2 + l3 and arrays["/mixed"].chunks == 4
    # Only the new range is the tip's own: the shared one is held by the tagged snapshot too.
    tip = mixed.repo.storage_stats().snapshots[0]
    assert (tip.only_here.virtual_chunks, tip.only_here.virtual_bytes) == (1, 10)


def test_stats_count_a_ref_remade_with_another_etag_once(mixed: Mixed) -> None:
    """The same byte range of the same object, referenced again after the object changed
    (another ETag or update time), is one range of storage, as Icechunk counts it."""
    (o2, l2), (o3, l3) = mixed.ranges
    native, inline = _sizes(mixed)
    mixed.repo.create_tag("v1", mixed.first)
    session = mixed.repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=o2, length=l2, checksum='"e2"')
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    session.store.set_virtual_ref("mixed/c/3/0", mixed.blob, offset=o3, length=l3, checksum=when)
    session.commit("references remade")
    # The array's new manifest holds its own copy of the inline chunk.
    assert mixed.repo.chunk_storage_stats() == ChunkStorageStats(native, l2 + l3, 2 * inline)
    assert mixed.repo.storage_stats(by="branch").total.virtual_chunks == 2

    # Another length of the same offset is another range.
    session = mixed.repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=o2, length=l2 - 1)
    session.commit("shorter")
    stats = mixed.repo.chunk_storage_stats()
    assert stats.virtual_bytes == l2 + l3 + l2 - 1


def test_stats_after_expire_and_gc_count_only_what_is_reachable(mixed: Mixed) -> None:
    o2, l2 = mixed.ranges[0]
    session = mixed.repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/3/0", mixed.blob, offset=o2, length=l2)
    session.commit("row 3 now names row 2's range")
    # Both rows name one range: it counts once, and row 3's old range went with the history.
    mixed.repo.expire_snapshots(later())
    mixed.repo.garbage_collect(later())
    stats = mixed.repo.chunk_storage_stats()
    assert stats.virtual_bytes == l2
    assert mixed.repo.storage_stats(by="branch").total.virtual_chunks == 1


# --- ls -l ---------------------------------------------------------------------------------------


def test_list_nodes_counts_chunks_by_kind(mixed: Mixed) -> None:
    (_, l2), (_, l3) = mixed.ranges
    native, inline = _sizes(mixed)
    [info] = mixed.repo.readonly_session("main").list_nodes(stats=True)
    assert (info.native_chunks, info.inline_chunks, info.virtual_chunks) == (1, 1, 2)
    assert info.chunks_written == 4
    assert info.virtual_bytes == l2 + l3
    assert info.bytes_written == native + inline + l2 + l3
    # Without stats nothing is counted.
    [bare] = mixed.repo.readonly_session("main").list_nodes()
    assert bare.virtual_chunks is None and bare.native_chunks is None

    # Uncommitted changes are counted too: one virtual chunk replaced by a native one, and a
    # native one by a virtual one.
    session = mixed.repo.writable_session("main")
    array = zarr.open_array(session.store, path="mixed")
    array[2] = mixed.values[2]
    session.store.set_virtual_ref("mixed/c/0/0", mixed.blob, offset=0, length=5)
    [pending] = session.list_nodes(stats=True)
    assert (pending.native_chunks, pending.inline_chunks, pending.virtual_chunks) == (1, 1, 2)
    assert pending.virtual_bytes == 5 + l3
    session.commit("swap kinds")
    [after] = mixed.repo.readonly_session("main").list_nodes(stats=True)
    assert (after.native_chunks, after.inline_chunks, after.virtual_chunks) == (1, 1, 2)
    assert after.virtual_bytes == 5 + l3


# --- gc and expiration ---------------------------------------------------------------------------


@pytest.mark.parametrize("inside", [False, True], ids=["beside", "inside-the-repository"])
def test_gc_and_expire_never_touch_sources_and_refs_survive(tmp_path: Path, inside: bool) -> None:
    """The sources live beside the repository, or in a directory inside it: either way
    gc deletes only the repository's own unreachable objects."""
    m = build(tmp_path, sources_inside_repo=inside)
    # A branch whose only commit holds refs no other snapshot has, then deleted.
    m.repo.create_branch("scratch", m.first)
    session = m.repo.writable_session("scratch")
    session.store.set_virtual_ref("mixed/c/0/0", m.blob, offset=1, length=7)
    zarr.open_array(session.store, path="mixed")[1] = 3.0
    session.commit("scratch work")
    m.repo.delete_branch("scratch")
    # More history on main, then all of it but the tip expired.
    for row in (0, 1):
        session = m.repo.writable_session("main")
        zarr.open_array(session.store, path="mixed")[row] = m.values[row] + 1
        session.commit(f"rewrite row {row}")
    before = files_state(m.sources)
    assert before  # the blob

    expired = m.repo.expire_snapshots(later())
    assert m.first in expired
    summary = m.repo.garbage_collect(later())
    assert summary.snapshots_deleted >= 2 and summary.chunks_deleted >= 1

    assert files_state(m.sources) == before  # same files, bytes and modification times
    session = m.open().readonly_session("main")
    for row, (offset, length) in zip((2, 3), m.ranges, strict=True):
        ref = chunk_ref(session, "/mixed", (row, 0))
        assert ref is not None
        assert (ref.kind, ref.location, ref.offset, ref.length) == (VIRTUAL, m.blob, offset, length)
    # Every chunk reads back: the rewritten rows, and the virtual ones from the sources.
    values = zarr.open_array(session.store, path="mixed", mode="r")[:]
    np.testing.assert_array_equal(values[0:2], m.values[0:2] + 1)
    np.testing.assert_array_equal(values[2:], m.values[2:])
    assert m.repo.verify(data=True).ok
    # A second run finds nothing more to delete, and still leaves the sources alone.
    assert m.repo.garbage_collect(later(), full=True).chunks_deleted == 0
    assert files_state(m.sources) == before


# --- verify --------------------------------------------------------------------------------------


def test_verify_checks_virtual_refs_without_reading_sources(mixed: Mixed) -> None:
    report = mixed.repo.verify(data=True)
    assert report.ok, report.problems
    assert (report.virtual_chunks, report.virtual_locations) == (2, 1)
    array = zarr.open_array(mixed.open().readonly_session("main").store, path="mixed", mode="r")
    np.testing.assert_array_equal(array[:], mixed.values)
    assert report.chunks == 1  # the native chunk: virtual ones are not repository objects
    # The sources are not read: verify is as happy with them gone.
    (mixed.sources / "blob.bin").unlink()
    report = mixed.open().verify(data=True)
    assert report.ok and report.virtual_chunks == 2


def test_verify_reports_a_ref_no_declared_container_holds(mixed: Mixed) -> None:
    session = mixed.repo.writable_session("main")
    undeclared = "s3://elsewhere/data/x.nc"
    zarr.create_array(session.store, name="loose", shape=(4,), chunks=(1,), dtype="f8")
    for i in range(3):
        session.store.set_virtual_ref(
            f"loose/c/{i}", undeclared, offset=8 * i, length=8, validate_container=False
        )
    session.commit("refs outside every container")
    report = mixed.repo.verify()
    assert not report.ok
    [problem] = report.problems
    assert (problem.kind, problem.key) == ("virtual_chunk", undeclared)
    assert problem.reached_from.startswith("manifest ")
    assert "3 chunk(s)" in problem.message
    assert "no virtual chunk container" in problem.message and mixed.prefix in problem.message
    assert "set_virtual_chunk_container" in problem.message
    assert report.virtual_locations == 2 and report.virtual_chunks == 5
    # Declaring a container for it (in the config in effect) settles it.
    config = mixed.repo.config
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer("s3://elsewhere/", ic.s3_store(region="us-east-1"))
    )
    storage = ic.local_filesystem_storage(str(mixed.repo_path))
    assert ic.Repository.open(storage, config).verify().ok


def _put_manifest_rows(m: Mixed, refs: list[ChunkRef]) -> str:
    """Commit, through the format layer, a snapshot whose ``/mixed`` holds ``refs`` at rows
    0.. (what no checked API writes: damage to report)."""
    storage = ic.local_filesystem_storage(str(m.repo_path))

    def get(key: str) -> bytes:
        return _sync.run(storage.get(key))

    tip = m.repo.lookup_branch("main")
    base = decode_snapshot(get(f"snapshots/{tip}"), tip, path="")
    [node] = [n for n in base.nodes if n.path == "/mixed"]
    coords = np.array([[i, 0] for i in range(len(refs))])
    table = ChunkTable.from_refs(node.id, coords, refs)
    manifest = ManifestFile(new_object_id(), {node.id: table})
    _sync.run(storage.put(f"manifests/{manifest.id}", encode_manifest(manifest)))
    mref = ManifestRef(manifest.id, (0, 0), (len(refs) - 1, 0), len(refs))
    nodes = tuple(
        msgspec.structs.replace(n, manifests=(mref,)) if n.id == node.id else n for n in base.nodes
    )
    snap = msgspec.structs.replace(
        base, id=new_object_id(), parent_id=base.id, written_at=base.written_at + 1, nodes=nodes
    )
    _sync.run(storage.put(f"snapshots/{snap.id}", encode_snapshot(snap)))
    m.repo.reset_branch("main", snap.id)
    assert decode_manifest(get(f"manifests/{manifest.id}"), manifest.id, path="")
    return manifest.id


def test_verify_reports_malformed_locations_and_ranges_once_each(mixed: Mixed) -> None:
    escaping = mixed.prefix + "../secrets/x.nc"
    good = mixed.blob
    refs = [
        ChunkRef(VIRTUAL, offset=0, length=8, location=escaping),
        ChunkRef(VIRTUAL, offset=8, length=8, location=escaping),
        ChunkRef(VIRTUAL, offset=2**64 - 10, length=100, location=good),
        ChunkRef(VIRTUAL, offset=0, length=8, location=good),
    ]
    manifest_id = _put_manifest_rows(mixed, refs)
    report = mixed.repo.verify()
    # (The hand-made snapshot has no transaction log: verify says so too.)
    found = sorted(
        (p.kind, p.key, p.reached_from) for p in report.problems if p.kind != "transaction_log"
    )
    via = f"manifest {manifest_id}"
    assert found == [("virtual_chunk", escaping, via), ("virtual_chunk", good, via)]
    messages = {p.key: p.message for p in report.problems if p.kind == "virtual_chunk"}
    assert "2 chunk(s)" in messages[escaping] and "'..'" in messages[escaping]
    assert "1 chunk(s)" in messages[good] and "past byte 2**64-1" in messages[good]
    assert all(p.kind != "chunk" for p in report.problems)


# --- commit --from -------------------------------------------------------------------------------


def test_import_never_takes_a_virtual_checksum_for_a_content_checksum(
    mixed: Mixed, tmp_path: Path
) -> None:
    """A virtual chunk's checksum is its source's update time: even one equal to the xxh3
    of the imported chunk (made so here, through the format layer) does not make the
    importer skip that chunk as unchanged."""
    plain = tmp_path / "plain"
    array = zarr.create_array(
        zarr.storage.LocalStore(plain), name="mixed", shape=SHAPE, chunks=CHUNKS, dtype="f8"
    )
    array[:] = mixed.values
    encoded = (plain / "mixed" / "c" / "2" / "0").read_bytes()
    session = mixed.repo.readonly_session("main")
    refs = [chunk_ref(session, "/mixed", (row, 0)) for row in range(4)]
    assert all(r is not None for r in refs)
    refs[2] = ChunkRef(
        VIRTUAL,
        offset=mixed.ranges[0][0],
        length=len(encoded),
        checksum=content_checksum(encoded),
        location=mixed.blob,
    )
    _put_manifest_rows(mixed, [r for r in refs if r is not None])

    session = mixed.repo.writable_session("main")
    stats = ic.import_zarr(session, plain)
    # Rows 0 and 1 hold the same bytes; both virtual rows are replaced by the source's.
    assert stats.chunks_written == 2 and stats.chunks_unchanged == 2
    # (Before the import, row 2 could not be read: its checksum is not a real update time
    # of the blob, so the read refuses the source as changed since.)
    written = chunk_ref(session, "/mixed", (2, 0))
    assert written is not None and written.kind == NATIVE
    session.commit("imported")
    values = zarr.open_array(mixed.repo.readonly_session("main").store, path="mixed", mode="r")
    np.testing.assert_array_equal(values[:], mixed.values)


# --- what manifests keep -------------------------------------------------------------------------


def _table(m: Mixed) -> ChunkTable:
    ws = workspace_of(m.repo.readonly_session("main"))

    async def go() -> ChunkTable:
        node = (await ws.nodes())["/mixed"]
        [mref] = node.manifests
        return (await ws.objects.manifest(mref.manifest_id)).tables[node.id]

    return _sync.run(go())


def test_a_manifest_keeps_only_the_locations_its_chunks_name(mixed: Mixed) -> None:
    """Re-pointing chunks must not leave every former location in the array's manifest
    (read by stats, verify and all_virtual_chunk_locations, and written on every commit)."""
    for i in range(4):
        session = mixed.repo.writable_session("main")
        location = mixed.prefix + f"f{i}.bin"
        session.store.set_virtual_ref("mixed/c/2/0", location, offset=0, length=10, checksum='"x"')
        session.commit(f"row 2 in f{i}.bin")
    table = _table(mixed)
    assert sorted(table.locations) == [mixed.blob, mixed.prefix + "f3.bin"]
    assert sorted(table.location_etags) == ["", '"x"']
    refs = [table.ref(i) for i in range(len(table))]
    assert [(r.kind, r.location, r.etag) for r in refs[2:]] == [
        (VIRTUAL, mixed.prefix + "f3.bin", '"x"'),
        (VIRTUAL, mixed.blob, ""),
    ]
    # verify covers the whole history: the blob and f0..f3, each once.
    assert mixed.repo.verify().virtual_locations == 5
    # The last ETag gone: the manifest keeps no ETag column.
    session = mixed.repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=0, length=10)
    session.commit("row 2 back in the blob")
    table = _table(mixed)
    # (Rows merged from the base and from the change may each keep their own entry.)
    assert set(table.locations) == {mixed.blob} and table.location_etags == []
    assert [r.kind for r in map(table.ref, range(len(table)))] == [NATIVE, INLINE, VIRTUAL, VIRTUAL]
