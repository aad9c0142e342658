"""``ick tag``: list, create and delete tags. Tags never move; deleted names are never reused."""

from __future__ import annotations

import typer

from icechunk_cli import addressing
from icechunk_cli.commands.branch import render_refs, report_ref
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RefArg,
    RepoOpt,
    StorageOptionOpt,
    TagArg,
    UnsafeWritesOpt,
    YesOpt,
    command_group,
)
from icechunk_cli.render import Output, ask, refuse_unasked

__all__ = ["app"]

app = command_group("List tags; create or delete one.")


@app.callback()
def tags(
    ctx: typer.Context,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """List tags (same as `ick tag list`); `create` and `delete` change them.

    Tags are immutable: a tag always names the same snapshot, and the name of a deleted tag
    can never be used again.
    """
    if ctx.invoked_subcommand is None:
        list_tags(repo, json, no_color)


@app.command("list")
def list_tags(
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """List tags with the snapshot each names."""
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    names = sorted(repository.list_tags())
    tips = [(name, repository.lookup_tag(name)) for name in names]
    render_refs(out, repository, tips, "tag", "tags")


@app.command("create")
def create(
    name: TagArg,
    ref: RefArg = None,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Create tag TAG at REF (default: the tip of main)."""
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    snapshot_id = addressing.resolve(repository, ref)
    repository.create_tag(name, snapshot_id)
    report_ref(out, "tag", name, snapshot_id, created=True)


@app.command("delete")
def delete(
    name: TagArg,
    yes: YesOpt = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Delete tag TAG. Its snapshot stays, but the name can never be used again.

    This cannot be undone, so it asks first at a terminal; in a script (stdin not a
    terminal) or with --json it does not ask, and --yes is required.
    """
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    was = repository.lookup_tag(name)
    if not yes:
        refuse_unasked(
            out,
            "tag delete",
            f"pass --yes to delete tag {name!r} (its name can never be used again)",
        )
        if not ask(f"Delete tag {name!r} (at {out.id(was)})? Its name can never be used again."):
            out.note(f"ick: not deleted; tag {name!r} stays at {was}")
            raise typer.Exit(1)
    repository.delete_tag(name)
    report_ref(out, "tag", name, was, created=False)
    if not out.json:
        out.note(f"the name {name!r} cannot be used for a tag again")
