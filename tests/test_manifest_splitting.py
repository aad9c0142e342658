"""Manifest splitting applied at commit, reads that fetch only the pieces they need, and
``Repository.rewrite_manifests``; manifest reads and writes are counted on real storage."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import msgspec
import numpy as np
import pytest
import zarr
from faulty_storage import Call, FaultyStorage

import icechunk_lib as ic
from icechunk_lib.errors import UnsupportedFormatError
from icechunk_lib.format import ObjectKind, decode_object
from icechunk_lib.format.snapshot import (
    ManifestRef,
    NodeSnapshot,
    RegionRef,
    Snapshot,
    encode_snapshot,
)
from icechunk_lib.objects import MANIFESTS, SNAPSHOTS, ObjectStore

S = ic.ManifestSplitCondition
D = ic.ManifestSplitDimCondition

GRID = (20, 20)
"""Chunks of the test array ``/t``: one element per chunk, so chunk = element index."""
VALUES = np.arange(400, dtype="i4").reshape(GRID) + 1


def _splitting(rows: int, cols: int, name: str = "^t$") -> ic.ManifestSplittingConfig:
    return ic.ManifestSplittingConfig.from_dict(
        {S.name_matches(name): {D.Axis(0): rows, D.Axis(1): cols}}
    )


def _config(splitting: ic.ManifestSplittingConfig | None) -> ic.RepositoryConfig:
    return ic.RepositoryConfig(manifest=ic.ManifestConfig(splitting=splitting))


def _repo(storage: ic.Storage, splitting: ic.ManifestSplittingConfig | None) -> ic.Repository:
    """A repository holding ``/t`` (split when ``splitting`` matches it) and ``/u`` (never)."""
    repo = ic.Repository.create(storage, _config(splitting))
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    for name in ("t", "u"):
        arr = root.create_array(name, shape=GRID, chunks=(1, 1), dtype="i4", fill_value=0)
        arr[:] = VALUES
    session.commit("arrays")
    return repo


def _objects(repo: ic.Repository) -> ObjectStore:
    """The repository's objects through fresh caches."""
    return ObjectStore(repo.storage, repo.config)


def _node(repo: ic.Repository, path: str, snapshot_id: str | None = None) -> NodeSnapshot:
    sid = snapshot_id or repo.lookup_branch("main")
    snap = asyncio.run(_objects(repo).snapshot(sid))
    (node,) = [n for n in snap.nodes if n.path == path]
    return node


def _manifest_reads(storage: FaultyStorage) -> set[str]:
    return {c.key for c in storage.calls if c.method == "get" and c.key.startswith(MANIFESTS)}


def _manifest_writes(storage: FaultyStorage) -> set[str]:
    return {
        c.key for c in storage.calls if c.method.startswith("put") and c.key.startswith(MANIFESTS)
    }


def _read(storage: ic.Storage, path: str = "t") -> zarr.Array:
    """The array at ``path`` on main, through a fresh repository (cold caches)."""
    return zarr.open_array(
        ic.Repository.open(storage).readonly_session("main").store, path=path, mode="r"
    )


