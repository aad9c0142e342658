"""``ick gc [--older-than 7d|DATE] [--dry-run] [--yes]``: delete what no ref reaches."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

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
from icechunk_cli.render import Output, ask, format_bytes, refuse_unasked

DEFAULT_GRACE = "7d"
"""The default ``--older-than``: longer than any session is expected to stay open, so gc
beside writers deletes none of their chunks (see docs/maintenance.md)."""

_KINDS = (
    ("snapshots_deleted", "snapshot"),
    ("transaction_logs_deleted", "transaction log"),
    ("manifests_deleted", "manifest"),
    ("chunks_deleted", "chunk"),
)


def gc(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE|DATE",
            help="Delete only objects the storage says were written before this: an age "
            "(90m, 36h, 7d, 2w) or an ISO 8601 time. Must be longer than any session stays "
            "open while writing.",
        ),
    ] = DEFAULT_GRACE,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only report what would be deleted; delete nothing."),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Mark from every ref and list everything, instead of starting from what "
            "the last gc saw.",
        ),
    ] = False,
    yes: YesOpt = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Delete the objects no branch or tag reaches, once older than the grace period.

    An object goes only if nothing reachable from a branch or tag names it AND the storage
    wrote it before --older-than (default 7d), so sessions still writing keep their chunks.
    Safe to run beside writers and beside another gc. Asks first at a terminal; in a script
    or with --json it does not ask, and --yes (or --dry-run) is required. Each run records
    what it saw, so the next one reads only what changed since. Only the repository's own
    objects are deleted: the files virtual chunks point into are never touched.
    """
    out = Output(json=json, no_color=no_color)
    cut_off = older_than_option(older_than)
    repository = addressing.open_repository(repo)
    if not dry_run and not yes:
        refuse_unasked(out, "gc", "pass --yes to delete (or --dry-run to see what would go)")
        question = (
            "Delete every object no branch or tag reaches that was written before "
            f"{describe_age(cut_off)}?"
        )
        if not ask(question):
            out.note("ick: nothing deleted")
            raise typer.Exit(1)
    with ProgressBar(out) as bar:
        summary = repository.garbage_collect(
            cut_off, dry_run=dry_run, full=full, progress=bar.update
        )
    counts = {name: getattr(summary, name) for name, _ in _KINDS}
    if out.json:
        out.emit(
            {
                "dry_run": summary.dry_run,
                "cut_off": cut_off.astimezone(dt.UTC).isoformat(),
                "full": summary.full,
                "bytes_deleted": summary.bytes_deleted,
                **counts,
                "attributes_deleted": summary.attributes_deleted,
                "snapshots_read": summary.snapshots_read,
                "manifests_read": summary.manifests_read,
                "objects_listed": summary.objects_listed,
            }
        )
        return
    parts = [f"{counts[name]} {label}{'s' if counts[name] != 1 else ''}" for name, label in _KINDS]
    verb = "Would delete" if summary.dry_run else "Deleted"
    size = format_bytes(summary.bytes_deleted)
    out.line(f"{verb} {', '.join(parts)} ({size}), written before {describe_age(cut_off)}")
    kind = "full" if summary.full else "incremental"
    out.note(
        f"ick: {kind} run: read {summary.snapshots_read} snapshots and "
        f"{summary.manifests_read} manifests, listed {summary.objects_listed} objects"
    )
