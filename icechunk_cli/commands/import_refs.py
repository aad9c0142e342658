"""``ick import-refs REFS``: commit a kerchunk or VirtualiZarr reference set as virtual chunks.

The library's ``import_kerchunk`` writes the set into a session (Zarr v2 metadata converted
to v3, inline data as chunks, byte ranges as virtual references); this command adds the
progress bar, the commit and the summary, with ``ick commit --from``'s options and output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from icechunk_cli import addressing
from icechunk_cli.commands.commit import commit_imported, parse_metadata
from icechunk_cli.errors import PathNotFoundError
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    complete_branches,
)
from icechunk_cli.progress import ProgressBar
from icechunk_cli.render import Column, Output

if TYPE_CHECKING:
    from icechunk_lib.virtual.kerchunk import KerchunkImportSummary

__all__ = ["import_refs"]


def import_refs(
    refs: Annotated[
        str,
        typer.Argument(
            metavar="REFS",
            help="Reference set: a .json file (also .json.gz, .json.zst) or a parquet "
            "reference directory.",
        ),
    ],
    message: Annotated[str, typer.Option("--message", "-m", metavar="MSG", help="Commit message.")],
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
    group: Annotated[
        str,
        typer.Option(
            "--group", "--path", metavar="GROUP", help="Group to import into (created if needed)."
        ),
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
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Commit a kerchunk or VirtualiZarr reference set as virtual chunks.

    Byte-range references become virtual chunks that point into the original files, inline
    data becomes ordinary chunks, and Zarr v2 metadata is converted to Zarr v3. Relative
    file paths in REFS are taken from REFS's own directory. Every location must lie in a
    virtual chunk container the repository declares (see docs/virtual.md); otherwise, as
    for any malformed reference, nothing is imported. An array of REFS replaces the array
    at its path; other groups and arrays stay.
    """
    out = Output(json=json, no_color=no_color)
    meta = parse_metadata(metadata or [])
    if not group.strip():
        raise typer.BadParameter("GROUP is empty; the root group is /", param_hint="--group")
    if not refs.strip():
        raise typer.BadParameter("REFS is empty", param_hint="REFS")
    if not Path(refs).expanduser().exists():
        raise PathNotFoundError(
            f"no such file or directory: {refs}", "give the path of a reference file"
        )
    from icechunk_lib import DEFAULT_BRANCH, import_kerchunk

    branch = DEFAULT_BRANCH if branch is None else branch
    repository = addressing.open_repository(repo)
    session = repository.writable_session(branch)

    def imported() -> KerchunkImportSummary:
        with ProgressBar(out) as bar:
            return import_kerchunk(
                session, Path(refs).expanduser(), group=group, progress=bar.update
            )

    def report(previous: str, snapshot_id: str | None, summary: KerchunkImportSummary) -> None:
        _report(out, branch, previous, snapshot_id, summary)

    commit_imported(session, branch, message, meta, imported, report)


def _report(
    out: Output,
    branch: str,
    previous: str,
    snapshot_id: str | None,
    summary: KerchunkImportSummary,
) -> None:
    """Say what was committed (or that nothing was) and what the import wrote."""
    if out.json:
        out.emit(
            {
                "branch": branch,
                "committed": snapshot_id is not None,
                "snapshot_id": snapshot_id,
                "previous_id": previous,
                "stats": summary.as_dict(),
                "arrays": summary.paths,
            }
        )
        return
    if snapshot_id is None:
        out.line(out.text("Nothing to commit: ", (branch, "branch"), " already holds these refs"))
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
    rows = [[name.replace("_", " "), str(n)] for name, n in summary.as_dict().items() if n]
    if rows:
        out.table([Column("what"), Column("count", numeric=True)], rows)
