"""How ``ick`` prints: rich on a terminal, plain text when piped, one JSON document with --json.

Every command builds an :class:`Output` from its ``--json``/``--no-color`` flags and prints
through it. Results go to stdout; progress, prompts and diagnostics go to stderr. rich is
imported only when a terminal is actually drawn on, so piped and JSON output stay light.

The two text layouts differ on purpose: the terminal layout is for reading (short ids,
relative times, human sizes, fitted to the width), the plain layout is exact (full ids, ISO
8601 times, byte counts) so that piping it into other tools loses nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "SHORT_ID",
    "Column",
    "Output",
    "ask",
    "can_ask",
    "chunk_grid_size",
    "color_disabled",
    "command_hint",
    "fit_widths",
    "format_bytes",
    "format_shape",
    "iso_time",
    "json_default",
    "mark_outcome_reported",
    "outcome_reported",
    "plain_table",
    "refuse_unasked",
    "relative_time",
    "reset_state",
    "short_id",
    "snapshot_doc",
    "visible",
    "want_json_errors",
    "wants_json_errors",
]

SHORT_ID = 8
"""Characters of a snapshot id shown on a terminal (any unique prefix of 4 or more resolves)."""

UNKNOWN_WIDTH = 80
"""Columns assumed when the terminal reports a width of 0 (some pseudo-terminals do)."""

TERMINAL_ENV = "ICK_TERMINAL"
"""``1`` forces the terminal layout (for tests and CI logs), ``0`` forces plain text."""

STYLES = {
    "id": "yellow",
    "branch": "bold green",
    "tag": "bold magenta",
    "time": "cyan",
    "group": "bold blue",
    "added": "green",
    "deleted": "red",
    "updated": "yellow",
    "moved": "cyan",
    "dim": "dim",
    "key": "bold",
}

# Whether the running command's error is reported as JSON: set by --json (at any level of the
# command line) and by the Output it makes; main() reads it.
_json_errors = False

# Whether the running command has reported a finished outcome (a commit that landed): a
# Ctrl-C after that, on the way out, must not turn the exit code into 130.
_outcome_reported = False


def wants_json_errors() -> bool:
    """Whether the running command asked for --json, so its error is reported as JSON."""
    return _json_errors


def want_json_errors() -> None:
    """Report the running command's failure as JSON (--json was given, at any level)."""
    global _json_errors
    _json_errors = True


def mark_outcome_reported() -> None:
    """The command's outcome is written out: a later Ctrl-C ends the process with exit 0."""
    global _outcome_reported
    _outcome_reported = True


def outcome_reported() -> bool:
    """Whether the running command has already reported a finished outcome."""
    return _outcome_reported


def reset_state() -> None:
    """Forget the previous command's output mode (one process may run several, as in tests)."""
    global _json_errors, _outcome_reported
    _json_errors = False
    _outcome_reported = False


def _layout_is_terminal(stream: Any) -> bool:
    """Whether to lay ``stream``'s output out for a terminal; ``ICK_TERMINAL`` can force it."""
    forced = os.environ.get(TERMINAL_ENV, "")
    if forced in ("0", "1"):
        return forced == "1"
    return _stream_is_terminal(stream)


def _stream_is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Characters that steer a terminal (C0 but tab and newline, DEL, C1, bidi overrides)."""


def visible(text: str) -> str:
    """``text`` with terminal-steering characters written as escapes (``\\x1b``): repository
    text (messages, metadata) cannot clear the screen or hide itself, and piped output keeps
    them visible rather than dropping them. JSON is exact and needs none of this."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def can_ask() -> bool:
    """Whether a person can answer a question: stdin is a terminal (in a script it is not,
    and a question there would read, and eat, the script's own input)."""
    return _stream_is_terminal(sys.stdin)


def refuse_unasked(out: Output, command: str, advice: str) -> None:
    """A usage error on ``--yes`` (exit 2) when nobody can answer a question: with --json, or
    when stdin is not a terminal (a program runs the command, and a question would hang it or
    eat its input). ``advice`` says what to pass instead."""
    if out.json or not can_ask():
        import typer

        why = "with --json" if out.json else "without a terminal to ask at"
        raise typer.BadParameter(f"{why}, {command} does not ask; {advice}", param_hint="--yes")


