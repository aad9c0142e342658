"""Pieces by region: cutting a table along split sizes, and finding the pieces that may hold
a chunk, checked against brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from icechunk_lib.format.manifest import NATIVE, ChunkRef, ChunkTable
from icechunk_lib.format.pieces import PieceIndex, cut_regions, region_ref, uses_regions
from icechunk_lib.format.snapshot import ManifestRef, RegionRef

coords_sets = st.sets(st.tuples(st.integers(0, 12), st.integers(0, 9)), min_size=1, max_size=60)
sizes = st.tuples(st.integers(1, 7), st.integers(1, 7))


def _holds(piece: RegionRef, c: tuple[int, ...]) -> bool:
    return all(lo <= x <= hi for lo, x, hi in zip(piece.lower, c, piece.upper, strict=True))


def _table(coords: list[tuple[int, int]]) -> ChunkTable:
    refs = [ChunkRef(NATIVE, bytes([i % 256]) * 12, 0, i + 1, i) for i in range(len(coords))]
    return ChunkTable.from_refs("n", np.array(coords, dtype=np.int64).reshape(-1, 2), refs)


@settings(max_examples=60, deadline=None)
@given(coords=coords_sets, split=sizes)
def test_cut_regions_partitions_rows_by_region(
    coords: set[tuple[int, int]], split: tuple[int, int]
) -> None:
    table = _table(sorted(coords))
    parts = cut_regions(table, split)
    seen: dict[tuple[int, int], int] = {}
    regions = set()
    for part in parts:
        matrix = part.coords()
        region = {tuple(r) for r in (matrix // split).tolist()}
        assert len(region) == 1  # one region per piece
        regions |= region
        for row, c in enumerate(map(tuple, matrix.tolist())):
            assert c not in seen
            seen[c] = part.lengths.item(row)
        assert (np.diff(part.keys) > 0).all()  # still sorted
    assert len(regions) == len(parts)
    original = {tuple(c): table.lengths.item(i) for i, c in enumerate(table.coords().tolist())}
    assert seen == original  # every row once, with its own ref


@settings(max_examples=60, deadline=None)
@given(
    coords=coords_sets,
    first=sizes,
    second=sizes,
    probe=st.lists(st.tuples(st.integers(0, 14), st.integers(0, 11)), max_size=30),
)
def test_candidates_are_exactly_the_pieces_whose_boxes_hold_the_coords(
    coords: set[tuple[int, int]],
    first: tuple[int, int],
    second: tuple[int, int],
    probe: list[tuple[int, int]],
) -> None:
    # Pieces under two split sizes (as after a change of config), boxes possibly overlapping.
    ordered = sorted(coords)
    half = len(ordered) // 2
    pieces = [
        region_ref(f"a{i}", t)
        for i, t in enumerate(cut_regions(_table(ordered[:half] or ordered), first))
    ]
    pieces += [
        region_ref(f"b{i}", t)
        for i, t in enumerate(cut_regions(_table(ordered[half:] or ordered), second))
    ]
    index = PieceIndex(pieces, 2)
    for c in probe + ordered:
        brute = [p for p in pieces if _holds(p, c)]
        assert list(index.candidates(c)) == brute
    changed = np.array(probe or [(0, 0)], dtype=np.int64)
    touched = {i for i, p in enumerate(pieces) for c in changed.tolist() if _holds(p, tuple(c))}
    assert index.touched(changed) == sorted(touched)


def test_a_row_major_piece_is_bounded_up_to_the_first_axis_where_its_ends_differ() -> None:
    legacy = [
        ManifestRef("m0", (0, 0, 0), (2, 5, 1), 10),
        ManifestRef("m1", (2, 5, 2), (2, 9, 9), 10),
    ]
    index = PieceIndex(legacy, 3)
    assert not uses_regions(legacy)
    assert [p.manifest_id for p in index.candidates((1, 99, 99))] == ["m0"]
    assert [p.manifest_id for p in index.candidates((2, 7, 0))] == ["m0", "m1"]
    assert [p.manifest_id for p in index.candidates((3, 0, 0))] == []
    assert index.candidates((2, 4, 0)) == (legacy[0],)
    mixed = [*legacy, RegionRef("r", (5, 0, 0), (6, 1, 1), 8, (5, 0, 0), (6, 1, 1))]
    assert uses_regions(mixed)
    assert [p.manifest_id for p in PieceIndex(mixed, 3).candidates((6, 0, 1))] == ["r"]
