"""``set_virtual_refs`` in bulk: column-wise records equal to what one spec at a time gives,
every check of a single reference kept, nothing recorded from a batch with a bad spec, and
virtual rows surviving rewrites, deletes, rebases, merges, pickling and commits."""

from __future__ import annotations

import datetime as dt
import enum
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.chunk_changes import ChunkChanges
from icechunk_lib.errors import (
    InvalidInputError,
    InvalidVirtualLocationError,
)
from icechunk_lib.format.manifest import VIRTUAL, ChunkRef, ChunkTable
from icechunk_lib.session import workspace_of
from icechunk_lib.virtual.spec import checked_ref, spec_columns

PREFIX = "s3://archive/data/"
OTHER = "file:///archive/"
GRID = (8, 10)
WHEN = dt.datetime(2024, 5, 1, 12, 0, 30, tzinfo=dt.UTC)


@pytest.fixture
def repo(tmp_path: Path) -> ic.Repository:
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(PREFIX, ic.s3_store()))
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(OTHER, ic.local_filesystem_store("/archive/"))
    )
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config)
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    root.create_array("temp", shape=(16, 30), chunks=(2, 3), dtype="f4", fill_value=-1)
    root.create_array("scalar", shape=(), dtype="f8")
    session.commit("arrays")
    return repo


def _record(session: ic.Session, path: str = "/temp") -> ChunkChanges:
    ws = workspace_of(session)
    node = ic._sync.run(ws.nodes())[path]
    return ic._sync.run(ws.changeset()).chunks[node.id]


def _ref(session: ic.Session, coords: tuple[int, ...], path: str = "/temp") -> ChunkRef | None:
    ws = workspace_of(session)

    async def go() -> ChunkRef | None:
        node = (await ws.nodes())[path]
        return await ws.chunk_ref(node, coords)

    return ic._sync.run(go())


def _all_refs(session: ic.Session, path: str = "/temp") -> dict[tuple[int, ...], ChunkRef]:
    ws = workspace_of(session)

    async def go() -> dict[tuple[int, ...], ChunkRef]:
        node = (await ws.nodes())[path]
        return {c: r async for c, r in ws.iter_chunks(node)}

    return ic._sync.run(go())


def _model(specs: list[ic.VirtualChunkSpec]) -> dict[tuple[int, ...], ChunkRef]:
    """What recording the specs one after another gives (the last of one index wins)."""
    return {
        tuple(s.index): checked_ref(
            s.location, s.offset, s.length, s.etag_checksum, s.last_updated_at_checksum
        )
        for s in specs
    }


