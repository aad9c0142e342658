"""``ick show [REF]``: one snapshot with what it changed."""

from __future__ import annotations

from icechunk_cli import addressing
from icechunk_cli.commands.diff import diff_doc, parent_changes, render_changes
from icechunk_cli.commands.log import decorations, render_entry, warn_damaged
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RefArg,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
)
from icechunk_cli.render import Output, snapshot_doc


def show(
    ref: RefArg = None,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Show one snapshot and what it changed.

    REF defaults to main. Shows the id, parent, time, message and metadata, then the groups,
    arrays and chunks that changed relative to the parent.
    """
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    snapshot_id = addressing.resolve(repository, ref)
    info = repository.lookup_snapshot(snapshot_id)
    changes = parent_changes(repository, info.parent_id, snapshot_id) if info.parent_id else None
    damaged: list[str] = []
    decor = decorations(repository, damaged=damaged)
    if out.json:
        branches, tags = decor.get(snapshot_id, ([], []))
        out.emit(
            {
                "snapshot": {**snapshot_doc(info), "branches": branches, "tags": tags},
                "changes": diff_doc(info.parent_id, snapshot_id, changes)
                if changes is not None
                else None,
            }
        )
    else:
        render_entry(out, info, decor)
        if changes is not None:
            render_changes(out, changes)
    warn_damaged(out, damaged)