def test_a_matching_array_is_cut_by_region_and_others_keep_row_major_ranges(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage, _splitting(4, 5))
    pieces = _node(repo, "/t").manifests
    assert len(pieces) == 5 * 4 and all(type(p) is RegionRef for p in pieces)
    for piece in pieces:
        assert isinstance(piece, RegionRef)
        lo, hi = np.array(piece.lower), np.array(piece.upper)
        assert (lo // (4, 5) == hi // (4, 5)).all()  # one region each
        assert piece.count == int(np.prod(hi - lo + 1)) == 20
    assert [type(p) for p in _node(repo, "/u").manifests] == [ManifestRef]
    np.testing.assert_array_equal(_read(storage)[:], VALUES)
    np.testing.assert_array_equal(_read(storage, "u")[:], VALUES)


def test_a_snapshot_with_region_pieces_is_refused_by_a_version_2_reader(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage, _splitting(4, 5))
    sid = repo.lookup_branch("main")
    data = asyncio.run(storage.get(SNAPSHOTS + sid))
    assert data[4:6] == (3).to_bytes(2, "little")
    with pytest.raises(UnsupportedFormatError, match="version 3"):
        decode_object(data, ObjectKind.SNAPSHOT, Snapshot, object_id=sid, path="p")
    plain = _repo(ic.in_memory_storage(), None)
    data = asyncio.run(plain.storage.get(SNAPSHOTS + plain.lookup_branch("main")))
    assert data[4:6] == (2).to_bytes(2, "little")


def test_a_region_read_fetches_only_the_manifests_covering_it(storage: ic.Storage) -> None:
    repo = _repo(storage, _splitting(4, 5))
    pieces = _node(repo, "/t").manifests
    counting = FaultyStorage(storage)
    arr = _read(counting)
    counting.reset()
    np.testing.assert_array_equal(arr[4:8, 5:10], VALUES[4:8, 5:10])
    (covering,) = [p for p in pieces if isinstance(p, RegionRef) and p.lower == (4, 5)]
    assert _manifest_reads(counting) == {MANIFESTS + covering.manifest_id}
    counting.reset()
    np.testing.assert_array_equal(arr[2:6, 9:11], VALUES[2:6, 9:11])  # four regions
    wanted = {
        MANIFESTS + p.manifest_id
        for p in pieces
        if isinstance(p, RegionRef) and p.lower[0] in (0, 4) and p.lower[1] in (5, 10)
    }
    assert len(wanted) == 4
    assert _manifest_reads(counting) <= wanted
    assert _manifest_reads(counting) | {MANIFESTS + covering.manifest_id} == wanted


def test_a_change_rewrites_only_the_pieces_of_the_regions_it_writes(storage: ic.Storage) -> None:
    repo = _repo(storage, _splitting(4, 5))
    before = _node(repo, "/t").manifests
    counting = FaultyStorage(storage)
    session = ic.Repository.open(counting).writable_session("main")
    arr = zarr.open_array(session.store, path="t")
    counting.reset()
    arr[9, 12] = -1  # region (2, 2)
    arr[0, 0] = 0  # the fill value: zarr deletes the chunk, in region (0, 0)
    sid = session.commit("two regions")
    after = _node(repo, "/t", sid).manifests
    assert len(set(after) & set(before)) == len(before) - 2
    assert len(after) == len(before)
    assert len(_manifest_writes(counting)) == 2  # one new piece per region written
    assert len(_manifest_reads(counting)) == 2  # only the two touched pieces
    expected = VALUES.copy()
    expected[9, 12], expected[0, 0] = -1, 0
    np.testing.assert_array_equal(_read(storage)[:], expected)
    changed = repo.diff(from_snapshot_id=before_id(repo, sid), to_snapshot_id=sid)
    assert sorted(map(tuple, changed.updated_chunks["/t"])) == [(0, 0), (9, 12)]


def before_id(repo: ic.Repository, sid: str) -> str:
    parent = repo.lookup_snapshot(sid).parent_id
    assert parent is not None
    return parent


def test_new_split_sizes_reach_the_pieces_rewritten_afterwards(storage: ic.Storage) -> None:
    repo = _repo(storage, _splitting(4, 5))
    before = set(_node(repo, "/t").manifests)
    repo.config.manifest.splitting = _splitting(10, 10)
    repo.save_config()
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="t")[1, 1] = -5
    sid = session.commit("one chunk")
    after = _node(repo, "/t", sid).manifests
    kept = [p for p in after if p in before]
    assert len(kept) == len(before) - 1
    (new,) = [p for p in after if p not in before]
    assert isinstance(new, RegionRef) and (new.lower, new.upper) == ((0, 0), (3, 4))
    expected = VALUES.copy()
    expected[1, 1] = -5
    np.testing.assert_array_equal(_read(storage)[:], expected)


def test_rewrite_manifests_lays_every_array_out_anew_with_identical_refs(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage, None)
    parent = repo.lookup_branch("main")
    assert [type(p) for p in _node(repo, "/t").manifests] == [ManifestRef]
    repo.config.manifest.splitting = _splitting(10, 10, name="^(t|u)$")
    repo.save_config()
    sid = repo.rewrite_manifests("layout", branch="main", metadata={"who": "ops"})
    assert repo.lookup_branch("main") == sid
    info = repo.lookup_snapshot(sid)
    assert info.parent_id == parent and info.message == "layout"
    assert info.metadata["who"] == "ops"
    assert info.metadata["splitting_config"]["split_sizes"][0][0] == {
        "kind": "name_matches",
        "regex": "^(t|u)$",
    }
    for path in ("/t", "/u"):
        pieces = _node(repo, path, sid).manifests
        assert len(pieces) == 4 and all(type(p) is RegionRef for p in pieces)
    diff = repo.diff(from_snapshot_id=parent, to_snapshot_id=sid)
    assert not diff.updated_chunks and not diff.new_arrays and not diff.updated_arrays
    np.testing.assert_array_equal(_read(storage)[:], VALUES)
    # And back: with no rule, a rewrite cuts row-major ranges again.
    repo.config.manifest.splitting = None
    repo.save_config()
    back = repo.rewrite_manifests("undo", branch="main")
    assert [type(p) for p in _node(repo, "/t", back).manifests] == [ManifestRef]
    assert not repo.diff(from_snapshot_id=sid, to_snapshot_id=back).updated_chunks
    np.testing.assert_array_equal(_read(storage, "u")[:], VALUES)


