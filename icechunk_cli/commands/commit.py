"""``ick commit --from SOURCE``: commit the content of a plain Zarr v3 store into a branch.

The library's importer makes the tree at DEST match SOURCE (creating, updating and deleting
groups and arrays) and writes only chunks whose checksum changed; this command adds the
progress bar, the question before deleting groups or arrays, the commit and the summary.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from icechunk_cli import addressing, render
from icechunk_cli.errors import Interrupted, PathNotFoundError
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    complete_branches,
)
from icechunk_cli.progress import ProgressBar
from icechunk_cli.render import Column, Output, ask, can_ask, format_bytes, mark_outcome_reported

if TYPE_CHECKING:
    import icechunk_lib as ic
    from icechunk_lib.ops.importer import ImportStats

__all__ = ["commit", "commit_imported", "parse_metadata"]

T = TypeVar("T")

_SHOWN = 10
"""Paths listed in a question or warning before "..."."""


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; values stay text."""
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--metadata")
        metadata[key] = value
    return metadata


def commit(
    message: Annotated[str, typer.Option("--message", "-m", metavar="MSG", help="Commit message.")],
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="SOURCE",
            help="Plain Zarr v3 store: a local directory or an fsspec URL.",
        ),
    ],
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            "-b",
            metavar="BRANCH",
            help="Branch to commit to (default: main).",
            autocompletion=complete_branches,
        ),
    ] = None,
    dest: Annotated[
        str, typer.Option("--path", metavar="DEST", help="Group in the repository to fill.")
    ] = "/",
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            metavar="KEY=VALUE",
            help="Snapshot metadata; repeat for several keys.",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Delete groups and arrays under DEST that SOURCE lacks, unasked."
        ),
    ] = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Commit the content of a plain Zarr v3 store.

    Groups and arrays under DEST are created, updated or deleted to match SOURCE, and only
    chunks whose content changed are written. SOURCE must be a store's top directory (the
    one holding its root zarr.json) and every zarr.json in it valid, or nothing is imported.
    Deleting groups or arrays that SOURCE lacks needs --yes, or a yes at the terminal.
    With nothing to change, nothing is committed and the exit code is 0.
    """
    out = Output(json=json, no_color=no_color)
    meta = parse_metadata(metadata or [])
    if not dest.strip():  # "$UNSET": importing into / could delete the whole branch
        raise typer.BadParameter("DEST is empty; the root group is /", param_hint="--path")
    if not source.strip():  # "$UNSET" is not the current directory
        raise typer.BadParameter("SOURCE is empty; the current directory is .", param_hint="--from")
    from icechunk_lib import DEFAULT_BRANCH
    from icechunk_lib.storage.url import redact_url, url_scheme

    if url_scheme(source) is None and not _local(source).exists():
        raise PathNotFoundError(f"no such directory: {source}", "give the Zarr store's path")
    shown = redact_url(source)  # SOURCE as messages show it: no credentials
    branch = DEFAULT_BRANCH if branch is None else branch
    repository = addressing.open_repository(repo)
    session = repository.writable_session(branch)

    def imported() -> ImportStats:
        stats = _import(out, session, source, shown, dest, yes=yes)
        if stats.skipped_v2:
            out.note(
                f"ick: warning: skipped {len(stats.skipped_v2)} Zarr v2 group(s) or array(s) "
                f"in {shown} (convert them to v3 to import them): {_some(stats.skipped_v2)}"
            )
        return stats

    def report(previous: str, snapshot_id: str | None, stats: ImportStats) -> None:
        _report(out, branch, shown, previous, snapshot_id, stats)

    commit_imported(session, branch, message, meta, imported, report)


def commit_imported(
    session: ic.Session,
    branch: str,
    message: str,
    meta: dict[str, Any],
    do_import: Callable[[], T],
    report: Callable[[str, str | None, T], None],
) -> None:
    """Import into ``session`` (``do_import``), commit it to ``branch`` and report
    (``report(previous, snapshot_id, result)``; None: nothing changed).

    Ctrl-C during the import commits nothing; from the commit on it waits until the commit
    and its report are done, so the output says truly whether the commit landed.
    """
    from icechunk_lib.errors import NoChangesToCommitError

    previous = session.snapshot_id
    snapshot_id: str | None = None
    finished = False  # the commit returned: from here an interrupt must not say "nothing"
    try:
        result = do_import()
        with _HeldInterrupts() as held:
            try:
                snapshot_id = session.commit(message, meta)
            except NoChangesToCommitError:
                snapshot_id = None
            finished = True
            report(previous, snapshot_id, result)
            if held.interrupted:
                raise Interrupted(_interrupted_after(branch, snapshot_id))
            mark_outcome_reported()  # a Ctrl-C from here on leaves the exit code at 0
    except KeyboardInterrupt:
        # Also a Ctrl-C held until the block ended but delivered only as it ended.
        if render.outcome_reported():
            return
        if finished:
            raise Interrupted(_interrupted_after(branch, snapshot_id)) from None
        raise Interrupted(
            f"interrupted; nothing was committed, {branch!r} stays at {previous}"
        ) from None


def _interrupted_after(branch: str, snapshot_id: str | None) -> str:
    done = f"committing {snapshot_id} to {branch!r}" if snapshot_id else "finding no change"
    return f"interrupted after {done}"


def _local(source: str) -> Path:
    """SOURCE as a local path, ``~`` expanded; a ``~user`` of no user is a usage error."""
    try:
        return Path(source).expanduser()
    except RuntimeError:
        raise typer.BadParameter(
            f"cannot use {source!r}: its '~' names no user with a home directory",
            param_hint="--from",
        ) from None


def _report(
    out: Output,
    branch: str,
    source: str,
    previous: str,
    snapshot_id: str | None,
    stats: ImportStats,
) -> None:
    """Say what was committed (or that nothing was), and the importer's counts."""
    if out.json:
        out.emit(
            {
                "branch": branch,
                "committed": snapshot_id is not None,
                "snapshot_id": snapshot_id,
                "previous_id": previous,
                "stats": stats.as_dict(),
                "deleted": stats.deleted_paths,
                "skipped_v2": stats.skipped_v2,
            }
        )
        return
    counts = stats.as_dict()
    if snapshot_id is None:
        out.line(out.text("Nothing to commit: ", (branch, "branch"), f" already matches {source}"))
    else:
        out.line(
            out.text(
                "Committed ",
                (out.id(snapshot_id), "id"),
                " to ",
                (branch, "branch"),
                " (parent ",
                (out.id(previous), "id"),
                ")",
            )
        )
    rows = [[name.replace("_", " "), _count(name, n, out)] for name, n in counts.items() if n]
    if rows:
        out.table([Column("what"), Column("count", numeric=True)], rows)
    for path, below in _trees(stats.deleted_paths):
        extra = f" (and {below} below it)" if below else ""
        out.line(out.text(("deleted", "deleted"), f" {path}{extra}"))


