"""Finding the local repository that contains a directory, as git finds ``.git``."""

from __future__ import annotations

import os
from pathlib import Path

from icechunk_lib.refs import DEFAULT_BRANCH, branch_key

__all__ = ["find_repository"]


def find_repository(start: str | os.PathLike[str] = ".") -> Path | None:
    """The nearest directory at or above ``start`` that holds a repository, or None."""
    marker = Path(*branch_key(DEFAULT_BRANCH).split("/"))
    here = Path(start).expanduser().resolve()
    for directory in (here, *here.parents):
        if (directory / marker).is_file():
            return directory
    return None
