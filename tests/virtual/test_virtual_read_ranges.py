"""How byte ranges of one object are coalesced into requests (``virtual._ranges.plan``)."""

from __future__ import annotations

from icechunk_lib.virtual._ranges import MAX_GAP, MAX_REQUEST, plan


def test_adjacent_and_close_ranges_merge_far_ones_do_not() -> None:
    ranges = [(100, 200), (0, 100), (200 + MAX_GAP, 300 + MAX_GAP), (10_000_000, 10_000_010)]
    assert plan(ranges) == [
        (0, 300 + MAX_GAP, [1, 0, 2]),
        (10_000_000, 10_000_010, [3]),
    ]
    assert plan([(0, 10), (11 + MAX_GAP, 20 + MAX_GAP)]) == [
        (0, 10, [0]),
        (11 + MAX_GAP, 20 + MAX_GAP, [1]),
    ]


def test_overlapping_and_repeated_ranges_share_one_request() -> None:
    assert plan([(0, 50), (10, 20), (10, 20), (40, 80)]) == [(0, 80, [0, 1, 2, 3])]


def test_a_merged_request_stays_within_the_cap() -> None:
    size = MAX_REQUEST // 4
    ranges = [(i * size, (i + 1) * size) for i in range(6)]
    requests = plan(ranges)
    assert [r[2] for r in requests] == [[0, 1, 2, 3], [4, 5]]
    assert all(end - start <= MAX_REQUEST for start, end, _ in requests)
    # A range larger than the cap goes alone, whole.
    assert plan([(0, 2 * MAX_REQUEST), (2 * MAX_REQUEST, 2 * MAX_REQUEST + 1)]) == [
        (0, 2 * MAX_REQUEST, [0]),
        (2 * MAX_REQUEST, 2 * MAX_REQUEST + 1, [1]),
    ]
