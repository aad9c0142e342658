"""``Repository.verify``: a clean repository passes with exact counts; each damage is named.

Real repositories built through the public API (several commits, two branches, a tag,
inline and native chunks, an array split across manifests), then damaged through the
storage the way disks, backups and bugs do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import icechunk_lib as ic
from icechunk_lib import _sync
from icechunk_lib.format.manifest import NATIVE, ManifestFile
from icechunk_lib.format.manifest_codec import decode_manifest, encode_manifest
from icechunk_lib.format.snapshot import decode_snapshot
from icechunk_lib.objects import chunk_key
from icechunk_lib.ops.verify import Problem, VerifyReport

CONFIG = ic.RepositoryConfig(
    inline_chunk_threshold_bytes=64, manifest=ic.ManifestConfig(max_refs_per_manifest=4)
)


@dataclass
class Built:
    repo: ic.Repository
    storage: ic.Storage
    first: str
    """The commit tagged ``v1`` (the parent of main's tip)."""
    tip: str
    """main's tip."""
    dev: str
    """The tip of branch ``dev``."""


def _build(storage: ic.Storage) -> Built:
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    # 16 chunks of 512 bytes, native, split across manifests of at most 4 refs.
    big = root.create_array("big", shape=(16, 64), chunks=(4, 16), dtype="f8", fill_value=0)
    big[:] = np.random.default_rng(0).random((16, 64))
    small = root.create_array("small", shape=(8,), chunks=(2,), dtype="i4", fill_value=0)
    small[:] = np.arange(8)  # 8-byte chunks: inline
    first = session.commit("first")
    repo.create_tag("v1", first)

    session = repo.writable_session("main")
    zarr.open_array(session.store, path="big")[:4, :16] = np.random.default_rng(1).random((4, 16))
    tip = session.commit("second")

    repo.create_branch("dev", first)
    session = repo.writable_session("dev")
    zarr.open_array(session.store, path="small")[:2] = 9
    dev = session.commit("on dev")
    return Built(repo, storage, first, tip, dev)


@pytest.fixture
def built(storage: ic.Storage) -> Built:
    return _build(storage)


def _keys(storage: ic.Storage, prefix: str) -> list[str]:
    async def collect() -> list[str]:
        return sorted([info.key async for info in storage.list(prefix)])

    return _sync.run(collect())


def _get(storage: ic.Storage, key: str) -> bytes:
    return _sync.run(storage.get(key))


def _put(storage: ic.Storage, key: str, data: bytes) -> None:
    _sync.run(storage.put(key, data))


def _delete(storage: ic.Storage, key: str) -> None:
    _sync.run(storage.delete(key))


def _manifest_ids(storage: ic.Storage, snapshot_id: str, array: str) -> list[str]:
    key = f"snapshots/{snapshot_id}"
    snap = decode_snapshot(_get(storage, key), snapshot_id, path=key)
    node = next(n for n in snap.nodes if n.path == f"/{array}")
    return [m.manifest_id for m in node.manifests]


def _native_chunks(storage: ic.Storage, manifest_id: str) -> list[tuple[str, int]]:
    """(key, length) of each native chunk of a manifest."""
    key = f"manifests/{manifest_id}"
    manifest = decode_manifest(_get(storage, key), manifest_id, path=key)
    found = []
    for table in manifest.tables.values():
        for row in range(len(table)):
            ref = table.ref(row)
            if ref.kind == NATIVE:
                found.append((chunk_key(ref.chunk_id), ref.length))
    return found


def _only(report: VerifyReport) -> Problem:
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``root``: content digest and modification time."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- a clean repository ---------------------------------------------------------------------


def test_clean_repository_verifies_with_exact_counts(built: Built) -> None:
    storage = built.storage
    report = built.repo.verify()
    assert report.ok and report.problems == ()
    assert report.refs == 3  # main, dev, v1
    # Nothing unreachable was written, so every stored object is one verify reached.
    snapshots = _keys(storage, "snapshots/")
    assert len(snapshots) == 4  # the initial commit, first, second, on dev
    assert report.snapshots == len(snapshots)
    assert report.transaction_logs == len(_keys(storage, "transactions/")) == 3
    assert report.manifests == len(_keys(storage, "manifests/"))
    assert len(_manifest_ids(storage, built.tip, "big")) == 4  # 16 chunks, 4 per manifest
    assert report.chunks == len(_keys(storage, "chunks/")) == 16 + 1  # "second" rewrote one
    assert not report.data


def test_clean_repository_verifies_with_data(built: Built) -> None:
    report = built.repo.verify(data=True)
    assert report.ok and report.data
    assert report.chunks == 17


def test_verify_async_matches_sync(built: Built) -> None:
    assert _sync.run(built.repo.verify_async()) == built.repo.verify()


def test_no_repository_raises(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    _delete(storage, "refs/branch/main/ref")
    with pytest.raises(ic.RepositoryNotFoundError):
        repo.verify()


# --- each damage, named -----------------------------------------------------------------------


def test_deleted_chunk(built: Built) -> None:
    manifest_id = _manifest_ids(built.storage, built.tip, "big")[-1]
    key, _ = _native_chunks(built.storage, manifest_id)[0]
    _delete(built.storage, key)
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key, problem.message) == ("chunk", key, "missing")
    assert problem.reached_from == f"manifest {manifest_id}"


def test_truncated_manifest(built: Built) -> None:
    manifest_id = _manifest_ids(built.storage, built.tip, "big")[1]
    key = f"manifests/{manifest_id}"
    _put(built.storage, key, _get(built.storage, key)[:-10])
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key) == ("manifest", key)
    assert "cannot be read" in problem.message and "truncated" in problem.message
    assert problem.reached_from.startswith("snapshot ")


