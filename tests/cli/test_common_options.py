"""-R/--repo, --json and --no-color before or after any verb, on every command of the app.

Every command and subcommand is found by walking the click command tree, so a new command is
covered as soon as it exists (and fails here until it has a case in ``CASES``). Each runs with
``-R A`` while both the current directory and ``$ICK_REPO`` point at another repository B,
with the common options in every position the command line has; it must act on A only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

import icechunk_lib as ic
from icechunk_cli.main import app

from .conftest import Ick, Sample
from .test_content import write_store


def command_paths() -> Iterator[tuple[str, ...]]:
    """Every runnable command line prefix: leaf commands, and groups that run alone."""

    def walk(cmd: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        subs = getattr(cmd, "commands", None)
        if subs is None or (path and getattr(cmd, "invoke_without_command", False)):
            yield path
        for name, sub in (subs or {}).items():
            if not sub.hidden:
                yield from walk(sub, (*path, name))

    yield from walk(get_command(app), ())


@dataclass(frozen=True)
class Case:
    """The arguments a command needs, and whether it changes the repository."""

    args: tuple[str, ...] = ()
    writes: bool = False


SOURCE = "{source}"  # replaced by a Zarr store's path
REFS = "{refs}"  # replaced by a kerchunk reference file's path (inline data only)
CASES: dict[tuple[str, ...], Case] = {
    ("init",): Case(writes=True),
    ("config",): Case(),
    ("config", "show"): Case(),
    ("config", "set"): Case(("compression.level", "7"), writes=True),
    ("log",): Case(("--all",)),
    ("show",): Case(("v1.0",)),
    ("diff",): Case(("v1.0", "experiment")),
    ("reflog",): Case(("experiment",)),
    ("ls",): Case(("-l", "-r")),
    ("commit",): Case(("-m", "import", "--from", SOURCE, "-b", "experiment", "--yes"), writes=True),
    ("import-refs",): Case((REFS, "-m", "refs", "--group", "imported"), writes=True),
    ("reset",): Case(("experiment", "v1.0", "--yes"), writes=True),
    ("branch",): Case(),
    ("branch", "list"): Case(),
    ("branch", "create"): Case(("new", "v1.0"), writes=True),
    ("branch", "delete"): Case(("experiment",), writes=True),
    ("tag",): Case(),
    ("tag", "list"): Case(),
    ("tag", "create"): Case(("t", "v1.0"), writes=True),
    ("tag", "delete"): Case(("v1.1", "--yes"), writes=True),
    ("verify",): Case(("--data",)),
    ("stats",): Case(("--by", "branch")),
    ("expire",): Case(("--older-than", "1s", "--yes"), writes=True),
    ("gc",): Case(("--yes",), writes=True),
    ("rewrite-manifests",): Case(("-b", "experiment"), writes=True),
}


def test_every_command_has_a_case() -> None:
    assert set(command_paths()) == set(CASES)


def placements(path: tuple[str, ...], args: tuple[str, ...], options: list[str]) -> list[list[str]]:
    """``options`` before the first verb, between verbs, after the last verb, at the end."""
    lines = []
    for i in range(len(path) + 1):
        lines.append([*path[:i], *options, *path[i:], *args])
    lines.append([*path, *args, *options])
    return lines


def fingerprint(root: Path) -> dict[str, str]:
    """Every file under ``root`` and a hash of its bytes."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class Setup:
    a: Path
    b: Path
    source: Path
    refs: Path

    def arg(self, word: str) -> str:
        return {SOURCE: str(self.source), REFS: str(self.refs)}.get(word, word)