def _import(
    out: Output, session: ic.Session, source: str, shown: str, dest: str, *, yes: bool
) -> ImportStats:
    """Import SOURCE (``shown`` in messages) into the session; deleting nodes takes --yes or
    a yes at the terminal.

    Without --yes the importer refuses to delete before it changes anything; at a terminal
    the deletions are listed and, if confirmed, the import runs again allowing them.
    """
    from icechunk_lib.errors import ImportWouldDeleteError
    from icechunk_lib.ops.importer import import_zarr

    try:
        with ProgressBar(out) as bar:
            return import_zarr(session, source, dest, progress=bar.update, allow_deletes=yes)
    except ImportWouldDeleteError as refused:
        # Scripts (and --json) get the error and its hint; only a person can be asked.
        if out.json or not can_ask():
            raise
        out.note(f"{shown} lacks {len(refused.paths)} group(s) or array(s) under {dest}:")
        trees = _trees(refused.paths)
        for path, below in trees[:_SHOWN]:
            out.note(f"  {path}" + (f" (and {below} below it)" if below else ""))
        if len(trees) > _SHOWN:
            out.note(f"  ... and {len(trees) - _SHOWN} more")
        question = f"Delete them from {session.branch} and commit?"
        if not ask(question):  # Ctrl-C at the question is an interrupt: nothing committed
            out.note(f"ick: nothing committed; branch {session.branch!r} is unchanged")
            raise typer.Exit(1) from None
    with ProgressBar(out) as bar:
        return import_zarr(session, source, dest, progress=bar.update, allow_deletes=True)


def _trees(paths: list[str]) -> list[tuple[str, int]]:
    """Node paths as the top of each deleted tree, with how many of them lie below it."""
    below: dict[str, int] = {}
    for path in sorted(paths):  # an ancestor sorts before its descendants
        parts = path.split("/")
        ancestors = (
            ["/".join(parts[:i]) or "/" for i in range(1, len(parts))] if path != "/" else []
        )
        top = next((a for a in ancestors if a in below), None)
        if top is None:
            below[path] = 0
        else:
            below[top] += 1
    return list(below.items())


def _some(items: list[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (", ..." if len(items) > _SHOWN else "")


def _count(name: str, n: int, out: Output) -> str:
    return format_bytes(n) if name == "bytes_written" and out.terminal else str(n)


class _HeldInterrupts:
    """Hold Ctrl-C (SIGINT) for the block; afterwards ``interrupted`` says if it came."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Any = None

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True

    def __enter__(self) -> _HeldInterrupts:
        if threading.current_thread() is threading.main_thread():  # only it gets signals
            self._previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