def test_flipped_byte_in_snapshot(built: Built) -> None:
    key = f"snapshots/{built.first}"
    data = bytearray(_get(built.storage, key))
    data[len(data) // 2] ^= 0x01
    _put(built.storage, key, bytes(data))
    report = built.repo.verify()
    # Named once, from the ref that reached it first, though two children name it too.
    problem = _only(report)
    assert (problem.kind, problem.key, problem.reached_from) == ("snapshot", key, "tag v1")
    assert "checksum" in problem.message
    # Its parent is named only by the damaged snapshot, so it is not reached.
    assert report.snapshots == 3


def _dangling(repo: ic.Repository, storage: ic.Storage, *refs: tuple[str, str]) -> str:
    """Point new refs (kind, name) at a new snapshot, then delete that snapshot (as a wrong
    restore or a buggy cleaner would); return its id."""
    repo.create_branch("scratch", repo.lookup_branch("main"))
    session = repo.writable_session("scratch")
    zarr.open_array(session.store, path="small")[:] = 3
    lost = session.commit("only the dangling refs name this")
    for kind, name in refs:
        (repo.create_branch if kind == "branch" else repo.create_tag)(name, lost)
    repo.delete_branch("scratch")
    _delete(storage, f"snapshots/{lost}")
    return lost


@pytest.mark.parametrize("ref", ["branch", "tag"])
def test_dangling_ref(built: Built, ref: str) -> None:
    missing = _dangling(built.repo, built.storage, (ref, "lost"))
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key) == ("ref", f"refs/{ref}/lost/ref")
    assert problem.reached_from == f"{ref} lost"
    assert problem.message == f"names snapshot {missing}, which does not exist"


def test_every_ref_naming_a_missing_snapshot_is_reported(built: Built) -> None:
    missing = _dangling(built.repo, built.storage, ("branch", "b"), ("tag", "t"))
    report = built.repo.verify()
    assert [(p.kind, p.key, p.reached_from, p.message) for p in report.problems] == [
        ("ref", key, via, f"names snapshot {missing}, which does not exist")
        for key, via in (("refs/branch/b/ref", "branch b"), ("refs/tag/t/ref", "tag t"))
    ]


def test_undecodable_ref(built: Built) -> None:
    key = "refs/branch/dev/ref"
    _put(built.storage, key, b"not a ref")
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key, problem.reached_from) == ("ref", key, "branch dev")
    assert "cannot be read" in problem.message


def test_changed_chunk_bytes_found_only_with_data(built: Built) -> None:
    manifest_id = _manifest_ids(built.storage, built.tip, "big")[2]
    key, length = _native_chunks(built.storage, manifest_id)[0]
    data = bytearray(_get(built.storage, key))
    data[0] ^= 0xFF  # same length, other content
    _put(built.storage, key, bytes(data))
    assert len(data) == length
    assert built.repo.verify().ok  # sizes alone cannot see it
    problem = _only(built.repo.verify(data=True))
    assert (problem.kind, problem.key) == ("chunk", key)
    assert "checksum" in problem.message


