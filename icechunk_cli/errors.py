"""How a failure ends: exception type -> (exit code, message, hint), in this one place.

``main`` (through the app's top-level group) turns any exception a command raises into one
line on stderr and the exit code below; ``ICK_DEBUG=1`` adds the traceback. Library errors
are recognised by class name along the exception's MRO, so this module imports nothing from
``icechunk_lib`` and ``ick --help`` stays fast. ``EXIT_CODES`` is the documented table of exit
codes; the reference in docs/cli.md is generated from it.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer._click.exceptions import ClickException

__all__ = [
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
    "NotFoundError",
    "classify",
    "report",
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
    EXIT_ERROR: "error: anything not listed below, e.g. deleting `main`, a read-only location, "
    "a repository in a format version this ick does not read",
    EXIT_USAGE: "usage: bad option or argument, invalid name or URL, ambiguous revision, "
    "unknown config key or bad value",
    EXIT_NOT_FOUND: "not found: repository, branch, tag, snapshot, revision or path",
    EXIT_CONFLICT: "conflict: the branch moved meanwhile, the branch or tag exists, "
    "the location already holds data",
    EXIT_INTEGRITY: "the repository is damaged: a repository object is corrupt, missing, "
    "or stored under another object's name",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

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


class NotFoundError(CliError):
    """Something named on the command line does not exist."""

    exit_code = EXIT_NOT_FOUND


class LocationTakenError(CliError):
    """``ick init`` at a location that cannot hold a repository of its own."""

    exit_code = EXIT_CONFLICT


class NoRepositoryError(NotFoundError):
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
class _Rule:
    exit_code: int
    hint: str = ""
    message: Callable[[Any], str] | None = None
    """Replaces the library's message (for ones that speak of the Python API)."""


_REFS_HINT = "`ick log --all --oneline` shows branches, tags and snapshot ids"

# Keyed by class name; looked up along the exception's MRO, so the most specific rule wins.
_RULES: dict[str, _Rule] = {
    # 3: not found
    "RepositoryNotFoundError": _Rule(
        EXIT_NOT_FOUND,
        "check -R/--repo or $ICK_REPO, or create one with `ick init`",
        lambda e: f"no ick repository at {e.location}",
    ),
    "BranchNotFoundError": _Rule(EXIT_NOT_FOUND, "`ick branch` lists the branches"),
    "TagNotFoundError": _Rule(EXIT_NOT_FOUND, "`ick tag` lists the tags"),
    "RevisionNotFoundError": _Rule(EXIT_NOT_FOUND, _REFS_HINT),
    "RefNotFoundError": _Rule(EXIT_NOT_FOUND, _REFS_HINT),
    "SnapshotNotFoundError": _Rule(EXIT_NOT_FOUND, _REFS_HINT),
    "NodeNotFoundError": _Rule(EXIT_NOT_FOUND, "`ick ls -r` lists the groups and arrays"),
    "ImportSourceNotFoundError": _Rule(EXIT_NOT_FOUND, "check the --from path or URL"),
    "LocationNotFoundError": _Rule(
        EXIT_NOT_FOUND, "the repository was deleted or moved; check -R/--repo or $ICK_REPO"
    ),
    "FileNotFoundError": _Rule(EXIT_NOT_FOUND, "check the path"),
    # 2: usage
    "AmbiguousRefError": _Rule(EXIT_USAGE),
    "InvalidNameError": _Rule(
        EXIT_USAGE,
        "names are 1-255 bytes without '/', '\\', control characters or surrounding spaces, "
        "do not start with '.', do not end in '~' or '~' and digits, and are not a snapshot id",
    ),
    "InvalidStorageURLError": _Rule(EXIT_USAGE),
    "InvalidImportSourceError": _Rule(
        EXIT_USAGE,
        "nothing was imported; --from takes the top directory of a valid Zarr v3 store",
    ),
    "ConfigError": _Rule(EXIT_USAGE, "`ick config show` lists the keys and their values"),
    # 4: conflict
    "ConflictError": _Rule(
        EXIT_CONFLICT,
        "look at `ick log --all` and run the command again",
        lambda e: (
            f"branch {e.branch!r} moved meanwhile: expected it at {e.expected_parent}, "
            f"found it at {e.actual_parent}"
        ),
    ),
    "RebaseFailedError": _Rule(EXIT_CONFLICT),
    "ConfigChangedError": _Rule(EXIT_CONFLICT, "run the command again"),
    "BranchAlreadyExistsError": _Rule(EXIT_CONFLICT),
    "TagAlreadyExistsError": _Rule(EXIT_CONFLICT),
    "RepositoryAlreadyExistsError": _Rule(
        EXIT_CONFLICT, "use it with -R/--repo, or choose an empty location"
    ),
    "FileExistsError": _Rule(EXIT_CONFLICT),
    # 1: a format this ick does not read. The checksum covers the version, so a damaged
    # version field is reported as damage (5), and these are genuinely other formats.
    "RetiredFormatError": _Rule(
        EXIT_ERROR,
        "read it with the ick that wrote it and copy the data into a new repository",
    ),
    "UnsupportedFormatError": _Rule(EXIT_ERROR),  # its message says "upgrade ick"
    # 5: integrity
    "CorruptObjectError": _Rule(
        EXIT_INTEGRITY, "the repository is damaged; restore the object from a backup"
    ),
    "ObjectNotFoundError": _Rule(
        EXIT_INTEGRITY, "the repository refers to an object that is missing; it is damaged"
    ),
    # 1: everything else the library reports
    "ImportWouldDeleteError": _Rule(
        EXIT_ERROR,
        "nothing was committed; pass --yes to delete them, or import into another --path",
        lambda e: (
            f"{e.source} lacks {len(e.paths)} group(s) or array(s) under {e.dest}, which the "
            f"import would delete: {', '.join(e.paths[:10])}{', ...' if len(e.paths) > 10 else ''}"
        ),
    ),
    "ReadOnlyStorageError": _Rule(EXIT_ERROR),
    "IcechunkError": _Rule(EXIT_ERROR),
    # 1: the system refused (a full disk for the output, a closed terminal, ...): not a bug
    "OSError": _Rule(EXIT_ERROR, "", lambda e: _os_message(e)),
}


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
    for cls in type(exc).__mro__:
        if not (cls.__module__.startswith("icechunk_lib") or cls.__module__ == "builtins"):
            continue
        rule = _RULES.get(cls.__name__)
        if rule is not None:
            message = rule.message(exc) if rule.message is not None else str(exc)
            return Failure(rule.exit_code, type(exc).__name__, message, rule.hint)
    return Failure(
        EXIT_ERROR,
        type(exc).__name__,
        f"unexpected {type(exc).__name__}: {exc}",
        f"run again with {DEBUG_ENV}=1 for the traceback, and report it",
    )


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
