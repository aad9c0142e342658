"""ChunkChanges: a column-wise change record that must behave exactly like a dict of refs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from icechunk_lib.chunk_changes import ChunkChanges, VirtualRows
from icechunk_lib.format.manifest import INLINE, NATIVE, VIRTUAL, ChunkRef

COORDS = st.tuples(st.integers(0, 6), st.integers(0, 6))
REFS = st.one_of(
    st.none(),
    st.builds(
        lambda cid, length, checksum: ChunkRef(NATIVE, cid, 0, length, checksum),
        st.binary(min_size=12, max_size=12),
        st.integers(0, 2**40),
        st.integers(0, 2**64 - 1),
    ),
    st.builds(
        lambda cid, offset, length: ChunkRef(NATIVE, cid, offset, length, 0),
        st.binary(min_size=12, max_size=12),
        st.integers(1, 2**30),
        st.integers(0, 2**30),
    ),
    st.builds(
        lambda data, checksum: ChunkRef(INLINE, b"", 0, len(data), checksum, data),
        st.binary(max_size=20),
        st.integers(0, 2**64 - 1),
    ),
    st.builds(
        lambda loc, offset, length: ChunkRef(VIRTUAL, offset=offset, length=length, location=loc),
        st.sampled_from(["s3://b/one.nc", "s3://b/two.nc"]),
        st.integers(0, 2**30),
        st.integers(0, 2**20),
    ),
)


VIRTUAL_ROWS = st.lists(
    st.tuples(
        COORDS,
        st.sampled_from(["s3://b/one.nc", "s3://b/two.nc", "s3://b/three.nc"]),
        st.sampled_from(["", '"e1"', '"e2"']),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**40),
        st.integers(0, 2**40),
    ),
    max_size=12,
)


def _virtual_rows(batch: list[tuple[tuple[int, int], str, str, int, int, int]]) -> VirtualRows:
    pairs = list(dict.fromkeys((loc, etag) for _, loc, etag, *_ in batch))
    return VirtualRows(
        coords=np.array([c for c, *_ in batch], dtype=np.int64).reshape(-1, 2),
        offsets=np.array([b[3] for b in batch], dtype=np.uint64),
        lengths=np.array([b[4] for b in batch], dtype=np.uint64),
        checksums=np.array([b[5] for b in batch], dtype=np.uint64),
        pair_index=np.array([pairs.index((b[1], b[2])) for b in batch], dtype=np.int32),
        pairs=pairs,
    )


def _table_of(changes: ChunkChanges) -> dict[tuple[int, ...], ChunkRef | None]:
    """What a commit reads back from ``columns``: coordinates -> ref or None."""
    cols = changes.columns()
    out: dict[tuple[int, ...], ChunkRef | None] = {}
    for c in cols.coords[cols.deleted].tolist():
        out[tuple(c)] = None
    live = np.flatnonzero(~cols.deleted)
    if len(live):
        table = cols.select(live).table("n")
        for row, c in enumerate(table.coords().tolist()):
            out[tuple(c)] = table.ref(row)
    return out


class ChangesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.changes = ChunkChanges(2)
        self.model: dict[tuple[int, ...], ChunkRef | None] = {}

    @rule(coords=COORDS, ref=REFS)
    def set(self, coords: tuple[int, int], ref: ChunkRef | None) -> None:
        self.changes[coords] = ref
        self.model[coords] = ref

    @rule(
        coords=COORDS,
        cid=st.binary(min_size=12, max_size=12),
        length=st.integers(0, 2**40),
        checksum=st.integers(0, 2**64 - 1),
    )
    def put_native(self, coords: tuple[int, int], cid: bytes, length: int, checksum: int) -> None:
        self.changes.put_native(coords, cid, length, checksum)
        self.model[coords] = ChunkRef(NATIVE, cid, 0, length, checksum)

    @rule(batch=VIRTUAL_ROWS)
    def put_virtual(self, batch: list[tuple[tuple[int, int], str, str, int, int, int]]) -> None:
        self.changes.put_virtual(_virtual_rows(batch))
        for coords, loc, etag, offset, length, checksum in batch:
            self.model[coords] = ChunkRef(
                VIRTUAL, offset=offset, length=length, checksum=checksum, location=loc, etag=etag
            )

    @rule(items=st.dictionaries(COORDS, REFS, max_size=8), batch=VIRTUAL_ROWS)
    def absorb(
        self,
        items: dict[tuple[int, int], ChunkRef | None],
        batch: list[tuple[tuple[int, int], str, str, int, int, int]],
    ) -> None:
        # Another record (a fork's), with rows of every kind, applied after ours.
        theirs = ChunkChanges(2, items)
        theirs.put_virtual(_virtual_rows(batch))
        expected = dict(theirs.items())
        self.changes.absorb(theirs)
        self.model.update(expected)

    @rule(coords=COORDS)
    def take_back(self, coords: tuple[int, int]) -> None:
        assert self.changes.pop(coords, "absent") == self.model.pop(coords, "absent")

    @rule()
    def copy_then_diverge(self) -> None:
        before = dict(self.changes.items())
        copy = self.changes.copy()
        copy[(99, 99)] = None
        copy.pop((0, 0), None)
        assert dict(self.changes.items()) == before
        if (0, 0) in self.model:
            copy[(0, 0)] = self.model[(0, 0)]
        self.changes = copy
        self.model[(99, 99)] = None

    @rule()
    def pickle_round_trip(self) -> None:
        self.changes = pickle.loads(pickle.dumps(self.changes))

    @invariant()
    def matches_the_model(self) -> None:
        assert len(self.changes) == len(self.model)
        assert dict(self.changes.items()) == self.model
        assert set(self.changes) == set(self.model)

    @invariant()
    def columns_read_back_the_model(self) -> None:
        assert _table_of(self.changes) == self.model


TestChangesMachine = ChangesMachine.TestCase
TestChangesMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@given(st.dictionaries(COORDS, REFS, max_size=40))
def test_built_from_a_dict_equals_it(items: dict[tuple[int, int], ChunkRef | None]) -> None:
    changes = ChunkChanges(2, items)
    assert dict(changes.items()) == items
    assert _table_of(changes) == items


def test_zero_dimensional_array_has_one_chunk_key() -> None:
    changes = ChunkChanges(0)
    changes.put_native((), b"x" * 12, 8, 1)
    cols = changes.columns()
    assert cols.coords.shape == (1, 0)
    assert changes[()] == ChunkRef(NATIVE, b"x" * 12, 0, 8, 1)


def test_wrong_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 2 coordinates"):
        ChunkChanges(2)[(1,)] = None


def test_columns_are_copies_not_views() -> None:
    changes = ChunkChanges(1)
    changes.put_native((0,), b"a" * 12, 1, 1)
    cols = changes.columns()
    changes.put_native((0,), b"b" * 12, 2, 2)  # must not raise BufferError nor show through
    changes.put_native((1,), b"c" * 12, 3, 3)
    assert cols.ids.tobytes() == b"a" * 12
    assert cols.lengths.tolist() == [1]


@given(st.lists(st.tuples(COORDS, REFS), max_size=60), st.booleans())
def test_repeated_writes_last_one_wins_with_or_without_an_index(
    writes: list[tuple[tuple[int, int], ChunkRef | None]], index_first: bool
) -> None:
    # A session that only writes never builds the row index: ``columns`` must then resolve
    # repeated writes of one chunk itself. Building the index midway must agree.
    changes = ChunkChanges(2)
    model: dict[tuple[int, ...], ChunkRef | None] = {}
    for i, (coords, ref) in enumerate(writes):
        if index_first and i == len(writes) // 2:
            assert len(changes) == len(model)
        changes[coords] = ref
        model[coords] = ref
    assert bool(changes) == bool(model)
    assert _table_of(changes) == model  # from the columns alone
    assert dict(changes.items()) == model  # through the index
    assert _table_of(changes) == model  # and the columns again, now index-backed


def test_lookups_racing_writes_from_other_threads_lose_nothing() -> None:
    # A lookup builds the index lazily; a write appended by another thread while it is
    # being built must still be found, and must still replace the older row of its chunk.
    # A tiny switch interval makes the threads interleave inside the build (without the
    # record's lock this fails every time).
    import sys
    import threading

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(10):
            changes = ChunkChanges(1)
            for i in range(20_000):  # rows to index: the build takes a while
                changes.put_native((i % 500,), bytes(12), i, 0)
            start = threading.Barrier(2)

            def write(changes: ChunkChanges = changes, start: threading.Barrier = start) -> None:
                start.wait()
                for i in range(500):
                    changes.put_native((i,), b"w" * 12, 100_000 + i, 1)

            writer = threading.Thread(target=write)
            writer.start()
            start.wait()
            assert (0,) in changes  # builds the index while the writer appends
            writer.join()
            assert len(changes) == 500
            assert all(changes[(i,)].length == 100_000 + i for i in range(500))  # type: ignore[union-attr]
            cols = changes.columns()
            assert len(cols) == 500
            assert len({c for (c,) in cols.coords.tolist()}) == 500
    finally:
        sys.setswitchinterval(old)


def test_a_virtual_batch_keeps_columns_and_replaces_earlier_rows() -> None:
    changes = ChunkChanges(2)
    changes[(0, 0)] = ChunkRef(INLINE, b"", 0, 1, 1, b"x")
    changes[(0, 1)] = ChunkRef(NATIVE, b"n" * 12, 0, 5, 2)
    assert len(changes) == 2  # the row index exists now
    del changes[(0, 1)]  # taken back: must stay gone once the batch drops the index
    batch = [
        ((0, 0), "s3://b/a.nc", "", 1, 2, 0),
        ((3, 3), "s3://b/a.nc", '"e"', 3, 4, 5),
        ((3, 3), "s3://b/b.nc", "", 6, 7, 0),
    ]
    changes.put_virtual(_virtual_rows(batch))
    expected = {
        (0, 0): ChunkRef(VIRTUAL, offset=1, length=2, location="s3://b/a.nc"),
        (3, 3): ChunkRef(VIRTUAL, offset=6, length=7, location="s3://b/b.nc"),
    }
    assert _table_of(changes) == expected  # columns without an index
    assert dict(changes.items()) == expected  # the rebuilt index agrees
    assert not changes._others  # the inline row it replaced is gone, virtual rows keep none
    copy = changes.copy()
    copy.put_virtual(_virtual_rows([((0, 0), "s3://b/c.nc", "", 0, 1, 0)]))
    assert dict(changes.items()) == expected
    assert copy[(0, 0)] == ChunkRef(VIRTUAL, offset=0, length=1, location="s3://b/c.nc")
    with pytest.raises(ValueError, match="coordinate matrix"):
        changes.put_virtual(_virtual_rows(batch)._replace(coords=np.zeros((3, 3), np.int64)))


def test_a_small_virtual_batch_keeps_a_large_index_current() -> None:
    changes = ChunkChanges(2)
    for i in range(100):
        changes.put_native((i, 0), bytes(12), i, 0)
    assert len(changes) == 100  # builds the index
    batch = [
        ((5, 0), "s3://b/a.nc", "", 1, 2, 0),
        ((200, 0), "s3://b/a.nc", "", 3, 4, 0),
        ((5, 0), "s3://b/b.nc", '"e"', 5, 6, 7),
    ]
    changes.put_virtual(_virtual_rows(batch))
    assert changes._rows is not None  # kept, not dropped for a rebuild
    assert len(changes) == 101
    assert changes[(5, 0)] == ChunkRef(
        VIRTUAL, offset=5, length=6, checksum=7, location="s3://b/b.nc", etag='"e"'
    )
    assert changes[(200, 0)] == ChunkRef(VIRTUAL, offset=3, length=4, location="s3://b/a.nc")
    assert _table_of(changes) == dict(changes.items())
