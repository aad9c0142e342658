"""``ick verify [--data]``: check the repository's integrity; exit 5 when anything is damaged."""

from __future__ import annotations

from typing import Annotated

import typer

from icechunk_cli import addressing
from icechunk_cli.errors import EXIT_INTEGRITY
from icechunk_cli.params import JsonOpt, NoColorOpt, RepoOpt, StorageOptionOpt, UnsafeWritesOpt
from icechunk_cli.progress import ProgressBar
from icechunk_cli.render import Column, Output


def verify(
    data: Annotated[
        bool,
        typer.Option(
            "--data",
            help="Also read every chunk stored in the repository and compare its checksum "
            "(reads all the data; the sources of virtual chunks are not read).",
        ),
    ] = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Check every ref and every object reachable from one; list what is damaged.

    Refs must name existing snapshots; snapshots, manifests and transaction logs must exist
    and decode under their own ids; manifests must hold what their snapshots record; chunks
    must exist with their recorded size (with --data: and content). Virtual chunks (byte
    ranges of files outside the repository) are checked without reading those files: each
    location must be well formed and in a container the config declares, each range sane.
    Nothing is written. Exit code 0 when all is well, 5 when something is damaged (each
    problem is listed).
    """
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    with ProgressBar(out) as bar:
        report = repository.verify(data=data, progress=bar.update)
    checked = {
        "refs": report.refs,
        "expiration_records": report.expiration_records,
        "snapshots": report.snapshots,
        "transaction_logs": report.transaction_logs,
        "manifests": report.manifests,
        "chunks": report.chunks,
        "virtual_chunks": report.virtual_chunks,
        "virtual_locations": report.virtual_locations,
    }
    # Most repositories have no expiration records and no virtual chunks: name them only
    # when there are some.
    quiet_when_zero = ("expiration_records", "virtual_chunks", "virtual_locations")
    if out.json:
        out.emit(
            {
                "ok": report.ok,
                "data": report.data,
                "checked": checked,
                "problems": [
                    {
                        "kind": p.kind,
                        "key": p.key,
                        "reached_from": p.reached_from,
                        "message": p.message,
                    }
                    for p in report.problems
                ],
            }
        )
    else:
        if report.problems:
            out.table(
                [Column("kind"), Column("object"), Column("from"), Column("problem", shrink=True)],
                [[p.kind, p.key, p.reached_from, p.message] for p in report.problems],
            )
        what = "chunk contents" if report.data else "chunk sizes"
        if report.virtual_chunks:
            what += "; virtual chunks: locations and ranges, sources not read"
        counts = ", ".join(
            f"{n} {name.replace('_', ' ')}"
            for name, n in checked.items()
            if n or name not in quiet_when_zero
        )
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s) found"
        out.line(f"{verdict}: checked {counts} ({what})")
    if not report.ok:
        raise typer.Exit(EXIT_INTEGRITY)
