"""``ick stats [REV] [--by snapshot|branch|array]``: where the repository's bytes are.

Every chunk reachable from a branch or tag counts once, however many snapshots share it;
``only here`` is what gc frees once that snapshot alone is expired.
"""

from __future__ import annotations

from enum import StrEnum
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
from icechunk_cli.progress import ProgressBar
from icechunk_cli.render import Column, Output

if TYPE_CHECKING:
    from icechunk_lib.ops.stats import ChunkUsage, MetadataUsage, StorageReport

__all__ = ["stats"]


class By(StrEnum):
    """The views of ``ick stats``."""

    snapshot = "snapshot"
    branch = "branch"
    array = "array"


def stats(
    rev: Annotated[
        str | None,
        typer.Argument(
            metavar="REV",
            help="With --by array: the revision whose arrays to size (default main). With "
            "--by snapshot: list only its history (default: every reachable snapshot).",
            autocompletion=complete_refs,
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        By,
        typer.Option(
            "--by",
            metavar="VIEW",
            help="snapshot: one row per snapshot, with the bytes only it holds; branch: per "
            "branch and tag, everything its history holds; array: per array at REV.",
            case_sensitive=False,
        ),
    ] = By.snapshot,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Show how much storage the chunks take, each chunk counted once.

    Sizes count native chunks (in chunks/), inline chunks (inside manifests) and virtual
    chunks (byte ranges elsewhere, not stored here; a range counts once however many
    chunks, arrays or snapshots name it). "only here" is what expiring that snapshot alone
    would let gc free. Reads every reachable manifest; nothing is written.
    """
    if by is By.branch and rev is not None:
        raise typer.BadParameter("--by branch covers every branch and tag: give no REV")
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    with ProgressBar(out) as bar:
        report = repository.storage_stats(rev, by=by.value, progress=bar.update)
    if out.json:
        out.emit(_doc(report))
        return
    if by is By.snapshot:
        _snapshots(out, report)
    elif by is By.branch:
        _refs(out, report)
    else:
        _arrays(out, report)
    _totals(out, report.total, report.metadata)


def _usage_doc(usage: ChunkUsage) -> dict[str, int]:
    return {
        "chunks": usage.chunks,
        "native_bytes": usage.native_bytes,
        "inlined_bytes": usage.inlined_bytes,
        "virtual_bytes": usage.virtual_bytes,
        "virtual_chunks": usage.virtual_chunks,
        "non_virtual_bytes": usage.non_virtual_bytes,
        "total_bytes": usage.total_bytes,
    }


def _doc(report: StorageReport) -> dict[str, Any]:
    meta = report.metadata
    doc: dict[str, Any] = {
        "by": report.by,
        "snapshot_id": report.snapshot_id,
        "total": _usage_doc(report.total),
        "metadata": {
            "snapshots": meta.snapshots,
            "snapshot_bytes": meta.snapshot_bytes,
            "manifests": meta.manifests,
            "manifest_bytes": meta.manifest_bytes,
            "transaction_logs": meta.transaction_logs,
            "transaction_log_bytes": meta.transaction_log_bytes,
            "total_bytes": meta.total_bytes,
        },
    }
    if report.by == "snapshot":
        doc["snapshots"] = [
            {
                "id": s.snapshot_id,
                "written_at": s.written_at.isoformat(),
                "message": s.message,
                "refs": list(s.refs),
                "size": _usage_doc(s.usage),
                "only_here": _usage_doc(s.only_here),
            }
            for s in report.snapshots
        ]
    elif report.by == "branch":
        doc["refs"] = [
            {
                "kind": r.kind,
                "name": r.name,
                "snapshot_id": r.snapshot_id,
                "snapshots": r.snapshots,
                "size": _usage_doc(r.usage),
            }
            for r in report.refs
        ]
    else:
        doc["arrays"] = [{"path": a.path, "size": _usage_doc(a.usage)} for a in report.arrays]
    return doc


def _snapshots(out: Output, report: StorageReport) -> None:
    virtual = report.total.virtual_bytes > 0
    columns = [
        Column("snapshot", style="id"),
        Column("written"),
        Column("refs"),
        Column("chunks", numeric=True),
        Column("stored", numeric=True),
        *([Column("virtual", numeric=True)] if virtual else []),
        Column("only here", numeric=True),
        Column("message", shrink=True),
    ]
    rows = []
    for s in report.snapshots:
        rows.append(
            [
                out.id(s.snapshot_id),
                out.when(s.written_at),
                ", ".join(s.refs) or "-",
                str(s.usage.chunks),
                out.size(s.usage.non_virtual_bytes),
                *([out.size(s.usage.virtual_bytes)] if virtual else []),
                out.size(s.only_here.non_virtual_bytes),
                s.message.splitlines()[0] if s.message else "",
            ]
        )
    out.table(columns, rows)


def _refs(out: Output, report: StorageReport) -> None:
    virtual = report.total.virtual_bytes > 0
    columns = [
        Column("ref"),
        Column("snapshot", style="id"),
        Column("snapshots", numeric=True),
        Column("chunks", numeric=True),
        Column("stored", numeric=True),
        *([Column("virtual", numeric=True)] if virtual else []),
    ]
    rows = [
        [
            f"{r.kind} {r.name}",
            out.id(r.snapshot_id),
            str(r.snapshots),
            str(r.usage.chunks),
            out.size(r.usage.non_virtual_bytes),
            *([out.size(r.usage.virtual_bytes)] if virtual else []),
        ]
        for r in report.refs
    ]
    out.table(columns, rows)


def _arrays(out: Output, report: StorageReport) -> None:
    virtual = report.total.virtual_bytes > 0
    columns = [
        Column("array", shrink=True),
        Column("chunks", numeric=True),
        Column("native", numeric=True),
        Column("inline", numeric=True),
        *([Column("virtual", numeric=True)] if virtual else []),
    ]
    rows = [
        [
            a.path,
            str(a.usage.chunks),
            out.size(a.usage.native_bytes),
            out.size(a.usage.inlined_bytes),
            *([out.size(a.usage.virtual_bytes)] if virtual else []),
        ]
        for a in report.arrays
    ]
    out.table(columns, rows)
    if report.snapshot_id is not None:
        out.line(f"at snapshot {out.id(report.snapshot_id)}")


def _totals(out: Output, total: ChunkUsage, meta: MetadataUsage) -> None:
    virtual = f"{out.size(total.virtual_bytes)} virtual"
    if total.virtual_chunks:
        virtual += f" (in {total.virtual_chunks} virtual chunks)"
    out.wrapped(
        f"total: {total.chunks} chunks, {out.size(total.native_bytes)} native, "
        f"{out.size(total.inlined_bytes)} inline, {virtual}; "
        f"metadata {out.size(meta.total_bytes)} ({meta.snapshots} snapshots, "
        f"{meta.manifests} manifests, {meta.transaction_logs} transaction logs)"
    )
