"""``ick branch``: list, create and delete branches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    BranchArg,
    JsonOpt,
    NoColorOpt,
    RefArg,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    command_group,
)
from icechunk_cli.render import Cell, Column, Output, command_hint, snapshot_doc

if TYPE_CHECKING:
    import icechunk_lib as ic

__all__ = ["app", "ref_rows", "render_refs", "report_ref"]

app = command_group("List branches; create or delete one.")


@app.callback()
def branches(
    ctx: typer.Context,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """List branches (same as `ick branch list`); `create` and `delete` change them."""
    if ctx.invoked_subcommand is None:
        list_branches(repo, json, no_color)


@app.command("list")
def list_branches(
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """List branches with the snapshot each points at."""
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    names = sorted(repository.list_branches())
    tips = [(name, repository.lookup_branch(name)) for name in names]
    render_refs(out, repository, tips, "branch", "branches")


def ref_rows(repository: ic.Repository, tips: list[tuple[str, str]]) -> list[Any]:
    return [(name, repository.lookup_snapshot(sid)) for name, sid in tips]


def report_ref(out: Output, kind: str, name: str, snapshot_id: str, *, created: bool) -> None:
    """Say that branch or tag ``name`` was created at, or deleted from, ``snapshot_id``."""
    if out.json:
        out.emit({kind: name, "snapshot_id": snapshot_id})
        return
    sid = (out.id(snapshot_id), "id")
    if created:
        out.line(out.text(f"Created {kind} ", (name, kind), " at ", sid))
    else:
        out.line(out.text(f"Deleted {kind} ", (name, kind), " (was ", sid, ")"))


def render_refs(
    out: Output, repository: ic.Repository, tips: list[tuple[str, str]], kind: str, key: str
) -> None:
    """A list of branches or tags: name, snapshot, time and message of the snapshot."""
    infos = ref_rows(repository, tips)
    if out.json:
        out.emit({key: [{"name": name, "snapshot": snapshot_doc(info)} for name, info in infos]})
        return
    rows: list[list[Cell]] = [
        [
            (name, kind),
            (out.id(info.id), "id"),
            (out.when(info.written_at), "time"),
            info.message.splitlines()[0] if info.message else "",
        ]
        for name, info in infos
    ]
    if not rows:
        out.note(f"no {key}")
        return
    out.table(
        [Column(kind), Column("snapshot"), Column("written"), Column("message", shrink=True)],
        rows,
    )


@app.command("create")
def create(
    name: BranchArg,
    ref: RefArg = None,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Create branch BRANCH at REF (default: the tip of main)."""
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    snapshot_id = addressing.resolve(repository, ref)
    repository.create_branch(name, snapshot_id)
    report_ref(out, "branch", name, snapshot_id, created=True)


@app.command("delete")
def delete(
    name: BranchArg,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Delete branch BRANCH (not main). Its snapshots stay; the output says how to restore it."""
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    was = repository.lookup_branch(name)
    repository.delete_branch(name)
    report_ref(out, "branch", name, was, created=False)
    if not out.json:
        out.note(
            f"restore it with: {command_hint('branch', 'create', args=(name, was), repo=repo)}"
        )