def ask(question: str) -> bool:
    """Ask ``question [y/N]`` on stderr and read the answer from stdin; no by default.

    Unlike ``click.confirm``, which echoes a space to stdout, nothing goes to stdout: the
    result printed afterwards is the same as when nobody was asked. Ctrl-C propagates.
    """
    while True:
        sys.stderr.write(f"{question} [y/N]: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:  # end of input: no
            sys.stderr.write("\n")
            return False
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no"):
            return False
        sys.stderr.write("Please answer y or n.\n")


def color_disabled(flag: bool) -> bool:
    """``--no-color`` or a non-empty ``NO_COLOR`` (https://no-color.org) turns colour off."""
    return flag or bool(os.environ.get("NO_COLOR"))


@dataclass(frozen=True)
class Column:
    """A table column: its header, whether it holds numbers, and how it behaves when narrow."""

    header: str
    numeric: bool = False
    shrink: bool = False
    """Truncate this column (with an ellipsis) when the table is wider than the terminal."""
    style: str | None = None


Cell = str | tuple[str, str | None]
"""A table cell: text, or (text, style name from STYLES)."""


class Output:
    """Where and how one command prints."""

    def __init__(self, *, json: bool = False, no_color: bool = False) -> None:
        if json:
            want_json_errors()
        self.json = json
        self.terminal = not json and _layout_is_terminal(sys.stdout)
        self.color = self.terminal and not color_disabled(no_color)
        self._no_color_flag = no_color

    # --- consoles ------------------------------------------------------------------------------

    @cached_property
    def console(self) -> Console:
        """A rich console on stdout (terminal layout only)."""
        from rich.console import Console

        console = Console(
            file=sys.stdout,
            force_terminal=True if self.terminal else None,
            no_color=not self.color,
            color_system="auto" if self.color else None,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=False,
        )
        if console.width < 1:  # COLUMNS=0: rich would print nothing at all
            console.width = UNKNOWN_WIDTH
        return console

    @cached_property
    def err_console(self) -> Console:
        """A rich console on stderr, for progress bars and prompts."""
        from rich.console import Console

        colored = self.stderr_is_terminal and not color_disabled(self._no_color_flag)
        return Console(
            file=sys.stderr,
            stderr=True,
            force_terminal=True if self.stderr_is_terminal else None,
            no_color=not colored,
            highlight=False,
            markup=False,
            emoji=False,
        )

    @property
    def stderr_is_terminal(self) -> bool:
        """Whether to draw progress bars (``ICK_TERMINAL`` forces the answer, as for stdout)."""
        return _layout_is_terminal(sys.stderr)

    # --- writing -------------------------------------------------------------------------------

    def emit(self, doc: Mapping[str, Any]) -> None:
        """Write the command's one JSON document to stdout."""
        # Indented for a person at a terminal, one line for programs; the same document.
        indent = 2 if _stream_is_terminal(sys.stdout) else None
        typer.echo(json.dumps(doc, indent=indent, ensure_ascii=False, default=json_default))

    def line(self, text: str | Text = "") -> None:
        """One line of output: rich ``Text`` on a terminal, plain text otherwise."""
        if isinstance(text, str):
            text = visible(text)
        if self.terminal:
            self.console.print(text, overflow="ellipsis", no_wrap=True, crop=True)
        else:
            typer.echo(text if isinstance(text, str) else text.plain)

    def wrapped(self, text: str | Text) -> None:
        """Running text (messages): wrapped to the terminal width, verbatim when piped."""
        if isinstance(text, str):
            text = visible(text)
        if self.terminal:
            self.console.print(text)
        else:
            typer.echo(text if isinstance(text, str) else text.plain)

    def note(self, text: str) -> None:
        """A diagnostic for the person at the terminal: always on stderr, never in results."""
        typer.echo(visible(text), err=True)

    def text(self, *parts: Cell) -> Text | str:
        """Join styled parts: a rich ``Text`` on a terminal, a plain string otherwise."""
        if not self.terminal:
            return visible("".join(p if isinstance(p, str) else p[0] for p in parts))
        from rich.text import Text

        out = Text()
        for part in parts:
            if isinstance(part, str):
                out.append(visible(part))
            else:
                out.append(visible(part[0]), style=STYLES.get(part[1] or "", part[1] or ""))
        return out

    def table(self, columns: Sequence[Column], rows: Iterable[Sequence[Cell]]) -> None:
        """A table: a rich table on a terminal, space-aligned columns with a header otherwise."""
        rows = [[_visible_cell(c) for c in r] for r in rows]
        if self.terminal:
            self._rich_table(columns, rows)
        else:
            for line in plain_table(columns, rows):
                typer.echo(line)

    def _rich_table(self, columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> None:
        from rich import box
        from rich.cells import cell_len
        from rich.table import Table
        from rich.text import Text

        # Fit the terminal by truncating the "shrink" columns (messages, paths) only, and never
        # below a readable width: rich would otherwise shorten every column, ids included,
        # down to one character. What still does not fit is cut at the right edge.
        gap = 2
        texts = [[_cell_text(c) for c in row] for row in rows]
        natural = [  # in terminal columns: East Asian characters take two
            max([cell_len(col.header)] + [cell_len(r[i]) for r in texts])
            for i, col in enumerate(columns)
        ]
        widths = fit_widths(natural, [c.shrink for c in columns], self.console.width, gap)

        table = Table(
            box=box.SIMPLE_HEAD,
            padding=(0, gap - 1, 0, 0),
            pad_edge=False,
            show_edge=False,
            collapse_padding=True,
        )
        for col, width in zip(columns, widths, strict=True):
            table.add_column(
                col.header,
                justify="right" if col.numeric else "left",
                no_wrap=True,
                overflow="ellipsis",
                max_width=width if col.shrink else None,
                style=STYLES.get(col.style or "", col.style),
            )
        for row in rows:
            table.add_row(*(self.text(c) for c in row))
        total = sum(widths) + gap * (len(widths) - 1)
        if total <= self.console.width:
            self.console.print(table)
            return
        options = self.console.options.update(width=total)
        for line in self.console.render_lines(table, options, pad=False):
            text = Text()
            for segment in line:
                text.append(segment.text, segment.style)
            self.line(text)

    # --- formatting ----------------------------------------------------------------------------

    def id(self, snapshot_id: str | None) -> str:
        """A snapshot id as this layout shows it: short on a terminal, full when piped."""
        if snapshot_id is None:
            return "-"
        return short_id(snapshot_id) if self.terminal else snapshot_id

    def when(self, moment: dt.datetime, now: dt.datetime | None = None) -> str:
        """A time as this layout shows it: relative on a terminal, ISO 8601 UTC when piped."""
        return relative_time(moment, now) if self.terminal else iso_time(moment)

    def size(self, n: int | None) -> str:
        if n is None:
            return "-"
        return format_bytes(n) if self.terminal else str(n)

    def shape(self, shape: Sequence[int] | None) -> str:
        return format_shape(shape, "\N{MULTIPLICATION SIGN}" if self.terminal else "x")


def _visible_cell(cell: Cell) -> Cell:
    return visible(cell) if isinstance(cell, str) else (visible(cell[0]), cell[1])


def _cell_text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


SHRINK_FLOOR = 16
"""Characters a shrinking column (path, message, dtype) keeps however narrow the terminal."""


def fit_widths(natural: Sequence[int], shrink: Sequence[bool], width: int, gap: int) -> list[int]:
    """Column widths for a terminal ``width``: the widest shrinking column gives way first,
    none below ``SHRINK_FLOOR`` (or its natural width); the others keep their natural width."""
    widths = list(natural)
    excess = sum(widths) + gap * (len(widths) - 1) - width
    floors = [min(w, SHRINK_FLOOR) if s else w for w, s in zip(natural, shrink, strict=True)]
    while excess > 0:
        i = max(range(len(widths)), key=lambda k: widths[k] - floors[k])
        if widths[i] <= floors[i]:
            break
        widths[i] -= 1
        excess -= 1
    return widths


def plain_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """Columns separated by two spaces; numbers right-aligned; the last column not padded."""
    texts = [[c.header for c in columns]] + [
        [c if isinstance(c, str) else c[0] for c in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in texts) for i in range(len(columns))]
    lines = []
    for row in texts:
        cells = []
        for i, (col, cell) in enumerate(zip(columns, row, strict=True)):
            last = i == len(columns) - 1
            if col.numeric:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if last else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return lines


def short_id(snapshot_id: str) -> str:
    return snapshot_id[:SHORT_ID]


def iso_time(moment: dt.datetime) -> str:
    """ISO 8601 in UTC, to the second: ``2025-01-31T12:00:00+00:00``."""
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def relative_time(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    """``just now``, ``5 minutes ago``, ... ``12 days ago``; the date beyond 30 days."""
    now = now or dt.datetime.now(dt.UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size, limit in (
        ("minute", 60, 3600),
        ("hour", 3600, 86400),
        ("day", 86400, 30 * 86400),
    ):
        if seconds < limit:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return moment.astimezone(dt.UTC).date().isoformat()


def format_bytes(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def format_shape(shape: Sequence[int] | None, sep: str = "x") -> str:
    if shape is None:
        return "-"
    if not shape:
        return "()"
    return sep.join(str(s) for s in shape)


def chunk_grid_size(shape: Sequence[int] | None, chunks: Sequence[int] | None) -> int | None:
    """How many chunks a regular grid has (None when unknown)."""
    if shape is None or chunks is None or len(shape) != len(chunks) or 0 in chunks:
        return None
    return math.prod(-(-s // c) for s, c in zip(shape, chunks, strict=True))


def json_default(value: object) -> Any:
    """JSON for the values metadata may hold beyond JSON's own: datetimes and bytes."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot express {type(value).__name__} in JSON")


def snapshot_doc(info: Any) -> dict[str, Any]:
    """A ``SnapshotInfo`` as JSON: id, parent_id, written_at (ISO 8601), message, metadata."""
    return {
        "id": info.id,
        "parent_id": info.parent_id,
        "written_at": info.written_at.isoformat(),
        "message": info.message,
        "metadata": dict(info.metadata),
    }


def command_hint(*words: str, args: Sequence[str] = (), repo: str | None = None) -> str:
    """A copy-pasteable ``ick`` command line: ``words`` (verbs and options), then ``args``
    (names and ids) after ``--`` if one starts with '-', so that it cannot read as an option;
    with -R first when the repository was given by it."""
    import shlex

    line = ["ick"]
    if repo and repo != os.environ.get("ICK_REPO"):
        line += [f"--repo={repo}"] if repo.startswith("-") else ["-R", repo]
    line += words
    if any(a.startswith("-") for a in args):
        line.append("--")
    line += args
    return shlex.join(line)
