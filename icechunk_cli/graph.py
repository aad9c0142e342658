"""History for ``ick log --all``: several branches' ancestries in one stream, drawn as a graph.

Snapshots have one parent, so the history of a repository is a tree: branches and tags are
tips, and their histories join where they share a snapshot. ``merge_histories`` walks every
tip's ancestry lazily, newest first, yielding each snapshot once and dropping a walk as soon
as it reaches a snapshot another walk already produced, so shared history is read once.
``GraphLayout`` assigns each line of descent a lane and draws, git-style::

    * 0T8M1J0Q (experiment) try a coarser grid
    | * 7EZX4W6R (main, tag: v1.1) add day 3
    |/
    * 1RZ0G4C5 (tag: v1.0) add day 2
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = ["GraphLayout", "GraphRow", "HistoryEntry", "merge_histories"]


class HistoryEntry(Protocol):
    """What the graph needs of a snapshot (``SnapshotInfo`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def written_at(self) -> Any: ...


E = TypeVar("E", bound=HistoryEntry)


def merge_histories(walks: Iterable[Iterator[E]]) -> Iterator[E]:
    """Snapshots of several ancestries, newest first, each once.

    Every walk must be newest first (as ``Repository.ancestry`` is); a child is always
    written after its parent, so the result lists children before parents.
    """
    seen: set[str] = set()
    heap: list[tuple[Any, int, E, Iterator[E]]] = []
    counter = itertools.count()

    def push(walk: Iterator[E]) -> None:
        entry = next(walk, None)
        if entry is not None:
            # Newest first: negate nothing, compare by a key that sorts descending.
            heapq.heappush(heap, (_Desc(entry.written_at), next(counter), entry, walk))

    for walk in walks:
        push(walk)
    while heap:
        _, _, entry, walk = heapq.heappop(heap)
        if entry.id in seen:
            continue  # the rest of this walk is shared history another walk yields
        seen.add(entry.id)
        yield entry
        push(walk)


class _Desc:
    """Reverses the order of a comparable value (datetimes cannot be negated)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash(self.value)


@dataclass(frozen=True)
class GraphRow:
    """One line of the graph: its cells (character, lane) and, on snapshot rows, the entry."""

    cells: tuple[tuple[str, int | None], ...]
    entry: Any = None

    @property
    def text(self) -> str:
        return "".join(ch for ch, _ in self.cells)


@dataclass
class _Lane:
    id: int
    expects: str | None
    """The snapshot this lane draws next (the parent of its last one); None when ended."""


class GraphLayout:
    """Lays snapshots (children before parents) out in lanes, two characters per lane."""

    def __init__(self) -> None:
        self._lanes: list[_Lane] = []
        self._ids = itertools.count()

    @property
    def width(self) -> int:
        """Characters the graph occupies now (the text column starts after it)."""
        return 2 * max(len(self._lanes), 1)

    def add(self, entry: HistoryEntry) -> list[GraphRow]:
        """The rows that lead to ``entry`` and the row that shows it."""
        rows: list[GraphRow] = []
        lanes = self._lanes
        matches = [i for i, lane in enumerate(lanes) if lane.expects == entry.id]
        if matches:
            target = lanes[matches[0]]
        else:  # a tip: a new lane on the right
            target = _Lane(next(self._ids), entry.id)
            lanes.append(target)
            matches = [len(lanes) - 1]
        # Lanes that reached this snapshot too join the target; ended lanes disappear; the
        # rest close up to the left. Each transition row moves a lane at most one column.
        merging = {id(lanes[i]) for i in matches[1:]}
        keep = [lane for lane in lanes if lane.expects is not None and id(lane) not in merging]
        goal = {id(lane): i for i, lane in enumerate(keep)}
        for i in matches[1:]:
            goal[id(lanes[i])] = goal[id(target)]
        pos = {id(lane): i for i, lane in enumerate(lanes) if lane.expects is not None}
        moving = [lane for lane in lanes if lane.expects is not None]
        while any(pos[id(lane)] > goal[id(lane)] for lane in moving):
            cells: dict[int, tuple[str, int]] = {}
            for lane in moving:
                p = pos[id(lane)]
                if p > goal[id(lane)]:
                    cells[2 * p - 1] = ("/", lane.id)
                    pos[id(lane)] = p - 1
                else:
                    cells.setdefault(2 * p, ("|", lane.id))
            rows.append(_row(cells))
        self._lanes = lanes = keep
        cells = {2 * i: ("*" if lane is target else "|", lane.id) for i, lane in enumerate(lanes)}
        rows.append(_row(cells, entry, width=2 * len(lanes) - 1))
        target.expects = entry.parent_id
        return rows

    def draw(self, entries: Iterable[E]) -> Iterator[GraphRow]:
        for entry in entries:
            yield from self.add(entry)


def _row(cells: dict[int, tuple[str, int]], entry: Any = None, width: int = 0) -> GraphRow:
    size = max(width, max(cells) + 1 if cells else 0)
    line: list[tuple[str, int | None]] = [(" ", None)] * size
    for at, cell in cells.items():
        line[at] = cell
    return GraphRow(tuple(line), entry)
