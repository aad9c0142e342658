"""The history merge and lane layout behind ``ick log --graph --all``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from icechunk_cli.graph import GraphLayout, merge_histories


@dataclass(frozen=True)
class Node:
    id: str
    parent_id: str | None
    written_at: int


def tree(spec: str) -> dict[str, Node]:
    """``"a b:a c:b"``: a root, b on a, c on b; times follow the order written."""
    nodes = {}
    for t, item in enumerate(spec.split()):
        name, _, parent = item.partition(":")
        nodes[name] = Node(name, parent or None, t)
    return nodes


def walk(nodes: dict[str, Node], tip: str) -> Iterator[Node]:
    cursor: str | None = tip
    while cursor is not None:
        yield nodes[cursor]
        cursor = nodes[cursor].parent_id


def draw(nodes: dict[str, Node], *tips: str) -> list[str]:
    entries = merge_histories(walk(nodes, t) for t in tips)
    return [
        row.text + (f" {row.entry.id}" if row.entry is not None else "")
        for row in GraphLayout().draw(entries)
    ]


def test_merge_yields_each_snapshot_once_newest_first_and_stops_early() -> None:
    nodes = tree("r a:r b:a c:b x:a y:x")
    pulled: list[str] = []

    def counting(tip: str) -> Iterator[Node]:
        for node in walk(nodes, tip):
            pulled.append(node.id)
            yield node

    merged = [n.id for n in merge_histories([counting("c"), counting("y")])]
    assert merged == ["y", "x", "c", "b", "a", "r"]
    # The second walk to reach "a" is dropped there: it never reads "r" again.
    assert pulled.count("r") == 1
    assert pulled.count("a") == 2


def test_a_linear_history_is_one_lane() -> None:
    assert draw(tree("r a:r b:a"), "b") == ["* b", "* a", "* r"]


def test_two_branches_fork_and_join() -> None:
    assert draw(tree("r a:r b:a x:a"), "b", "x") == [
        "* x",
        "| * b",
        "|/",
        "* a",
        "* r",
    ]


def test_a_lane_passes_another_on_its_way_to_join() -> None:
    # c and y fork from a, z forks later from x: z's lane sits between c's and y's.
    lines = draw(tree("r a:r b:a c:b x:a y:x z:x"), "c", "z", "y")
    assert lines == [
        "* z",
        "| * y",
        "|/",
        "* x",
        "| * c",
        "| * b",
        "|/",
        "* a",
        "* r",
    ]


def test_three_lanes_join_at_once() -> None:
    assert draw(tree("r a:r b:a c:a d:a"), "b", "c", "d") == [
        "* d",
        "| * c",
        "| | * b",
        "|/ /",
        "|/",
        "* a",
        "* r",
    ]


def test_lanes_further_right_close_up_after_a_join() -> None:
    # b and c join at a while d (from r) keeps its lane, which then moves left.
    lines = draw(tree("r d:r a:r b:a c:a"), "d", "b", "c")
    assert lines == [
        "* c",
        "| * b",
        "|/",
        "* a",
        "| * d",
        "|/",
        "* r",
    ]


def test_tips_on_shared_history_need_no_lane() -> None:
    nodes = tree("r a:r b:a")
    assert draw(nodes, "b", "a") == ["* b", "* a", "* r"]
