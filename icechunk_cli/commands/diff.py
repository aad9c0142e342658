"""``ick diff FROM [TO]``: groups and arrays added, deleted, updated, and chunks per array."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    complete_refs,
)
from icechunk_cli.render import Cell, Column, Output

if TYPE_CHECKING:
    import icechunk_lib as ic

__all__ = ["diff", "diff_doc", "parent_changes", "render_changes", "stat_doc"]


def diff(
    from_ref: Annotated[
        str,
        typer.Argument(
            metavar="FROM",
            help="The older revision; alone, the changes its snapshot made (parent..FROM).",
            autocompletion=complete_refs,
        ),
    ],
    to_ref: Annotated[
        str | None,
        typer.Argument(
            metavar="TO",
            help="The newer revision. Any two snapshots can be compared.",
            autocompletion=complete_refs,
            show_default=False,
        ),
    ] = None,
    stat: Annotated[
        bool, typer.Option("--stat", help="Counts only: chunks per array and a summary.")
    ] = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Show what changed between two revisions (or what FROM's snapshot changed)."""
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    old: str | None
    if to_ref is None:
        new = addressing.resolve(repository, from_ref)
        old = repository.lookup_snapshot(new).parent_id
        changes = parent_changes(repository, old, new)
    else:
        old = addressing.resolve(repository, from_ref)
        new = addressing.resolve(repository, to_ref)
        changes = repository.diff(from_snapshot_id=old, to_snapshot_id=new)
    if out.json:
        out.emit(diff_doc(old, new, changes, stat=stat))
        return
    out.line(out.text("from ", (out.id(old), "id"), " to ", (out.id(new), "id")))
    render_changes(out, changes, stat=stat)


def parent_changes(repository: ic.Repository, parent: str | None, snapshot_id: str) -> ic.Diff:
    """What ``snapshot_id`` changed relative to its ``parent`` (the first snapshot: nothing)."""
    import icechunk_lib as ic
    from icechunk_lib.errors import MissingObjectError

    if parent is None:
        return ic.Diff()  # the first snapshot is empty
    try:
        return repository.diff(from_snapshot_id=parent, to_snapshot_id=snapshot_id)
    except ic.SnapshotNotFoundError as exc:
        if exc.snapshot_id != parent:
            raise
        # The repository named this parent, not the user: its absence is damage.
        raise MissingObjectError(f"snapshots/{parent}", repository.storage.url) from None


def diff_doc(old: str | None, new: str, changes: ic.Diff, *, stat: bool = False) -> dict[str, Any]:
    """The JSON form of a diff (fields documented in docs/cli.md)."""
    chunks = [
        {"path": path, "count": len(coords), **({} if stat else {"coords": coords})}
        for path, coords in sorted(changes.updated_chunks.items())
    ]
    doc: dict[str, Any] = {"from": old, "to": new}
    if not stat:
        doc["groups"] = {
            "added": sorted(changes.new_groups),
            "deleted": sorted(changes.deleted_groups),
            "updated": sorted(changes.updated_groups),
        }
        doc["arrays"] = {
            "added": sorted(changes.new_arrays),
            "deleted": sorted(changes.deleted_arrays),
            "updated": sorted(changes.updated_arrays),
        }
        doc["moved"] = [{"from": a, "to": b} for a, b in changes.moved_nodes]
    doc["chunks"] = chunks
    doc["stat"] = stat_doc(changes)
    return doc


def stat_doc(changes: ic.Diff) -> dict[str, int]:
    return {
        "groups_added": len(changes.new_groups),
        "groups_deleted": len(changes.deleted_groups),
        "groups_updated": len(changes.updated_groups),
        "arrays_added": len(changes.new_arrays),
        "arrays_deleted": len(changes.deleted_arrays),
        "arrays_updated": len(changes.updated_arrays),
        "nodes_moved": len(changes.moved_nodes),
        "arrays_with_chunk_changes": len(changes.updated_chunks),
        "chunks_changed": sum(len(c) for c in changes.updated_chunks.values()),
    }


def _summary(changes: ic.Diff) -> str:
    counts = stat_doc(changes)
    parts = []
    for key, noun in (
        ("groups_added", "group added"),
        ("groups_deleted", "group deleted"),
        ("groups_updated", "group updated"),
        ("arrays_added", "array added"),
        ("arrays_deleted", "array deleted"),
        ("arrays_updated", "array updated"),
        ("nodes_moved", "node moved"),
    ):
        if counts[key]:
            parts.append(_plural(counts[key], noun))
    if counts["chunks_changed"]:
        parts.append(
            f"{_plural(counts['chunks_changed'], 'chunk')} changed in "
            f"{_plural(counts['arrays_with_chunk_changes'], 'array')}"
        )
    return ", ".join(parts) if parts else "no changes"


def _plural(n: int, noun: str) -> str:
    word, _, rest = noun.partition(" ")
    word = word if n == 1 else word + "s"
    return f"{n} {word}" + (f" {rest}" if rest else "")


def render_changes(out: Output, changes: ic.Diff, *, stat: bool = False) -> None:
    """The changes as a table (one row per node) or, with ``stat``, chunk counts per array."""
    chunk_counts = {p: len(c) for p, c in changes.updated_chunks.items()}
    if changes.is_empty():
        out.line(out.text(("no changes", "dim")))
        return
    if stat:
        if chunk_counts:
            out.table(
                [Column("array"), Column("chunks", numeric=True)],
                [[p, str(n)] for p, n in sorted(chunk_counts.items())],
            )
        out.line(_summary(changes))
        return
    rows: list[tuple[str, str, str, str]] = []
    for change, kind, paths in (
        ("added", "group", changes.new_groups),
        ("deleted", "group", changes.deleted_groups),
        ("updated", "group", changes.updated_groups),
        ("added", "array", changes.new_arrays),
        ("deleted", "array", changes.deleted_arrays),
        ("updated", "array", changes.updated_arrays),
    ):
        rows.extend((path, change, kind, "") for path in paths)
    listed = {r[0] for r in rows}
    rows.extend((p, "written", "array", "") for p in chunk_counts if p not in listed)
    rows.extend((a, "moved", "node", b) for a, b in changes.moved_nodes)
    table: list[list[Cell]] = []
    for path, change, kind, target in sorted(rows):
        shown = f"{path} -> {target}" if change == "moved" else path
        count = chunk_counts.get(path) if change != "moved" else None
        style = "updated" if change == "written" else change
        table.append(
            [(change, style), kind, (shown, "group" if kind == "group" else None), _n(count)]
        )
    out.table(
        [Column("change"), Column("kind"), Column("path", shrink=True), Column("chunks", True)],
        table,
    )
    out.line(_summary(changes))


def _n(count: int | None) -> str:
    return "" if count is None else str(count)
