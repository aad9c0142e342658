"""``ick init [URL]``: create a repository in an empty location."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from icechunk_cli.params import JsonOpt, NoColorOpt, RepoOpt
from icechunk_cli.render import Output


def init(
    url: Annotated[
        str | None,
        typer.Argument(
            metavar="URL",
            help="Where to create it: a new or empty directory (./repo, /abs/path, "
            "file:///abs/path). Default: -R/--repo, $ICK_REPO, then the current directory.",
            show_default=False,
        ),
    ] = None,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """Create an empty repository.

    The new repository has one snapshot, 'Repository initialized', on branch main. A
    location that already holds a repository or any other files is refused.
    """
    out = Output(json=json, no_color=no_color)
    if url and repo and url != repo and repo != os.environ.get("ICK_REPO"):
        raise typer.BadParameter(f"URL {url!r} and -R/--repo {repo!r} disagree; give one")
    import icechunk_lib as ic

    created = ic.Repository.create(ic.storage_from_url(url or repo or "."))
    tip = created.lookup_branch("main")
    where = created.storage.url
    if out.json:
        out.emit({"url": where, "branch": "main", "snapshot_id": tip})
        return
    out.line(
        out.text(
            "Initialized empty ick repository in ",
            (where, "key"),
            " (main at ",
            (out.id(tip), "id"),
            ")",
        )
    )
