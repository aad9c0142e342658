"""How a failure ends: exception -> (exit code, message, hint), in this one place.

``main`` (through the app's top-level group) turns any exception a command raises into one
line on stderr and an exit code; ``ICK_DEBUG=1`` adds the traceback. A library error's exit
code is that of its category (``CATEGORIES``: not found, already exists, ...), so a new or
renamed error class needs no entry here; ``_words`` adds hints for some classes. The library
is imported only when a command fails, so ``ick --help`` stays fast. ``EXIT_CODES`` is the
documented table of exit codes; the reference in docs/cli.md is generated from it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer._click.exceptions import ClickException

__all__ = [
    "CATEGORIES",
    "EXIT_CODES",
    "EXIT_CONFLICT",
    "EXIT_ERROR",
    "EXIT_INTEGRITY",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "Failure",
    "Interrupted",
    "LocationTakenError",
    "NoRepositoryError",
    "PathNotFoundError",
    "classify",
    "report",
    "show_warning",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_INTEGRITY = 5
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success (also: nothing to commit, branch already there)",
    EXIT_ERROR: "error: a failure with no category below, e.g. deleting `main`, writing to a "
    "read-only location (storage without atomic writes, without --unsafe-writes), or access "
    "denied by object storage; also what this ick does not support (`UnsupportedError`), "
    "e.g. a repository written in a newer format version",
    EXIT_USAGE: "usage: bad option or argument; invalid input (`InvalidInputError`): an invalid "
    "name, key or URL (also an unknown storage option, or a URL whose package is missing), an "
    "ambiguous revision, an unknown config key or bad value, an import source that is not a "
    "Zarr v3 store",
    EXIT_NOT_FOUND: "not found (`NotFoundError`): repository, bucket, branch, tag, snapshot, "
    "revision, path or import source",
    EXIT_CONFLICT: "conflict: the name or location is taken (`AlreadyExistsError`: the branch or "
    "tag exists, the location already holds data), or someone else changed it meanwhile "
    "(`ConcurrentUpdateError`: the branch moved, the config was saved)",
    EXIT_INTEGRITY: "the repository is damaged (`IntegrityError`): a repository object is "
    "corrupt, missing, or stored under another object's name",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

CATEGORIES: dict[str, int] = {
    "InvalidInputError": EXIT_USAGE,
    "NotFoundError": EXIT_NOT_FOUND,
    "AlreadyExistsError": EXIT_CONFLICT,
    "ConcurrentUpdateError": EXIT_CONFLICT,
    "IntegrityError": EXIT_INTEGRITY,
    "UnsupportedError": EXIT_ERROR,
}
"""The exit code of each category of ``icechunk_lib.errors``; a library error in none exits 1.

Every library error is in at most one category, so the order does not matter. Names, not
classes, so that this module imports nothing from the library; ``classify`` looks them up.
"""

DEBUG_ENV = "ICK_DEBUG"


class CliError(Exception):
    """A failure the command line finds itself (the library raises its own errors)."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Interrupted(CliError):
    """Ctrl-C, with what the command had done by then (e.g. whether its commit landed)."""

    exit_code = EXIT_INTERRUPTED


class PathNotFoundError(CliError):
    """A directory named on the command line (or the current one) does not exist."""

    exit_code = EXIT_NOT_FOUND


class LocationTakenError(CliError):
    """``ick init`` at a location that cannot hold a repository of its own."""

    exit_code = EXIT_CONFLICT


class NoRepositoryError(PathNotFoundError):
    """No -R/--repo, no $ICK_REPO, and no repository at or above the current directory."""

    def __init__(self, start: Path) -> None:
        super().__init__(
            f"no ick repository in {start} or any parent directory",
            "pass -R/--repo URL, set ICK_REPO, or create one with `ick init`",
        )


@dataclass(frozen=True)
class Failure:
    """What the user sees of a failure."""

    exit_code: int
    kind: str
    message: str
    hint: str = ""

    def line(self) -> str:
        from icechunk_cli.render import visible  # names in messages may hold escape sequences

        text = f"ick: error: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return visible(" ".join(text.split("\n")))

    def doc(self) -> dict[str, Any]:
        return {
            "error": {
                "exit_code": self.exit_code,
                "type": self.kind,
                "message": self.message,
                "hint": self.hint,
            }
        }


@dataclass(frozen=True)
class _Words:
    """What the command line says of one library error class, beside its exit code."""

    hint: str = ""
    message: Callable[[Any], str] | None = None
    """Replaces the library's message (for ones that speak of the Python API)."""


_REFS_HINT = "`ick log --all --oneline` shows branches, tags and snapshot ids"


