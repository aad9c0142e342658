"""Coalescing byte ranges of one object: neighbours become one request, split back after.

Two ranges merge when the gap between them is at most ``MAX_GAP`` bytes and the merged
request stays within ``MAX_REQUEST`` bytes (a single range larger than that goes alone,
whole). A request costs a round trip (tens of milliseconds on S3, where a few megabytes
would have streamed meanwhile), so reading a small gap is cheaper than a second request.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MAX_GAP", "MAX_REQUEST", "plan"]

MAX_GAP = 256 * 1024
"""Ranges of one object at most this many bytes apart are fetched in one request."""
MAX_REQUEST = 16 * 1024 * 1024
"""A merged request never spans more than this many bytes."""


def plan(
    ranges: Sequence[tuple[int, int]], max_gap: int = MAX_GAP, max_request: int = MAX_REQUEST
) -> list[tuple[int, int, list[int]]]:
    """The requests for ``ranges`` (``[start, end)`` pairs of one object): each a
    ``(start, end, indices)`` covering the ranges at ``indices``, in offset order."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i])
    out: list[tuple[int, int, list[int]]] = []
    for i in order:
        start, end = ranges[i]
        if out:
            first, last, members = out[-1]
            if start - last <= max_gap and max(end, last) - first <= max_request:
                members.append(i)
                out[-1] = (first, max(end, last), members)
                continue
        out.append((start, end, [i]))
    return out
