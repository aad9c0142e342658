"""Which repository a command works on, and which snapshot a revision names.

The repository is ``-R/--repo URL`` if given, else ``$ICK_REPO`` (typer fills both into the
same option), else the nearest directory at or above the current one that holds a
repository, as git finds ``.git``. Revisions are resolved by the library
(``Repository.resolve``): branch, tag, snapshot id or unique prefix, with ``~N``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from icechunk_cli.errors import NoRepositoryError, PathNotFoundError

if TYPE_CHECKING:
    import icechunk_lib as ic

__all__ = ["current_directory", "open_repository", "repository_url", "resolve"]


def repository_url(repo: str | None) -> str:
    """The URL the command line points at; raises ``NoRepositoryError`` if it points nowhere."""
    if repo is not None:  # even empty: `-R "$UNSET"` must not mean "the current directory"
        return repo
    from icechunk_lib import find_repository

    start = current_directory()
    found = find_repository(start)
    if found is None:
        raise NoRepositoryError(start)
    return str(found)


def current_directory() -> Path:
    """The current directory; raises ``PathNotFoundError`` if it was deleted meanwhile."""
    try:
        return Path.cwd()
    except FileNotFoundError:
        raise PathNotFoundError(
            "the current directory was deleted",
            "change to a directory that exists, or pass -R/--repo URL",
        ) from None


def open_repository(repo: str | None) -> ic.Repository:
    """Open the repository the command line points at."""
    import icechunk_lib as ic

    return ic.Repository.open(ic.storage_from_url(repository_url(repo)))


def resolve(repository: ic.Repository, rev: str | None) -> str:
    """The snapshot id of ``rev`` (the default branch when not given; an empty one is refused)."""
    from icechunk_lib import DEFAULT_BRANCH

    return repository.resolve(DEFAULT_BRANCH if rev is None else rev)
