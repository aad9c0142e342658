"""The parameters commands share, as typer ``Annotated`` aliases, and their shell completion.

The common options (``-R/--repo``, ``--storage-option``, ``--unsafe-writes``, ``--json``,
``--no-color``) are declared on the top-level command, on every group and on every command,
so they may come before or after any verb:
``ick -R A tag list``, ``ick tag -R A list`` and ``ick tag list -R A`` are the same. One
callback, :func:`_common`, makes that so: a value given on the command line is remembered in
the click context (shared by the whole command line), and a level where the option was not
given takes the remembered value before ``$ICK_REPO`` or the default. Given more than once,
the last one on the command line wins, as within one level.

Completion of branch and tag names opens the repository the command line points at (``-R``
if already typed, at any level, else ``$ICK_REPO``, else the one containing the current
directory) and never fails: any problem completes nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer._click.core import ParameterSource

__all__ = [
    "COMPLETE_ENV",
    "BranchArg",
    "JsonOpt",
    "LimitOpt",
    "NoColorOpt",
    "RefArg",
    "RepoOpt",
    "StorageOptionOpt",
    "TagArg",
    "UnsafeWritesOpt",
    "YesOpt",
    "command_group",
    "complete_branches",
    "complete_refs",
    "complete_tags",
    "storage_settings",
]


def command_group(help: str) -> typer.Typer:
    """A verb with subcommands that does its most common one when given none (`ick tag`
    lists tags, `ick config` shows the settings), so options alone never just print help."""
    return typer.Typer(
        help=help,
        invoke_without_command=True,
        no_args_is_help=False,
        subcommand_metavar="[COMMAND [ARGS]...]",
    )


COMMON = "Common options"
"""Help panel of the options every command takes."""

COMPLETE_ENV = "_ICK_COMPLETE"
"""Set by the shell completion scripts to the kind of request (``complete_bash``, ...)."""

_GIVEN = "ick.common_options"
"""Key in ``ctx.meta`` (one dict for the whole command line) of the common options given."""


def _common(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """A common option's value at this level: given here, else given at an outer level."""
    given: dict[str, Any] = ctx.meta.setdefault(_GIVEN, {})
    name = param.name or ""
    if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
        given[name] = value  # levels are parsed outermost first, so the last one wins
    value = given.get(name, value)
    if name == "json" and value:
        from icechunk_cli import render

        render.want_json_errors()  # a failure from here on is reported as JSON
    return value


def _storage_option(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> None:
    """Collect ``KEY=VALUE`` storage options from every level of the command line."""
    given: dict[str, Any] = ctx.meta.setdefault(_GIVEN, {})
    if ctx.get_parameter_source(param.name or "") is not ParameterSource.COMMANDLINE:
        return
    options: dict[str, str] = given.setdefault("storage_options", {})
    for item in value or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(
                f"{item.partition('=')[0]!r} is not KEY=VALUE (e.g. endpoint_url=http://host:9000)"
            )
        options[key.strip()] = text


def storage_settings(ctx: Any = None) -> tuple[dict[str, str], bool]:
    """The ``--storage-option`` settings and whether ``--unsafe-writes`` was given, anywhere
    on the command line being run (none outside of one)."""
    from typer._click.globals import get_current_context

    ctx = ctx if ctx is not None else get_current_context(silent=True)
    given: dict[str, Any] = {} if ctx is None else ctx.meta.get(_GIVEN, {})
    return dict(given.get("storage_options", {})), bool(given.get("unsafe_writes", False))


def _names(ctx: typer.Context, branches: bool, tags: bool) -> list[str]:
    try:
        import icechunk_lib as ic
        from icechunk_cli.addressing import open_repository

        url = ctx.params.get("repo") or ctx.meta.get(_GIVEN, {}).get("repo")
        repo: ic.Repository = open_repository(url or os.environ.get("ICK_REPO") or None, ctx)
        names: list[str] = []
        if branches:
            names += sorted(repo.list_branches())
        if tags:
            names += sorted(repo.list_tags())
        return names
    except Exception:  # completion must never print a traceback into the shell
        return []


def _for_shell(names: list[str]) -> list[str]:
    """bash inserts a completion as it is, so a name with a space or quote is shell-quoted
    there (``'sp ace'``), or it would become two arguments; zsh and fish quote by themselves."""
    if os.environ.get(COMPLETE_ENV) != "complete_bash":
        return names
    import shlex

    return [shlex.quote(n) for n in names]


def complete_refs(ctx: typer.Context, incomplete: str) -> list[str]:
    """Branch and tag names starting with what was typed."""
    return _for_shell([n for n in _names(ctx, True, True) if n.startswith(incomplete)])


def complete_branches(ctx: typer.Context, incomplete: str) -> list[str]:
    return _for_shell([n for n in _names(ctx, True, False) if n.startswith(incomplete)])


def complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    return _for_shell([n for n in _names(ctx, False, True) if n.startswith(incomplete)])


RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo",
        "-R",
        metavar="URL",
        envvar="ICK_REPO",
        show_envvar=True,
        help="Repository path or URL (./repo, /abs/path, file:///abs/path, s3://bucket/prefix, "
        "gs://, az://, https://...). Default: $ICK_REPO, then the repository containing the "
        "current directory.",
        rich_help_panel=COMMON,
        show_default=False,
        callback=_common,
    ),
]
StorageOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        metavar="KEY=VALUE",
        help="A setting of the repository's object storage, e.g. endpoint_url=http://host:9000, "
        "region=eu-west-1, allow_http=true, force_path_style=true for s3:// (keys in "
        "docs/cli.md); for other URLs, the fsspec filesystem's own options.",
        rich_help_panel=COMMON,
        show_default=False,
        callback=_storage_option,
        expose_value=False,
    ),
]
UnsafeWritesOpt = Annotated[
    bool,
    typer.Option(
        "--unsafe-writes",
        help="Write to storage that lacks atomic operations (gs://, az://, an S3 server "
        "without conditional writes): commits racing with another writer can be lost.",
        rich_help_panel=COMMON,
        callback=_common,
        expose_value=False,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout (fields in docs/cli.md).",
        rich_help_panel=COMMON,
        callback=_common,
    ),
]
NoColorOpt = Annotated[
    bool,
    typer.Option(
        "--no-color",
        help="Do not use colour (NO_COLOR does the same).",
        rich_help_panel=COMMON,
        callback=_common,
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
        max=sys.maxsize,  # larger counts are a usage error, not a crash
        help="Show at most N snapshots.",
        show_default=False,
    ),
]