def test_rewrite_manifests_refuses_bad_input_clearly(storage: ic.Storage) -> None:
    repo = _repo(storage, None)
    with pytest.raises(ic.BranchNotFoundError):
        repo.rewrite_manifests("m", branch="nope")
    with pytest.raises(ic.SessionError, match="metadata must be a dict"):
        repo.rewrite_manifests("m", branch="main", metadata=[1])  # type: ignore[arg-type]
    with pytest.raises(ic.SessionError, match="message must be a string"):
        repo.rewrite_manifests(None, branch="main")  # type: ignore[arg-type]


def test_rewrite_manifests_starts_over_when_a_commit_lands_meanwhile(storage: ic.Storage) -> None:
    repo = _repo(storage, _splitting(10, 10))
    faulty = FaultyStorage(storage)
    rewriter = ic.Repository.open(faulty)
    paused, resume = threading.Event(), threading.Event()

    def pause(call: Call) -> None:
        paused.set()
        assert resume.wait(30)

    faulty.arm(0, on_fault=pause, match=lambda c: c.key.startswith("refs/branch/main"))
    # The rewrite runs on its own event loop so pausing it stalls nothing else.
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(asyncio.run, rewriter.rewrite_manifests_async("layout", branch="main"))
        assert paused.wait(30)
        try:
            session = ic.Repository.open(storage).writable_session("main")
            zarr.open_array(session.store, path="t")[19, 19] = -7
            other = session.commit("meanwhile")
        finally:
            faulty.disarm()
            resume.set()
        sid = job.result(timeout=60)
    assert repo.lookup_branch("main") == sid
    assert repo.lookup_snapshot(sid).parent_id == other
    expected = VALUES.copy()
    expected[19, 19] = -7
    np.testing.assert_array_equal(_read(storage)[:], expected)


@pytest.mark.parametrize("seed", range(4))
def test_random_writes_under_changing_split_sizes_read_back_exactly(
    storage: ic.Storage, seed: int
) -> None:
    """Boxes of pieces cut under different sizes may overlap; their chunks never do."""
    rng = random.Random(seed)
    shape = (9, 11)
    repo = ic.Repository.create(storage, _config(_splitting(3, 4)))
    session = repo.writable_session("main")
    zarr.group(session.store).create_array(
        "t", shape=shape, chunks=(1, 1), dtype="i4", fill_value=0
    )
    session.commit("empty")
    model = np.zeros(shape, dtype="i4")
    for step in range(6):
        repo.config.manifest.splitting = _splitting(rng.randint(1, 6), rng.randint(1, 6))
        repo.save_config()
        session = repo.writable_session("main")
        arr = zarr.open_array(session.store, path="t")
        for _ in range(rng.randint(1, 12)):
            i, j = rng.randrange(shape[0]), rng.randrange(shape[1])
            value = 0 if rng.random() < 0.3 else rng.randint(1, 1000)  # 0 deletes the chunk
            arr[i, j] = value
            model[i, j] = value
        sid = session.commit(f"step {step}")
        np.testing.assert_array_equal(_read(storage)[:], model)
        seen: set[tuple[int, ...]] = set()
        node = _node(repo, "/t", sid)
        for piece in node.manifests:
            table = asyncio.run(_objects(repo).manifest(piece.manifest_id)).tables[node.id]
            coords = {tuple(c) for c in table.coords().tolist()}
            assert not coords & seen  # no chunk in two pieces
            seen |= coords
            if isinstance(piece, RegionRef):
                matrix = table.coords()
                assert tuple(matrix.min(axis=0)) == piece.lower
                assert tuple(matrix.max(axis=0)) == piece.upper
        assert seen == {tuple(c) for c in np.argwhere(model != 0).tolist()}
    assert repo.verify().ok


def test_verify_names_a_region_piece_whose_box_is_not_its_manifests(storage: ic.Storage) -> None:
    repo = _repo(storage, _splitting(4, 5))
    assert repo.verify().ok
    sid = repo.lookup_branch("main")
    snap = asyncio.run(_objects(repo).snapshot(sid))
    nodes = []
    for node in snap.nodes:
        pieces = node.manifests
        if node.path == "/t":
            first = pieces[0]
            assert isinstance(first, RegionRef)
            wrong = msgspec.structs.replace(first, upper=(first.upper[0] + 1, first.upper[1]))
            pieces = (wrong, *pieces[1:])
        nodes.append(msgspec.structs.replace(node, manifests=pieces))
    damaged = msgspec.structs.replace(snap, nodes=tuple(nodes))
    asyncio.run(storage.put(SNAPSHOTS + sid, encode_snapshot(damaged)))
    report = ic.Repository.open(storage).verify()
    (problem,) = report.problems
    assert problem.kind == "manifest" and problem.key == MANIFESTS + first.manifest_id
    assert "in the box" in problem.message and str(wrong.upper) in problem.message