def _varied(n: int, seed: int = 0) -> list[ic.VirtualChunkSpec]:
    """Specs with repeated indices, shared and distinct locations, etags and times."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        index = [int(rng.integers(0, GRID[0])), int(rng.integers(0, GRID[1]))]
        where = PREFIX if i % 3 else OTHER
        etag = [None, '"a"', '"b"'][i % 3] if i % 5 else None
        when = WHEN + dt.timedelta(seconds=i % 4) if i % 7 == 0 else None
        specs.append(
            ic.VirtualChunkSpec(
                index, f"{where}f{i % 6}.nc", int(rng.integers(0, 2**40)), i + 1, etag, when
            )
        )
    return specs


def test_a_batch_records_what_single_refs_would(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    specs = _varied(400)
    assert spec_columns(specs, GRID) is not None  # recorded as columns, not one by one
    assert session.store.set_virtual_refs("temp", specs) is None
    model = _model(specs)
    record = _record(session)
    assert dict(record.items()) == model
    # Column-wise: the record keeps one entry per distinct (location, etag), no ref per row.
    assert not record._others
    assert sorted(record._locations) == sorted({(s.location, s.etag_checksum or "") for s in specs})
    session.commit("virtual")
    assert _all_refs(session) == model
    reader = repo.readonly_session("main")
    assert _all_refs(reader) == model


def test_duplicate_indices_in_one_batch_last_wins(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    specs = [
        ic.VirtualChunkSpec([1, 1], PREFIX + "a.nc", 0, 10),
        ic.VirtualChunkSpec([1, 2], PREFIX + "a.nc", 10, 10),
        ic.VirtualChunkSpec([1, 1], PREFIX + "b.nc", 5, 7, etag_checksum='"e"'),
    ]
    session.store.set_virtual_refs("temp", specs)
    assert _ref(session, (1, 1)) == checked_ref(PREFIX + "b.nc", 5, 7, '"e"')
    assert len(_record(session)) == 2
    session.commit("dups")
    assert _ref(session, (1, 1)) == checked_ref(PREFIX + "b.nc", 5, 7, '"e"')
    assert len(_all_refs(session)) == 2


def test_a_later_batch_replaces_an_earlier_one_after_a_lookup(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    session.store.set_virtual_refs("temp", [ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 0, 4)])
    assert _ref(session, (0, 0)).location == PREFIX + "a.nc"  # type: ignore[union-attr]
    # The lookup built the row index; taking a change back and a new batch must agree with it.
    session.store.set_virtual_refs("temp", [ic.VirtualChunkSpec([0, 1], PREFIX + "x.nc", 0, 4)])
    del _record(session)[(0, 1)]
    session.store.set_virtual_refs(
        "temp",
        [
            ic.VirtualChunkSpec([0, 0], PREFIX + "b.nc", 0, 4),
            ic.VirtualChunkSpec([0, 2], PREFIX + "c.nc", 0, 4),
        ],
    )
    assert {c: r.location for c, r in _record(session).items() if r} == {
        (0, 0): PREFIX + "b.nc",
        (0, 2): PREFIX + "c.nc",
    }
    session.commit("again")
    assert {c: r.location for c, r in _all_refs(session).items()} == {
        (0, 0): PREFIX + "b.nc",
        (0, 2): PREFIX + "c.nc",
    }


def test_native_chunks_become_virtual_and_back(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="temp", mode="r+")
    arr[0:2, 0:6] = 5.0  # chunks (0, 0) and (0, 1), native
    session.commit("native")
    session = repo.writable_session("main")
    session.store.set_virtual_refs("temp", [ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 8, 24)])
    assert _ref(session, (0, 0)) == checked_ref(PREFIX + "a.nc", 8, 24)
    assert _ref(session, (0, 1)).kind != VIRTUAL  # type: ignore[union-attr]
    session.commit("virtual over native")
    session = repo.writable_session("main")
    assert _ref(session, (0, 0)).kind == VIRTUAL  # type: ignore[union-attr]
    arr = zarr.open_array(session.store, path="temp", mode="r+")
    arr[0:2, 0:3] = 7.0
    assert _ref(session, (0, 0)).kind != VIRTUAL  # type: ignore[union-attr]
    assert session.all_virtual_chunk_locations() == []
    session.commit("native over virtual")
    reader = repo.readonly_session("main")
    np.testing.assert_array_equal(
        zarr.open_array(reader.store, path="temp")[0:2, 0:6], [[7.0] * 3 + [5.0] * 3] * 2
    )
    assert reader.all_virtual_chunk_locations() == []


def test_deleting_a_virtual_chunk(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    session.store.set_virtual_refs(
        "temp",
        [
            ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 0, 4),
            ic.VirtualChunkSpec([0, 1], PREFIX + "b.nc", 0, 4),
        ],
    )
    ic._sync.run(session.store.delete("temp/c/0/1"))
    assert _ref(session, (0, 1)) is None
    assert session.all_virtual_chunk_locations() == [PREFIX + "a.nc"]
    session.commit("one left")
    session = repo.writable_session("main")
    ic._sync.run(session.store.delete("temp/c/0/0"))
    assert session.all_virtual_chunk_locations() == []
    session.commit("none left")
    assert _all_refs(repo.readonly_session("main")) == {}


def test_a_batch_mixing_declared_and_undeclared_locations(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    specs = [
        ic.VirtualChunkSpec([i // GRID[1], i % GRID[1]], where + f"{i}.nc", i, 4)
        for i, where in enumerate([PREFIX, "s3://elsewhere/", OTHER, "gs://b/", PREFIX] * 10)
    ]
    skipped = session.store.set_virtual_refs("temp", specs)
    undeclared = [s for s in specs if not s.location.startswith((PREFIX, OTHER))]
    assert skipped == [tuple(s.index) for s in undeclared]
    kept = [s for s in specs if s not in undeclared]
    assert dict(_record(session).items()) == _model(kept)
    # Without validation every one is recorded.
    fresh = repo.writable_session("main")
    assert fresh.store.set_virtual_refs("temp", specs, validate_containers=False) is None
    assert dict(_record(fresh).items()) == _model(specs)


def test_a_location_escaping_its_container_fails_the_batch(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    good = [ic.VirtualChunkSpec([0, i], PREFIX + f"{i}.nc", 0, 4) for i in range(GRID[1])]
    bad = ic.VirtualChunkSpec([1, 0], PREFIX + "/x.nc", 0, 4)  # '//' below the prefix
    with pytest.raises(InvalidVirtualLocationError, match="empty path segment"):
        session.store.set_virtual_refs("temp", [*good, bad])
    assert not session.has_uncommitted_changes


class _Small(enum.IntEnum):
    FOUR = 4


def _bad_specs() -> list[tuple[object, type[Exception], str]]:
    loc = PREFIX + "a.nc"
    return [
        (ic.VirtualChunkSpec([0, 0], loc, 2**64, 4), InvalidInputError, "offset"),
        (ic.VirtualChunkSpec([0, 0], loc, -1, 4), InvalidInputError, "offset"),
        (ic.VirtualChunkSpec([0, 0], loc, 0, 2**64), InvalidInputError, "length"),
        (ic.VirtualChunkSpec([0, 0], loc, 2**64 - 4, 4), InvalidInputError, "ends past"),
        (ic.VirtualChunkSpec([0, 0], loc, True, 4), InvalidInputError, "offset"),  # type: ignore[arg-type]
        (ic.VirtualChunkSpec([0, 0], loc, 0, 4.0), InvalidInputError, "length"),  # type: ignore[arg-type]
        (ic.VirtualChunkSpec([0, 0], loc, np.int64(0), 4), InvalidInputError, "offset"),  # type: ignore[arg-type]
        (ic.VirtualChunkSpec([0, 0.0], loc, 0, 4), InvalidInputError, "not in array"),  # type: ignore[list-item]
        (ic.VirtualChunkSpec([0, True], loc, 0, 4), InvalidInputError, "not in array"),
        (ic.VirtualChunkSpec([0, 2**70], loc, 0, 4), InvalidInputError, "not in array"),
        (ic.VirtualChunkSpec([8, 0], loc, 0, 4), InvalidInputError, "not in array"),
        (ic.VirtualChunkSpec([0, -1], loc, 0, 4), InvalidInputError, "not in array"),
        (ic.VirtualChunkSpec([0], loc, 0, 4), InvalidInputError, "not in array"),
        (ic.VirtualChunkSpec([0, 0], loc, 0, 4, ""), InvalidInputError, "etag"),
        (ic.VirtualChunkSpec([0, 0], loc, 0, 4, 7), InvalidInputError, "etag"),  # type: ignore[arg-type]
        (ic.VirtualChunkSpec([0, 0], loc, 0, 4, ["x"]), InvalidInputError, "etag"),  # type: ignore[arg-type]
        (
            ic.VirtualChunkSpec([0, 0], loc, 0, 4, None, dt.datetime(1969, 1, 1)),
            InvalidInputError,
            "after 1970",
        ),
        (
            ic.VirtualChunkSpec([0, 0], loc, 0, 4, None, "2024-01-01"),  # type: ignore[arg-type]
            InvalidInputError,
            "datetime",
        ),
        (ic.VirtualChunkSpec([0, 0], PREFIX + "../x", 0, 4), InvalidVirtualLocationError, "x"),
        (ic.VirtualChunkSpec([0, 0], 42, 0, 4), InvalidVirtualLocationError, "URL"),  # type: ignore[arg-type]
        (ic.VirtualChunkSpec([0, 0], ["x"], 0, 4), InvalidVirtualLocationError, "URL"),  # type: ignore[arg-type]
        ((0, 0), InvalidInputError, "VirtualChunkSpec objects"),
    ]


@pytest.mark.parametrize("at", ["first", "last"])
@pytest.mark.parametrize(("bad", "error", "match"), _bad_specs())
def test_one_bad_spec_anywhere_records_nothing(
    repo: ic.Repository, bad: object, error: type[Exception], match: str, at: str
) -> None:
    session = repo.writable_session("main")
    good = [
        ic.VirtualChunkSpec([i // GRID[1], i % GRID[1]], PREFIX + f"{i % 3}.nc", i, 4)
        for i in range(GRID[0] * GRID[1])
    ]
    batch = [bad, *good] if at == "first" else [*good, bad]
    assert spec_columns(good, GRID) is not None
    assert spec_columns(batch, GRID) is None  # the column checks see it too
    with pytest.raises(error, match=match):
        session.store.set_virtual_refs("temp", batch)  # type: ignore[arg-type]
    assert not session.has_uncommitted_changes
    assert session.status().updated_chunks == {}


def test_the_first_bad_spec_names_the_error(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    batch = [
        ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 0, 4),
        ic.VirtualChunkSpec([0, 99], PREFIX + "a.nc", 0, 4),
        ic.VirtualChunkSpec([0, 1], PREFIX + "a.nc", -5, 4),
    ]
    with pytest.raises(InvalidInputError, match=r"chunk index \[0, 99\] is not in array /temp"):
        session.store.set_virtual_refs("temp", batch)


def test_huge_offsets_and_unusual_ints_are_kept_exactly(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    specs = [
        ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 2**64 - 2, 1),
        ic.VirtualChunkSpec([0, 1], PREFIX + "a.nc", 2**63, 2**63 - 1),
        ic.VirtualChunkSpec([0, 2], PREFIX + "a.nc", 0, 2**64 - 1),
        # An int subclass is an int, as for set_virtual_ref (checked one by one).
        ic.VirtualChunkSpec([0, 3], PREFIX + "a.nc", _Small.FOUR, _Small.FOUR),
    ]
    session.store.set_virtual_refs("temp", specs)
    session.commit("huge")
    refs = _all_refs(repo.readonly_session("main"))
    assert {c: (r.offset, r.length) for c, r in refs.items()} == {
        (0, 0): (2**64 - 2, 1),
        (0, 1): (2**63, 2**63 - 1),
        (0, 2): (0, 2**64 - 1),
        (0, 3): (4, 4),
    }


def test_a_zero_dimensional_array_and_an_empty_batch(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    assert session.store.set_virtual_refs("scalar", []) is None
    assert not session.has_uncommitted_changes
    session.store.set_virtual_refs("scalar", [ic.VirtualChunkSpec([], PREFIX + "s.nc", 3, 8)])
    session.commit("scalar")
    assert _ref(repo.readonly_session("main"), (), "/scalar") == checked_ref(PREFIX + "s.nc", 3, 8)


def test_conflicts_and_rebase_with_virtual_rows(repo: ic.Repository) -> None:
    theirs, ours = repo.writable_session("main"), repo.writable_session("main")
    theirs.store.set_virtual_refs(
        "temp",
        [
            ic.VirtualChunkSpec([0, 0], PREFIX + "theirs.nc", 0, 4),
            ic.VirtualChunkSpec([5, 5], PREFIX + "theirs.nc", 4, 4),
        ],
    )
    theirs.commit("theirs")
    ours.store.set_virtual_refs(
        "temp",
        [
            ic.VirtualChunkSpec([0, 0], PREFIX + "ours.nc", 0, 4),
            ic.VirtualChunkSpec([1, 1], PREFIX + "ours.nc", 4, 4),
        ],
    )
    with pytest.raises(ic.ConflictError):
        ours.commit("ours")
    with pytest.raises(ic.RebaseFailedError) as failed:
        ours.rebase(ic.ConflictDetector())
    [conflict] = failed.value.conflicts
    assert conflict.conflict_type is ic.ConflictType.ChunkDoubleUpdate
    assert conflict.conflicted_chunks == [[0, 0]]
    ours.rebase(ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseTheirs))
    assert ours.all_virtual_chunk_locations() == [PREFIX + "ours.nc", PREFIX + "theirs.nc"]
    ours.commit("ours")
    refs = _all_refs(repo.readonly_session("main"))
    assert {c: r.location for c, r in refs.items()} == {
        (0, 0): PREFIX + "theirs.nc",
        (1, 1): PREFIX + "ours.nc",
        (5, 5): PREFIX + "theirs.nc",
    }


def test_pickled_sessions_and_merged_forks_carry_virtual_rows(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    forks = [pickle.loads(pickle.dumps(session.fork())) for _ in range(2)]
    first = _varied(200, seed=1)
    second = [
        ic.VirtualChunkSpec([0, 0], OTHER + "late.nc", 1, 2, '"z"'),
        *_varied(50, seed=2),
    ]
    forks[0].store.set_virtual_refs("temp", first)
    forks[1].store.set_virtual_refs("temp", second)
    returned = [pickle.loads(pickle.dumps(f)) for f in forks]
    assert dict(_record(returned[0]).items()) == _model(first)
    session.merge(*returned)
    merged = {**_model(first), **_model(second)}  # the later fork wins a chunk both wrote
    assert dict(_record(session).items()) == merged
    again = pickle.loads(pickle.dumps(session))
    assert dict(_record(again).items()) == merged
    again.commit("merged")
    assert _all_refs(repo.readonly_session("main")) == merged


def test_all_virtual_chunk_locations(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    assert session.all_virtual_chunk_locations() == []
    session.store.set_virtual_refs(
        "temp",
        [
            ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 0, 4),
            ic.VirtualChunkSpec([0, 1], PREFIX + "a.nc", 4, 4, '"v1"'),
            ic.VirtualChunkSpec([0, 2], PREFIX + "b.nc", 0, 4),
        ],
    )
    session.store.set_virtual_ref("scalar/c", OTHER + "s.nc", offset=0, length=8)
    expected = [OTHER + "s.nc", PREFIX + "a.nc", PREFIX + "b.nc"]
    assert session.all_virtual_chunk_locations() == expected
    session.commit("three files")
    assert repo.readonly_session("main").all_virtual_chunk_locations() == expected
    session = repo.writable_session("main")
    # Replacing the only chunk of b.nc hides it; a new location shows before the commit.
    zarr.open_array(session.store, path="temp", mode="r+")[0:2, 6:9] = 1.0
    session.store.set_virtual_ref("temp/c/7/9", PREFIX + "c.nc", offset=0, length=4)
    now = [OTHER + "s.nc", PREFIX + "a.nc", PREFIX + "c.nc"]
    assert session.all_virtual_chunk_locations() == now
    assert ic._sync.run(session.all_virtual_chunk_locations_async()) == now
    session.commit("b replaced")
    assert repo.readonly_session("main").all_virtual_chunk_locations() == now


def test_a_record_of_virtual_rows_pickles_as_columns() -> None:
    changes = ChunkChanges(2)
    changes[(0, 0)] = checked_ref(PREFIX + "a.nc", 1, 2, '"e"')
    changes[(0, 1)] = checked_ref(PREFIX + "a.nc", 3, 4, last_updated_at=WHEN)
    changes[(0, 0)] = checked_ref(PREFIX + "b.nc", 5, 6)
    changes[(1, 1)] = None
    restored = pickle.loads(pickle.dumps(changes))
    assert dict(restored.items()) == dict(changes.items())
    assert not restored._others
    restored[(2, 2)] = checked_ref(PREFIX + "a.nc", 7, 8)  # interned with the pickled pairs
    assert restored[(2, 2)] == checked_ref(PREFIX + "a.nc", 7, 8)
    assert len(set(restored._locations)) == len(restored._locations)


def _committed_tables(session: ic.Session, path: str = "/temp") -> list[ChunkTable]:
    ws = workspace_of(session)

    async def go() -> list[ChunkTable]:
        node = (await ws.nodes())[path]
        manifests = [await ws.objects.manifest(m.manifest_id) for m in node.manifests]
        return [m.tables[node.id] for m in manifests]

    return ic._sync.run(go())


def test_manifests_keep_only_the_locations_their_rows_use(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    session.store.set_virtual_refs(
        "temp",
        [
            ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 0, 4),
            ic.VirtualChunkSpec([0, 1], PREFIX + "b.nc", 0, 4, '"1"'),
            ic.VirtualChunkSpec([0, 2], PREFIX + "c.nc", 0, 4),
            ic.VirtualChunkSpec([0, 1], PREFIX + "b.nc", 0, 4, '"2"'),  # replaces '"1"'
        ],
    )
    session.commit("three")
    [table] = _committed_tables(session)
    assert sorted(zip(table.locations, table.location_etags, strict=True)) == [
        (PREFIX + "a.nc", ""),
        (PREFIX + "b.nc", '"2"'),
        (PREFIX + "c.nc", ""),
    ]
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="temp", mode="r+")[0:2, 3:6] = 1.0  # b.nc's chunk
    session.commit("b.nc replaced")
    [table] = _committed_tables(session)
    assert sorted(table.locations) == [PREFIX + "a.nc", PREFIX + "c.nc"]
    assert table.location_etags == []  # no pair left has an etag
    # Split into pieces, each keeps only its own rows' locations.
    pieces = table.split(1)
    assert [p.locations for p in pieces if (p.kinds == VIRTUAL).any()] == [
        [PREFIX + "a.nc"],
        [PREFIX + "c.nc"],
    ]
    assert [p.ref(0) for p in pieces] == [table.ref(i) for i in range(len(table))]


@pytest.mark.parametrize("engine", ["ick", "icechunk"])
def test_all_virtual_chunk_locations_as_icechunk_lists_them(tmp_path: Path, engine: str) -> None:
    # The same steps in both engines give the same locations. Icechunk 1.1 lists one per
    # virtual chunk, repeats included; ick lists each once, sorted.
    module: Any = ic if engine == "ick" else pytest.importorskip("icechunk")
    if engine == "icechunk":
        module.set_logs_filter("error")  # not its warning about local storage
    config = module.RepositoryConfig.default()
    config.set_virtual_chunk_container(module.VirtualChunkContainer(PREFIX, module.s3_store()))
    repo = module.Repository.create(module.local_filesystem_storage(str(tmp_path)), config)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="t", shape=(4, 4), chunks=(1, 1), dtype="i1")
    specs = [
        module.VirtualChunkSpec([i, j], f"{PREFIX}{(i + j) % 5}.nc", 4 * j, 4)
        for i in range(4)
        for j in range(4)
    ]
    session.store.set_virtual_refs("t", specs)
    session.commit("refs")
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="t", mode="r+")
    arr[0, 0] = arr[2, 3] = arr[3, 2] = 1  # every chunk of 0.nc ((i + j) % 5 == 0)
    arr[1, 3] = 1  # one of 4.nc's three
    session.store.set_virtual_ref("t/c/3/3", PREFIX + "new.nc", offset=0, length=4)  # a 1.nc
    got = session.all_virtual_chunk_locations()
    assert sorted(set(got)) == [PREFIX + f"{k}.nc" for k in (1, 2, 3, 4)] + [PREFIX + "new.nc"]
    if engine == "ick":
        assert got == sorted(set(got))


def test_split_manifests_hold_and_list_their_own_locations(tmp_path: Path) -> None:
    S, D = ic.ManifestSplitCondition, ic.ManifestSplitDimCondition
    splitting = ic.ManifestSplittingConfig.from_dict(
        {S.name_matches("^temp$"): {D.Axis(0): 2, D.Axis(1): 5}}
    )
    config = ic.RepositoryConfig(manifest=ic.ManifestConfig(splitting=splitting))
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(PREFIX, ic.s3_store()))
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path)), config)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="temp", shape=(16, 30), chunks=(2, 3), dtype="f4")
    # Row r of the grid points into row{r}.nc; the pieces are 2 rows x 5 columns of chunks.
    specs = [
        ic.VirtualChunkSpec([r, c], f"{PREFIX}row{r}.nc", 100 * c, 100)
        for r in range(GRID[0])
        for c in range(GRID[1])
    ]
    session.store.set_virtual_refs("temp", specs)
    session.commit("split")
    tables = _committed_tables(session)
    assert len(tables) == 8
    for table in tables:
        rows = {int(r) for r in table.coords()[:, 0]}
        assert sorted(table.locations) == sorted(f"{PREFIX}row{r}.nc" for r in rows)
    expected = [f"{PREFIX}row{r}.nc" for r in range(GRID[0])]
    assert session.all_virtual_chunk_locations() == expected
    session = repo.writable_session("main")
    # All of row 3 written with the fill value: zarr deletes those chunks.
    zarr.open_array(session.store, path="temp", mode="r+")[6:8, :] = 0.0
    assert session.all_virtual_chunk_locations() == [e for e in expected if "row3" not in e]
    refs = _all_refs(session)
    assert {c: r for c, r in refs.items() if c[0] != 3} == _model(
        [s for s in specs if s.index[0] != 3]
    )
    assert not [c for c in refs if c[0] == 3]
