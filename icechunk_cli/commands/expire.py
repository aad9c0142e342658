"""``ick expire --older-than 30d|DATE``: release old snapshots from history (deletes nothing)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from icechunk_cli import addressing
from icechunk_cli.age import describe_age, older_than_option
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    YesOpt,
)
from icechunk_cli.progress import ProgressBar
from icechunk_cli.render import Output, ask, refuse_unasked

if TYPE_CHECKING:
    from icechunk_lib import ExpiredSnapshots


def expire(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE|DATE",
            help="Release snapshots written before this: an age (90m, 36h, 30d, 2w) or an "
            "ISO 8601 time (2026-11-01, 2026-11-01T12:00+01:00; no offset means UTC).",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Report what would be released; change nothing."),
    ] = False,
    delete_expired_branches: Annotated[
        bool,
        typer.Option(
            "--delete-expired-branches",
            help="Delete branches (never main) whose tip is released; else their tips stay.",
        ),
    ] = False,
    delete_expired_tags: Annotated[
        bool,
        typer.Option(
            "--delete-expired-tags",
            help="Delete tags whose snapshot is released; else their snapshots stay.",
        ),
    ] = False,
    yes: YesOpt = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Release snapshots older than a cut-off from history; delete nothing.

    The first snapshot and the tip of main are always kept, and main is never deleted.
    Other branch and tag tips are kept unless --delete-expired-branches/--delete-expired-tags
    is given, in which case a ref whose tip is released is deleted. Kept snapshots whose
    parent is released get the first snapshot as parent; their history, diffs and rebases
    stay exact. Released snapshots stay readable by id until `ick gc` removes them.

    Asks first at a terminal; in a script (stdin not a terminal) or with --json it does not
    ask, and --yes is required (not for --dry-run). Safe beside writers: a ref that moves
    meanwhile makes it look again.
    """
    out = Output(json=json, no_color=no_color)
    cutoff = older_than_option(older_than)
    if not dry_run and not yes:
        refuse_unasked(
            out,
            "expire",
            f"pass --yes to release snapshots older than {describe_age(cutoff)}, or --dry-run "
            "to see what it would release",
        )
    repository = addressing.open_repository(repo)
    flags = {
        "delete_expired_branches": delete_expired_branches,
        "delete_expired_tags": delete_expired_tags,
    }
    if not dry_run and not yes:
        with ProgressBar(out) as bar:
            plan = repository.expire_snapshots(cutoff, dry_run=True, progress=bar.update, **flags)
        if not plan and not plan.deleted_branches and not plan.deleted_tags:
            _render(out, plan, cutoff)
            return
        out.note(_summary(plan, cutoff, would=True))
        if not ask("Release these snapshots from history?"):
            out.note("ick: nothing changed")
            raise typer.Exit(1)
    with ProgressBar(out) as bar:
        result = repository.expire_snapshots(cutoff, dry_run=dry_run, progress=bar.update, **flags)
    _render(out, result, cutoff)


def _summary(result: ExpiredSnapshots, cutoff: dt.datetime, *, would: bool) -> str:
    verb = "would release" if would else "released"
    parts = [f"{verb} {len(result)} snapshot(s) older than {describe_age(cutoff)}"]
    if result.reparented:
        parts.append(
            f"{'would re-parent' if would else 're-parented'} {len(result.reparented)} kept "
            "snapshot(s) onto the first snapshot"
        )
    for kind, names in (("branch(es)", result.deleted_branches), ("tag(s)", result.deleted_tags)):
        if names:
            listed = ", ".join(names)
            parts.append(f"{'would delete' if would else 'deleted'} {kind} {listed}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:]


def _render(out: Output, result: ExpiredSnapshots, cutoff: dt.datetime) -> None:
    if out.json:
        doc: dict[str, Any] = {
            "dry_run": result.dry_run,
            "older_than": cutoff.astimezone(dt.UTC).isoformat(),
            "released": sorted(result),
            "reparented": list(result.reparented),
            "deleted_branches": list(result.deleted_branches),
            "deleted_tags": list(result.deleted_tags),
            "record_id": result.record_id,
        }
        out.emit(doc)
        return
    out.line(_summary(result, cutoff, would=result.dry_run))
    for sid in sorted(result):
        out.line(f"  {out.id(sid)}")
    if result.dry_run:
        out.line("Nothing was changed (dry run).")
    elif result:
        out.line("Nothing was deleted from storage: `ick gc` reclaims the space.")
