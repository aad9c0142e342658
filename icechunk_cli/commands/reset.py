"""``ick reset BRANCH REF``: move a branch, compare-and-swap, printing how to undo it."""

from __future__ import annotations

from typing import Annotated

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    BranchArg,
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    YesOpt,
    complete_refs,
)
from icechunk_cli.render import Output, ask, command_hint, refuse_unasked


def reset(
    branch: BranchArg,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="Where to move it: branch, tag, snapshot id or prefix, with optional ~N.",
            autocompletion=complete_refs,
        ),
    ],
    yes: YesOpt = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Move a branch to another snapshot, printing how to undo it.

    Asks first at a terminal; in a script (stdin not a terminal) or with --json it does not
    ask, and --yes is required. The move
    is a compare-and-swap: if BRANCH moves meanwhile, nothing changes and the exit code is 4.
    """
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    target = addressing.resolve(repository, ref)
    current = repository.lookup_branch(branch)
    if current == target:
        if out.json:
            out.emit(_doc(branch, current, target, moved=False))
        else:
            out.line(
                out.text("Branch ", (branch, "branch"), " is already at ", (out.id(target), "id"))
            )
        return
    if not yes:
        refuse_unasked(out, "reset", f"pass --yes to move branch {branch!r}")
        question = f"Move branch {branch!r} from {out.id(current)} to {out.id(target)}?"
        if not ask(question):
            out.note(f"ick: not moved; branch {branch!r} stays at {current}")
            raise typer.Exit(1)
    repository.reset_branch(branch, target, from_snapshot_id=current)
    if out.json:
        out.emit(_doc(branch, current, target, moved=True))
        return
    out.line(
        out.text(
            "Moved branch ",
            (branch, "branch"),
            " from ",
            (out.id(current), "id"),
            " to ",
            (out.id(target), "id"),
        )
    )
    out.line(f"undo with: {command_hint('reset', '--yes', args=(branch, current), repo=repo)}")


def _doc(branch: str, previous: str, target: str, *, moved: bool) -> dict[str, object]:
    return {"branch": branch, "previous_id": previous, "snapshot_id": target, "moved": moved}
