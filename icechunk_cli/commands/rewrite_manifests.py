"""``ick rewrite-manifests``: commit every array's manifests laid out by the current config."""

from __future__ import annotations

from typing import Annotated

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    complete_branches,
)
from icechunk_cli.render import Output

__all__ = ["rewrite_manifests"]

_MESSAGE = "Rewrite manifests"


def rewrite_manifests(
    branch: Annotated[
        str,
        typer.Option(
            "--branch",
            "-b",
            metavar="BRANCH",
            help="Branch to commit the new layout to.",
            autocompletion=complete_branches,
        ),
    ] = "main",
    message: Annotated[
        str, typer.Option("--message", "-m", metavar="MSG", help="Commit message.")
    ] = _MESSAGE,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Apply the manifest splitting config to every array, as one commit on BRANCH.

    Chunk references stay exactly as they were (a diff with the parent shows no change);
    only how they are cut into manifests changes. Set the rules first with
    `ick config set manifest.splitting.split_sizes JSON`.
    """
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    snapshot_id = repository.rewrite_manifests(message, branch=branch)
    if out.json:
        out.emit({"branch": branch, "snapshot_id": snapshot_id})
        return
    out.line(out.text("Rewrote manifests on ", (branch, "branch"), f": {snapshot_id}"))