def test_shortened_chunk_found_without_data(built: Built) -> None:
    manifest_id = _manifest_ids(built.storage, built.tip, "big")[2]
    key, length = _native_chunks(built.storage, manifest_id)[0]
    _put(built.storage, key, _get(built.storage, key)[:-1])
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key) == ("chunk", key)
    assert problem.message == f"has {length - 1} bytes, the manifest records {length} at 0"


def test_missing_extra_object_chunk(built: Built) -> None:
    # A non-Zarr key too big to inline is kept in chunks/ and named by the snapshot.
    session = built.repo.writable_session("main")
    notes = default_buffer_prototype().buffer.from_bytes(bytes(range(200)))
    _sync.run(session.store.set("notes.bin", notes))
    tip = session.commit("notes")
    key = f"snapshots/{tip}"
    (extra,) = decode_snapshot(_get(built.storage, key), tip, path=key).extras
    assert extra.chunk_id
    assert built.repo.verify().chunks == 17 + 1
    _delete(built.storage, chunk_key(extra.chunk_id))
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key) == ("chunk", chunk_key(extra.chunk_id))
    assert (problem.reached_from, problem.message) == (f"snapshot {tip}", "missing")


def test_missing_transaction_log(built: Built) -> None:
    key = f"transactions/{built.tip}"
    _delete(built.storage, key)
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key, problem.message) == ("transaction_log", key, "missing")
    assert problem.reached_from == f"snapshot {built.tip}"


def test_manifest_copied_under_another_id(built: Built) -> None:
    first, second = _manifest_ids(built.storage, built.tip, "big")[:2]
    _put(built.storage, f"manifests/{second}", _get(built.storage, f"manifests/{first}"))
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key) == ("manifest", f"manifests/{second}")
    assert first in problem.message and second in problem.message


def test_manifest_disagreeing_with_its_snapshot(built: Built) -> None:
    # A well-formed manifest under its own id that lost a row: only the snapshot's manifest
    # refs (count and coordinate range of each piece) can tell.
    manifest_id = _manifest_ids(built.storage, built.tip, "big")[1]
    assert manifest_id in _manifest_ids(built.storage, built.dev, "big")
    key = f"manifests/{manifest_id}"
    manifest = decode_manifest(_get(built.storage, key), manifest_id, path=key)
    ((node_id, table),) = manifest.tables.items()
    shorter = table.take(np.arange(len(table) - 1))
    _put(built.storage, key, encode_manifest(ManifestFile(manifest_id, {node_id: shorter})))
    # Three snapshots name it with the same range: one problem, not one per snapshot.
    problem = _only(built.repo.verify())
    assert (problem.kind, problem.key) == ("manifest", key)
    first, last = shorter.first_coords(), table.last_coords()
    assert problem.message == (
        f"array node {node_id}: holds {len(table) - 1} chunks from {first} to "
        f"{shorter.last_coords()}, the snapshot records {len(table)} from {first} to {last}"
    )


def test_several_damages_all_reported(built: Built) -> None:
    storage = built.storage
    manifest_ids = _manifest_ids(storage, built.tip, "big")
    chunk, _ = _native_chunks(storage, manifest_ids[-1])[0]
    _delete(storage, chunk)
    truncated = f"manifests/{manifest_ids[1]}"
    _put(storage, truncated, _get(storage, truncated)[:20])
    _delete(storage, f"transactions/{built.dev}")
    _dangling(built.repo, storage, ("tag", "lost"))
    report = built.repo.verify()
    assert not report.ok
    assert sorted((p.kind, p.key) for p in report.problems) == sorted(
        [
            ("chunk", chunk),
            ("manifest", truncated),
            ("transaction_log", f"transactions/{built.dev}"),
            ("ref", "refs/tag/lost/ref"),
        ]
    )
    # Everything else was still checked.
    assert report.snapshots == 5 and report.refs == 4


def test_verify_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    built = _build(ic.local_filesystem_storage(root))
    _delete(built.storage, f"transactions/{built.tip}")  # damage is only reported, not fixed
    before = _tree(root)
    assert not built.repo.verify(data=True).ok
    assert not built.repo.verify().ok
    assert _tree(root) == before


def test_problem_names_object_and_damage() -> None:
    problem = Problem("chunk", "chunks/ABC", "manifest XYZ", "missing")
    assert str(problem) == "chunk chunks/ABC (from manifest XYZ): missing"
