"""Which repository a command works on, and which snapshot a revision names.

The repository is ``-R/--repo URL`` if given, else ``$ICK_REPO`` (typer fills both into the
same option), else the nearest directory at or above the current one that holds a
repository, as git finds ``.git``. Revisions are resolved by the library
(``Repository.resolve``): branch, tag, snapshot id or unique prefix, with ``~N``.

Storage is opened with the ``--storage-option`` settings and ``--unsafe-writes`` of the
command line (``params.storage_settings``). The library warns (``UnsafeWritesWarning``) when
a write goes ahead without atomic operations; ``main`` shows that as one line on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from icechunk_cli.errors import NoRepositoryError, PathNotFoundError
from icechunk_cli.params import storage_settings

if TYPE_CHECKING:
    import icechunk_lib as ic

__all__ = ["current_directory", "open_repository", "open_storage", "repository_url", "resolve"]


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


def open_storage(location: str | Path, ctx: Any = None) -> ic.Storage:
    """The storage at ``location``, with the command line's storage options."""
    import icechunk_lib as ic

    options, unsafe = storage_settings(ctx)
    return ic.storage_from_url(
        location, storage_options=options or None, allow_unsafe_writes=unsafe
    )


def open_repository(repo: str | None, ctx: Any = None) -> ic.Repository:
    """Open the repository the command line points at (``ctx``: the click context, when
    called outside of a running command, as completion is)."""
    import icechunk_lib as ic

    return ic.Repository.open(open_storage(repository_url(repo), ctx))


def resolve(repository: ic.Repository, rev: str | None) -> str:
    """The snapshot id of ``rev`` (the default branch when not given; an empty one is refused)."""
    from icechunk_lib import DEFAULT_BRANCH

    return repository.resolve(DEFAULT_BRANCH if rev is None else rev)