@functools.cache
def _words() -> dict[type[BaseException], _Words]:
    """Hints (and a few messages) per library error; the most specific class on the MRO wins.

    Built on the first failure, so that importing this module imports nothing from the library.
    """
    from icechunk_lib import errors as lib

    return {
        lib.RepositoryNotFoundError: _Words(
            "check -R/--repo or $ICK_REPO, or create one with `ick init`",
            lambda e: f"no ick repository at {e.location}",
        ),
        lib.BranchNotFoundError: _Words("`ick branch` lists the branches"),
        lib.TagNotFoundError: _Words("`ick tag` lists the tags"),
        lib.RefNotFoundError: _Words(_REFS_HINT),
        lib.SnapshotNotFoundError: _Words(_REFS_HINT),
        lib.NodeNotFoundError: _Words("`ick ls -r` lists the groups and arrays"),
        lib.ImportSourceNotFoundError: _Words("check the --from path or URL"),
        lib.LocationNotFoundError: _Words(
            "the repository was deleted or moved; check -R/--repo or $ICK_REPO"
        ),
        lib.InvalidNameError: _Words(
            "names are 1-255 bytes without '/', '\\', control characters or surrounding spaces, "
            "do not start with '.', do not end in '~' or '~' and digits, and are not a snapshot id"
        ),
        lib.InvalidImportSourceError: _Words(
            "nothing was imported; --from takes the top directory of a valid Zarr v3 store"
        ),
        lib.InvalidReferencesError: _Words(
            "nothing was imported; fix the reference set (as kerchunk or VirtualiZarr write it)"
        ),
        lib.UndeclaredContainersError: _Words(
            "the ick command does not declare containers: declare them once in Python "
            "(docs/virtual.md, Declaring containers)"
        ),
        lib.ConfigError: _Words("`ick config show` lists the keys and their values"),
        lib.ConflictError: _Words(
            "look at `ick log --all` and run the command again",
            lambda e: (
                f"branch {e.branch!r} moved meanwhile: expected it at {e.expected_parent}, "
                f"found it at {e.actual_parent}"
            ),
        ),
        lib.RebaseFailedError: _Words(),  # its own message lists the conflicts
        lib.ConfigChangedError: _Words("run the command again"),
        lib.RepositoryAlreadyExistsError: _Words(
            "use it with -R/--repo, or choose an empty location"
        ),
        lib.RetiredFormatError: _Words(
            "read it with the ick that wrote it and copy the data into a new repository"
        ),
        lib.CorruptObjectError: _Words(
            "the repository is damaged; restore the object from a backup"
        ),
        lib.ImportWouldDeleteError: _Words(
            "nothing was committed; pass --yes to delete them, or import into another --path",
            lambda e: (
                f"{e.source} lacks {len(e.paths)} group(s) or array(s) under {e.dest}, which the "
                f"import would delete: {', '.join(e.paths[:10])}"
                f"{', ...' if len(e.paths) > 10 else ''}"
            ),
        ),
    }


def _library_failure(exc: BaseException) -> Failure | None:
    """The failure for an error of ``icechunk_lib``: its category's exit code, its words."""
    from icechunk_lib import errors as lib

    if not isinstance(exc, lib.IcechunkError):
        return None
    codes = [code for name, code in CATEGORIES.items() if isinstance(exc, getattr(lib, name))]
    exit_code = codes[0] if codes else EXIT_ERROR
    table = _words()
    words = next((table[cls] for cls in type(exc).__mro__ if cls in table), _Words())
    message = words.message(exc) if words.message is not None else str(exc)
    return Failure(exit_code, type(exc).__name__, message, words.hint)


def _os_message(exc: OSError) -> str:
    """``No space left on device: path`` rather than ``[Errno 28] ...``."""
    text = exc.strerror or str(exc)
    return f"{text}: {exc.filename}" if exc.filename else text


def classify(exc: BaseException) -> Failure:
    """The exit code, message and hint for an exception raised by a command."""
    if isinstance(exc, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "KeyboardInterrupt", "interrupted")
    if isinstance(exc, CliError):
        return Failure(exc.exit_code, type(exc).__name__, exc.message, exc.hint)
    if isinstance(exc, ClickException):  # usage errors, reported as JSON with --json
        ctx = getattr(exc, "ctx", None)
        hint = f"`{ctx.command_path} --help` shows the usage" if ctx is not None else ""
        return Failure(exc.exit_code, type(exc).__name__, exc.format_message(), hint)
    failure = _library_failure(exc)
    if failure is not None:
        return failure
    kind = type(exc).__name__
    # The system refused (a missing file, a full disk for the output, a closed terminal): not
    # a bug, so no "report it".
    if isinstance(exc, FileNotFoundError):
        return Failure(EXIT_NOT_FOUND, kind, str(exc), "check the path")
    if isinstance(exc, FileExistsError):
        return Failure(EXIT_CONFLICT, kind, str(exc))
    if isinstance(exc, OSError):
        return Failure(EXIT_ERROR, kind, _os_message(exc))
    return Failure(
        EXIT_ERROR,
        kind,
        f"unexpected {kind}: {exc}",
        f"run again with {DEBUG_ENV}=1 for the traceback, and report it",
    )


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while a command runs: the library's ``UnsafeWritesWarning``
    becomes one ``ick: warning:`` line on stderr; other warnings show as Python shows them."""
    if category.__name__ == "UnsafeWritesWarning":  # by name: nothing imported from the library
        print(f"ick: warning: {message}", file=sys.stderr)
        return
    _SHOW_WARNING(message, category, filename, lineno, file, line)


_SHOW_WARNING = warnings.showwarning


def report(exc: BaseException, *, as_json: bool = False) -> int:
    """Print one line (or, with --json, one JSON line) for ``exc`` on stderr; return the code."""
    failure = classify(exc)
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc, file=sys.stderr)
    if as_json:
        print(json.dumps(failure.doc(), ensure_ascii=False), file=sys.stderr)
    else:
        print(failure.line(), file=sys.stderr)
    return failure.exit_code
