"""``ick log``: the history of a revision, or of every branch and tag, optionally as a graph.

History reads are paged by the library (one snapshot read yields up to 101 entries), and the
walk stops after ``-n`` entries, so ``ick log -n 1000`` reads about ten snapshots.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    JsonOpt,
    LimitOpt,
    NoColorOpt,
    RefArg,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
)
from icechunk_cli.render import Cell, Output, iso_time, snapshot_doc

if TYPE_CHECKING:
    import icechunk_lib as ic

__all__ = ["Decorations", "decorations", "log", "ref_label", "render_entry", "warn_damaged"]

LANE_STYLES = ("red", "green", "yellow", "blue", "magenta", "cyan")
"""Lane colours of --graph, in order of appearance."""

Decorations = dict[str, tuple[list[str], list[str]]]
"""Snapshot id -> (branches, tags) pointing at it."""


def log(
    ref: RefArg = None,
    max_count: LimitOpt = None,
    oneline: Annotated[
        bool, typer.Option("--oneline", help="One line per snapshot: id, refs, message.")
    ] = False,
    graph: Annotated[
        bool,
        typer.Option("--graph", help="Draw the history as a graph, one line per snapshot."),
    ] = False,
    all_refs: Annotated[
        bool,
        typer.Option("--all", help="Show the history of every branch and tag (and REF)."),
    ] = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Show the history, newest first.

    Shows REF (default main) and its ancestors; with --all, the history of every branch and
    tag; with --graph, lanes show where histories fork.
    """
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    damaged: list[str] = []
    decor = decorations(repository, strict=all_refs, damaged=damaged)
    tips: list[str] = []
    if all_refs:
        tips = list(decor)
        if ref is not None:
            tips.append(addressing.resolve(repository, ref))
    else:
        tips = [addressing.resolve(repository, ref)]
    entries = _history(repository, tips)
    if max_count is not None:
        entries = itertools.islice(entries, max_count)

    if out.json:
        out.emit({"snapshots": [_entry_doc(e, decor) for e in entries]})
    elif graph:
        _print_graph(out, entries, decor)
    else:
        for entry in entries:
            render_entry(out, entry, decor, oneline=oneline)
    warn_damaged(out, damaged)


def _history(repository: ic.Repository, tips: list[str]) -> Iterator[ic.SnapshotInfo]:
    from icechunk_cli.graph import merge_histories

    unique = list(dict.fromkeys(tips))
    if len(unique) == 1:
        return repository.ancestry(snapshot_id=unique[0])
    return merge_histories(repository.ancestry(snapshot_id=t) for t in unique)


def decorations(
    repository: ic.Repository, *, strict: bool = False, damaged: list[str] | None = None
) -> Decorations:
    """Which branches and tags point at which snapshot (one read per ref).

    The labels are decoration: a damaged ref is left out and named in ``damaged``, so that it
    does not fail a command that does not need it. With ``strict`` (``log --all``, which needs
    every ref) it fails the command.
    """
    from icechunk_lib.errors import CorruptObjectError, RefNotFoundError, UnsupportedFormatError

    found: Decorations = {}
    refs = [(n, "branch") for n in sorted(repository.list_branches())]
    refs += [(n, "tag") for n in sorted(repository.list_tags())]
    for name, kind in refs:
        try:
            tip = (
                repository.lookup_branch(name) if kind == "branch" else repository.lookup_tag(name)
            )
        except RefNotFoundError:
            continue  # deleted meanwhile
        except (CorruptObjectError, UnsupportedFormatError):  # a ref this ick cannot read
            if strict:
                raise
            if damaged is not None:
                damaged.append(f"{kind} {name!r}")
            continue
        found.setdefault(tip, ([], []))[0 if kind == "branch" else 1].append(name)
    return found


def warn_damaged(out: Output, damaged: list[str]) -> None:
    """After the output: one line naming the refs left out of the labels because damaged."""
    if damaged:
        verb = "are" if len(damaged) > 1 else "is"
        out.note(
            f"ick: warning: {', '.join(damaged)} {verb} damaged and not shown; "
            "`ick log --all` reports the damage"
        )


def _entry_doc(entry: ic.SnapshotInfo, decor: Decorations) -> dict[str, Any]:
    branches, tags = decor.get(entry.id, ([], []))
    return {**snapshot_doc(entry), "branches": branches, "tags": tags}


def ref_label(out: Output, snapshot_id: str, decor: Decorations) -> list[Cell]:
    """``(main, dev, tag: v1.0)`` for a decorated snapshot, nothing otherwise."""
    branches, tags = decor.get(snapshot_id, ([], []))
    if not branches and not tags:
        return []
    parts: list[Cell] = ["("]
    names: list[Cell] = [(b, "branch") for b in branches]
    names += [(f"tag: {t}", "tag") for t in tags]
    for i, name in enumerate(names):
        if i:
            parts.append(", ")
        parts.append(name)
    parts.append(")")
    return parts


def _summary(out: Output, entry: ic.SnapshotInfo, decor: Decorations) -> list[Cell]:
    """id, refs, message, and on a terminal the relative time: the one-line form."""
    message = entry.message.splitlines()[0] if entry.message else ""
    label = ref_label(out, entry.id, decor)
    cells: list[Cell] = [(out.id(entry.id), "id"), " ", *label, " " if label else "", message]
    if out.terminal:
        cells.append((f" · {out.when(entry.written_at)}", "dim"))
    return cells


def render_entry(
    out: Output, entry: ic.SnapshotInfo, decor: Decorations, *, oneline: bool = False
) -> None:
    """A snapshot as ``log`` and ``show`` print it: one line, or a git-style block."""
    if oneline:
        out.line(out.text(*_summary(out, entry, decor)))
        return
    label = ref_label(out, entry.id, decor)
    out.line(out.text(("snapshot ", "id"), (out.id(entry.id), "id"), " " if label else "", *label))
    if entry.parent_id is not None:
        out.line(out.text("parent   ", (out.id(entry.parent_id), "id")))
    when = out.when(entry.written_at)
    if out.terminal:
        when = f"{iso_time(entry.written_at)} ({when})"
    out.line(out.text("date     ", (when, "time")))
    for key, value in sorted(entry.metadata.items()):
        out.line(out.text((f"{key}: ", "key"), str(value)))
    out.line()
    for text in (entry.message or "").splitlines() or [""]:
        out.wrapped(f"    {text}".rstrip())
    out.line()


def _print_graph(out: Output, entries: Iterator[ic.SnapshotInfo], decor: Decorations) -> None:
    from icechunk_cli.graph import GraphLayout

    layout = GraphLayout()
    for row in layout.draw(entries):
        cells: list[Cell] = []
        for ch, lane in row.cells:
            style = LANE_STYLES[lane % len(LANE_STYLES)] if lane is not None else None
            cells.append((ch, style) if ch != " " else ch)
        if row.entry is not None:
            cells.append(" ")
            cells.extend(_summary(out, row.entry, decor))
        out.line(out.text(*cells))
