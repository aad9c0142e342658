"""Entry point of ``ick``. Commands stay thin: parse, call one library function, render."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

app = typer.Typer(
    name="ick",
    help="Version control for Zarr array repositories.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

RepoOpt = Annotated[
    str | None,
    typer.Option("--repo", "-R", help="Repository URL or path (default: $ICK_REPO, then '.')."),
]


def _repo_url(repo: str | None) -> str:
    return repo or os.environ.get("ICK_REPO") or "."


def _version(value: bool) -> None:
    if value:
        from icechunk_lib import __version__

        typer.echo(f"ick {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Version control for Zarr array repositories."""


@app.command()
def init(url: Annotated[str, typer.Argument(help="Where to create the repository.")] = ".") -> None:
    """Create an empty repository."""
    import icechunk_lib as ic

    repo = ic.Repository.create(ic.storage_from_url(url))
    typer.echo(f"Initialized empty ick repository in {repo.storage.url}")


@app.command()
def log(
    ref: Annotated[str, typer.Argument(help="Branch to show.")] = "main",
    n: Annotated[int | None, typer.Option("-n", help="Show at most N entries.")] = None,
    repo: RepoOpt = None,
) -> None:
    """Show the history of a branch, newest first."""
    import itertools

    import icechunk_lib as ic

    r = ic.Repository.open(ic.storage_from_url(_repo_url(repo)))
    for info in itertools.islice(r.ancestry(branch=ref), n):
        when = info.written_at.strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{info.id[:12]}  {when}  {info.message}")


def main() -> None:
    """Run ``ick``; library errors become one line and exit code 1 (``ICK_DEBUG=1``: traceback)."""
    from icechunk_lib.errors import IcechunkError

    try:
        app()  # click handles usage errors itself (exit code 2)
    except IcechunkError as exc:
        if os.environ.get("ICK_DEBUG") == "1":
            raise
        typer.echo(f"ick: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