@pytest.fixture
def setup(sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """Repository A (the sample) and another repository B, current directory and $ICK_REPO."""
    b = tmp_path / "b"
    other = ic.Repository.create(ic.local_filesystem_storage(b))
    other.create_branch("only-in-b", other.lookup_branch("main"))
    Ick(b).ok("config", "set", "compression.level", "9")
    source = tmp_path / "source.zarr"
    write_store(source)
    refs = tmp_path / "refs.json"
    zarray = {
        "zarr_format": 2,
        "shape": [2],
        "chunks": [2],
        "dtype": "|u1",
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "compressor": None,
    }
    refs.write_text(json.dumps({"v/.zarray": json.dumps(zarray), "v/0": "base64:AQI="}))
    monkeypatch.chdir(b)
    return Setup(sample.path, b, source, refs)


def fresh(setup: Setup, path: tuple[str, ...], template: Path) -> Path:
    """A copy of A for one run of a command that writes (``init`` gets an empty location)."""
    if not CASES[path].writes:
        return template  # unchanged by the runs, as the fingerprints show
    target = setup.a.parent / "runs" / str(len(list((setup.a.parent / "runs").glob("*"))))
    target.parent.mkdir(exist_ok=True)
    if path != ("init",):
        shutil.copytree(template, target)
    return target


@pytest.mark.parametrize("path", sorted(CASES), ids=" ".join)
def test_common_options_in_every_position_act_on_the_repository_they_name(
    setup: Setup, path: tuple[str, ...]
) -> None:
    case = CASES[path]
    args = tuple(setup.arg(a) for a in case.args)
    env = {"ICK_REPO": str(setup.b)}
    ick = Ick(None)
    b_before = fingerprint(setup.b)
    template = setup.a.parent / "template"
    shutil.copytree(setup.a, template)

    expected = None
    if not case.writes:  # what the command prints when run inside A itself
        with contextlib.chdir(setup.a):
            inside = ick(*path, *args, "--json", env={"ICK_REPO": None})
        assert inside.exit_code == 0, inside.output
        expected = json.loads(inside.stdout)
        in_b = ick(*path, *args, "--json", env=env)
        assert in_b.exit_code != 0 or json.loads(in_b.stdout) != expected  # B differs

    # --unsafe-writes is accepted everywhere and changes nothing on a local repository.
    for line in placements(path, args, ["-R", "{a}", "--json", "--unsafe-writes"]):
        a = fresh(setup, path, template)
        a_before = fingerprint(a)
        argv = [str(a) if w == "{a}" else w for w in line]
        result = ick(*argv, env=env)
        assert result.exit_code == 0, (argv, result.output)
        doc = json.loads(result.stdout)  # --json was honoured wherever it was
        assert fingerprint(setup.b) == b_before, argv
        if case.writes:
            assert fingerprint(a) != a_before, argv
        else:
            assert doc == expected, argv


@pytest.mark.parametrize("path", sorted(CASES), ids=" ".join)
def test_no_color_in_every_position(setup: Setup, path: tuple[str, ...]) -> None:
    case = CASES[path]
    args = tuple(setup.arg(a) for a in case.args)
    ick = Ick(None)
    template = setup.a.parent / "template"
    shutil.copytree(setup.a, template)
    for line in placements(path, args, ["--no-color"]):
        a = fresh(setup, path, template)
        result = ick(*line, "-R", str(a), env={"ICK_TERMINAL": "1"})
        assert result.exit_code == 0, (line, result.output)
        assert not re.search("\x1b\\[[0-9;]*m", result.output), line  # no colour codes


@pytest.mark.parametrize("path", sorted(CASES), ids=" ".join)
def test_storage_options_in_every_position_reach_the_storage(
    setup: Setup, path: tuple[str, ...]
) -> None:
    # A local repository takes no storage options: the refusal names the ones that came
    # through from wherever they were given, so each position reached the storage.
    case = CASES[path]
    args = tuple(setup.arg(a) for a in case.args)
    ick = Ick(None)
    options = ["--storage-option", "region=eu-west-1", "-R", str(setup.a)]
    for line in placements(path, args, options):
        result = ick(*line, "--storage-option", "endpoint_url=http://h:1")
        assert result.exit_code == 2, (line, result.output)
        assert "storage options (endpoint_url, region) apply to object storage" in result.stderr


@pytest.mark.parametrize("item", ["noequals", "=value", " =x"])
def test_a_storage_option_must_be_key_equals_value(setup: Setup, item: str) -> None:
    result = Ick(setup.a)("log", "--storage-option", item)
    assert result.exit_code == 2
    assert "is not KEY=VALUE" in result.stderr


def test_the_last_repository_given_wins(setup: Setup) -> None:
    ick = Ick(None)
    a, b = str(setup.a), str(setup.b)
    names = ["experiment", "main"]
    assert [x["name"] for x in ick.json("-R", b, "branch", "-R", a, "list")["branches"]] == names
    assert [x["name"] for x in ick.json("-R", b, "branch", "list", "-R", a)["branches"]] == names
    assert [x["name"] for x in ick.json("branch", "-R", b, "list", "-R", a)["branches"]] == names
    only_b = ick.json("-R", a, "branch", "list", "-R", b)["branches"]
    assert [x["name"] for x in only_b] == ["main", "only-in-b"]


def test_completion_of_refs_uses_the_repository_given_before_the_verb(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer._completion_classes import BashComplete

    command: Any = get_command(app)
    monkeypatch.setenv("ICK_REPO", str(setup.b))
    for words in (
        ["ick", "-R", str(setup.a), "log", ""],
        ["ick", "log", "-R", str(setup.a), ""],
        ["ick", "-R", str(setup.a), "tag", "delete", ""],
        ["ick", "tag", "-R", str(setup.a), "delete", ""],
    ):
        monkeypatch.setenv("COMP_WORDS", " ".join(words))
        monkeypatch.setenv("COMP_CWORD", str(len(words) - 1))
        complete = BashComplete(command, {}, "ick", "_ICK_COMPLETE")
        offered = {c.value for c in complete.get_completions(*complete.get_completion_args())}
        assert "only-in-b" not in offered, words
        assert offered & {"v1.0", "v1.1"}, (words, offered)
