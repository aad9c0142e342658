"""``ick reflog [BRANCH]``: every position a branch has had, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    JsonOpt,
    LimitOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    complete_branches,
)
from icechunk_cli.render import Cell, Column, Output


def reflog(
    branch: Annotated[
        str | None,
        typer.Argument(
            metavar="BRANCH",
            help="Branch name (default: main).",
            autocompletion=complete_branches,
            show_default=False,
        ),
    ] = None,
    max_count: LimitOpt = None,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Show every past position of a branch, newest first.

    For each move of BRANCH (default main): when, why (create, commit, reset), from where and
    to where. `ick reset BRANCH SNAPSHOT` goes back to any of them.
    """
    from icechunk_lib import DEFAULT_BRANCH

    out = Output(json=json, no_color=no_color)
    branch = DEFAULT_BRANCH if branch is None else branch
    repository = addressing.open_repository(repo)
    entries = repository.reflog(branch)[:max_count]
    if out.json:
        out.emit(
            {
                "branch": branch,
                "entries": [
                    {
                        "snapshot_id": e.snapshot_id,
                        "previous_id": e.previous_id,
                        "at": e.at.isoformat(),
                        "action": e.action,
                        "message": e.message,
                    }
                    for e in entries
                ],
            }
        )
        return
    rows: list[list[Cell]] = [
        [
            (out.when(e.at), "time"),
            e.action,
            (out.id(e.snapshot_id), "id"),
            (out.id(e.previous_id), "dim"),
            e.message.splitlines()[0] if e.message else "",
        ]
        for e in entries
    ]
    out.table(
        [
            Column("when"),
            Column("action"),
            Column("snapshot"),
            Column("previous"),
            Column("message", shrink=True),
        ],
        rows,
    )
