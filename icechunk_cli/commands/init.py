"""``ick init [URL]``: create a repository in an empty location."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from icechunk_cli import addressing
from icechunk_cli.errors import LocationTakenError
from icechunk_cli.params import JsonOpt, NoColorOpt, RepoOpt, StorageOptionOpt, UnsafeWritesOpt
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
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Create an empty repository.

    The new repository has one snapshot, 'Repository initialized', on branch main. A
    location that already holds a repository or any other files is refused, and so is a
    directory inside another repository.
    """
    out = Output(json=json, no_color=no_color)
    if url and repo and url != repo and repo != os.environ.get("ICK_REPO"):
        raise typer.BadParameter(f"URL {url!r} and -R/--repo {repo!r} disagree; give one")
    import icechunk_lib as ic

    where = url if url is not None else repo  # an empty one is refused, never "here"
    storage = addressing.open_storage(
        where if where is not None else addressing.current_directory()
    )
    root = getattr(storage, "root", None)
    if isinstance(root, Path):
        _refuse_taken(root)
    created = ic.Repository.create(storage)
    tip = created.lookup_branch(ic.DEFAULT_BRANCH)
    shown = created.storage.url
    if out.json:
        out.emit({"url": shown, "branch": ic.DEFAULT_BRANCH, "snapshot_id": tip})
        return
    out.line(
        out.text(
            "Initialized empty ick repository in ",
            (shown, "key"),
            " (main at ",
            (out.id(tip), "id"),
            ")",
        )
    )


def _refuse_taken(root: Path) -> None:
    """A local repository needs a directory of its own: not a file, and not a directory inside
    another repository, whose files the new one would mix with (breaking both)."""
    from icechunk_lib import find_repository

    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise LocationTakenError(
            f"cannot create a repository at {root}: {existing} is a file, not a directory",
            "choose a new or empty directory",
        )
    outer = find_repository(root.parent)
    if outer is not None:
        raise LocationTakenError(
            f"cannot create a repository at {root}: it is inside the repository at {outer}",
            "choose a location outside it",
        )
