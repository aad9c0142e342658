"""The parameters commands share, as typer ``Annotated`` aliases, and their shell completion.

Completion of branch and tag names opens the repository the command line points at (``-R``
if already typed, else ``$ICK_REPO``, else the one containing the current directory) and never
fails: any problem completes nothing.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

__all__ = [
    "BranchArg",
    "JsonOpt",
    "LimitOpt",
    "NoColorOpt",
    "RefArg",
    "RepoOpt",
    "TagArg",
    "YesOpt",
    "complete_branches",
    "complete_refs",
    "complete_tags",
]

COMMON = "Common options"
"""Help panel of the options every command takes."""


def _names(ctx: typer.Context, branches: bool, tags: bool) -> list[str]:
    try:
        import icechunk_lib as ic
        from icechunk_cli.addressing import open_repository

        url = None
        for c in (ctx, *_parents(ctx)):
            url = url or c.params.get("repo")
        repo: ic.Repository = open_repository(url or os.environ.get("ICK_REPO") or None)
        names: list[str] = []
        if branches:
            names += sorted(repo.list_branches())
        if tags:
            names += sorted(repo.list_tags())
        return names
    except Exception:  # completion must never print a traceback into the shell
        return []


def _parents(ctx: typer.Context) -> list[Any]:
    found: list[Any] = []
    parent = ctx.parent
    while parent is not None:
        found.append(parent)
        parent = parent.parent
    return found


def complete_refs(ctx: typer.Context, incomplete: str) -> list[str]:
    """Branch and tag names starting with what was typed."""
    return [n for n in _names(ctx, True, True) if n.startswith(incomplete)]


def complete_branches(ctx: typer.Context, incomplete: str) -> list[str]:
    return [n for n in _names(ctx, True, False) if n.startswith(incomplete)]


def complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    return [n for n in _names(ctx, False, True) if n.startswith(incomplete)]


RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo",
        "-R",
        metavar="URL",
        envvar="ICK_REPO",
        show_envvar=True,
        help="Repository path or URL (./repo, /abs/path, file:///abs/path). Default: "
        "$ICK_REPO, then the repository containing the current directory.",
        rich_help_panel=COMMON,
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout (fields in docs/cli.md).",
        rich_help_panel=COMMON,
    ),
]
NoColorOpt = Annotated[
    bool,
    typer.Option(
        "--no-color",
        help="Do not use colour (NO_COLOR does the same).",
        rich_help_panel=COMMON,
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation."),
]
RefArg = Annotated[
    str | None,
    typer.Argument(
        metavar="REF",
        help="Branch, tag, snapshot id or unique id prefix (4+ characters), with optional ~N "
        "for the N-th parent. Default: main.",
        autocompletion=complete_refs,
        show_default=False,
    ),
]
BranchArg = Annotated[
    str,
    typer.Argument(metavar="BRANCH", help="Branch name.", autocompletion=complete_branches),
]
TagArg = Annotated[
    str,
    typer.Argument(metavar="TAG", help="Tag name.", autocompletion=complete_tags),
]
LimitOpt = Annotated[
    int | None,
    typer.Option(
        "-n",
        "--max-count",
        metavar="N",
        min=0,
        help="Show at most N snapshots.",
        show_default=False,
    ),
]
