"""``ick`` under arbitrary command lines: documented exit codes, one-line errors, no damage.

hypothesis builds command lines from every command and subcommand of the app (found by
walking the click tree, so a new command is fuzzed without touching this file), every
option those commands declare, and values chosen to hurt: refs with ``~N``, huge and
negative numbers, names at the edge of validity, ``--``, empty strings, unicode, other
repositories. Whatever the command line, ``ick`` must:

- end with a documented exit code, never an unexpected exception or a traceback;
- print a failure (other than a usage error) as one line ``ick: error: ...`` on stderr, or,
  with ``--json``, as one JSON error document;
- leave the repository readable: every branch and tag resolves and its history reads.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icechunk_lib as ic
from icechunk_cli import errors
from icechunk_cli.main import app

from .conftest import CLEAN_ENV, Sample

UNEXPECTED = re.compile(r"unexpected \w+(Error|Exception|Warning)\b")
"""How ``ick`` reports an exception no rule maps: always a defect here."""

# Never fuzzed: they write to the user's shell configuration, not to a repository.
_EXCLUDED = {"--install-completion", "--show-completion"}


def _commands() -> dict[tuple[str, ...], list[tuple[list[str], bool]]]:
    """Every command path of the app -> its options as (names, is_flag)."""
    found: dict[tuple[str, ...], list[tuple[list[str], bool]]] = {}

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        opts = [
            (list(p.opts), bool(getattr(p, "is_flag", False)))
            for p in cmd.params
            if p.param_type_name == "option" and not set(p.opts) & _EXCLUDED
        ]
        found[path] = opts
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _commands()


def _values(sample: Sample, other: Path, scratch: Path) -> list[str]:
    ids = list(sample.ids.values())
    return [
        "main",
        "experiment",
        "v1.0",
        "v1.1",
        "main~1",
        "main~0",
        "main~99",
        "experiment~2",
        "v1.0~1",
        "nope",
        "feat~",
        "a~b",
        "~1",
        ids[1],
        ids[1][:4],
        ids[2][:8].lower(),
        "0" * 20,
        "",
        " ",
        "-",
        "--",
        ".",
        "..",
        ".hidden",
        "a/b",
        "x" * 256,
        "ünïcødé",
        "tab\there",
        "0",
        "1",
        "-1",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999999",
        "1e3",
        "temps",
        "/weather",
        "weather/precip",
        "/no/such/node",
        "caching.num_snapshots",
        "inline_chunk_threshold_bytes",
        "compression.level",
        "true",
        "key=value",
        "{}",
        str(sample.path),
        str(other),
        str(scratch),
        str(scratch / "missing"),
        "file://" + str(sample.path),
        "ftp://host/repo",
        "s3:x",
    ]


def _argv(draw: Any, values: list[str]) -> list[str]:
    path = draw(st.sampled_from(sorted(COMMANDS)))
    options = [o for p in {(), path[:1], path} for o in COMMANDS[p]]
    # Argument values and options in any order, the verb's own path anywhere it parses.
    tokens: list[str] = draw(st.lists(st.sampled_from(values), max_size=3))
    for names, is_flag in draw(st.lists(st.sampled_from(options), max_size=4)) if options else []:
        tokens.append(draw(st.sampled_from(names)))
        if not is_flag:
            tokens.append(draw(st.sampled_from(values)))
    tokens = draw(st.permutations(tokens))
    split = draw(st.integers(0, len(tokens)))
    extra = draw(st.sampled_from([[], [], ["-h"], ["--no-color"], ["--json"], ["--version"]]))
    return [*tokens[:split], *path, *tokens[split:], *extra]


VALUED = {name for opts in COMMANDS.values() for names, flag in opts if not flag for name in names}
"""Options that take a value: the token after one is its value, whatever it looks like."""


GROUPS = {path[:-1] for path in COMMANDS if path}
"""Command paths that take a subcommand."""


def _json_requested(argv: list[str]) -> bool:
    """Whether ``--json`` is an option on this command line: not an option's value, and not
    after the running command's ``--`` (a group's ``--`` is its own: a subcommand follows)."""
    path: tuple[str, ...] | None = ()  # None once the name is no command
    dashes = False
    tokens = iter(argv)
    for token in tokens:
        if path in GROUPS and (dashes or not token.startswith("-")):
            path = (*path, token) if (*path, token) in COMMANDS else None
            dashes = False
        elif token == "--":
            if path not in GROUPS:
                return False
            dashes = True
        elif token == "--json":
            return True
        elif token in VALUED:
            next(tokens, None)
    return False


def test_json_requested_reads_the_command_line_as_click_does() -> None:
    assert _json_requested(["log", "--json"])
    assert _json_requested(["--", "diff", "main", "nope", "--json"])  # the group's `--`
    assert not _json_requested(["diff", "--", "--json"])  # the command's: an argument
    assert not _json_requested(["-R", "--json", "log"])  # a value
    assert _json_requested(["nosuch", "--json"])


def _readable(path: Path) -> None:
    """The repository opens, and every branch and tag resolves with a readable history."""
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    for branch in repo.list_branches():
        assert list(repo.ancestry(branch=branch))
    for tag in repo.list_tags():
        assert list(repo.ancestry(tag=tag))


@settings(
    max_examples=int(os.environ.get("ICK_FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_command_line_ends_cleanly(
    sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    from typer.testing import CliRunner

    other = tmp_path / "other"
    if not other.exists():
        ic.Repository.create(ic.local_filesystem_storage(other))
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    monkeypatch.chdir(scratch)
    values = _values(sample, other, scratch)
    argv = _argv(data.draw, values)
    env = {**CLEAN_ENV, "ICK_REPO": str(sample.path)}
    result = CliRunner().invoke(app, argv, env=env)
    what = f"ick {argv!r}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        what,
        result.exception,
    )
    assert result.exit_code in errors.EXIT_CODES, what
    assert result.exit_code != errors.EXIT_INTERRUPTED, what
    assert "Traceback" not in result.stdout + result.stderr, what
    assert not UNEXPECTED.search(result.stderr), what
    if result.exit_code not in (0, errors.EXIT_USAGE):
        if _json_requested(argv):
            doc = json.loads(result.stderr)
            assert doc["error"]["exit_code"] == result.exit_code, what
        else:
            assert result.stderr.startswith("ick: error: "), what
            assert result.stderr.count("\n") == 1, what
    elif result.exit_code == errors.EXIT_USAGE and _json_requested(argv):
        doc = json.loads(result.stderr.strip().splitlines()[-1])
        assert doc["error"]["exit_code"] == errors.EXIT_USAGE, what
    for repo in (sample.path, other):
        _readable(repo)
