"""What ``ick`` writes is the program's own: text the repository holds (commit messages,
metadata, attributes) cannot send control sequences to the terminal (clear the screen, set
the title, hide text), and piped text keeps such characters visible instead of dropping them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zarr

import icechunk_lib as ic

from .test_e2e import ICK, run

pytestmark = pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")

HOSTILE = "msg \x1b[2J\x1b[31mRED\x1b]0;title\x07 \u202eevil\x9b1m end"
RAW = ("\x1b[2J", "\x1b[31mRED", "\x1b]0;", "\x07", "\u202e", "\x9b")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="a", attributes={"title": "\x1b[2J"})
    snapshot = session.commit(HOSTILE, metadata={"k\x1b[1m": "v\x1b[5m"})
    repo.create_tag("t", snapshot)
    repo.create_branch("b", snapshot)
    return path


COMMANDS = [
    ["log"],
    ["log", "--oneline"],
    ["log", "--graph", "--all"],
    ["show"],
    ["branch"],
    ["tag"],
    ["reflog"],
]


@pytest.mark.parametrize("terminal", ["1", "0"])
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_control_characters_in_repository_text_are_shown_escaped(
    hostile: Path, args: list[str], terminal: str
) -> None:
    result = run("-R", str(hostile), *args, env={"ICK_TERMINAL": terminal, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    for raw in RAW:
        assert raw not in result.stdout, (raw, result.stdout)
    assert "\\x1b[2J" in result.stdout  # visible, not dropped
    assert "RED" in result.stdout


def test_json_keeps_the_text_exact(hostile: Path) -> None:
    result = run("-R", str(hostile), "log", "-n", "1", "--json")
    entry = json.loads(result.stdout)["snapshots"][0]
    assert entry["message"] == HOSTILE
    assert entry["metadata"] == {"k\x1b[1m": "v\x1b[5m"}


@pytest.mark.parametrize("columns", ["0", "-3", "abc"])
def test_a_terminal_of_unknown_width_still_gets_the_output(hostile: Path, columns: str) -> None:
    """COLUMNS=0 (as some pseudo-terminals report) must not print nothing and exit 0."""
    for args in (["log", "--oneline"], ["branch"], ["reflog"]):
        result = run("-R", str(hostile), *args, env={"ICK_TERMINAL": "1", "COLUMNS": columns})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip(), (args, columns)
    oneline = run("-R", str(hostile), "log", "--oneline", env={"ICK_TERMINAL": "1", "COLUMNS": "0"})
    assert "Repository initialized" in oneline.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["log", "--oneline"], ["log", "--json"], ["branch"]])
def test_a_full_disk_for_stdout_is_an_error_not_a_bug_report(
    hostile: Path, args: list[str]
) -> None:
    import os
    import subprocess

    from .conftest import CLEAN_ENV

    env = {k: v for k, v in os.environ.items() if CLEAN_ENV.get(k, "") is not None}
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [str(ICK), "-R", str(hostile), *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    if "--json" in args:
        assert json.loads(result.stderr)["error"]["exit_code"] == 1
    else:
        assert result.stderr.startswith("ick: error: ")
    assert "No space left on device" in result.stderr
    assert "unexpected" not in result.stderr and "report it" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_wide_characters_do_not_squeeze_the_ids_out_of_a_table(hostile: Path) -> None:
    """East Asian characters take two columns each: the table must count columns, not
    characters, or rich squeezes every other column (ids, times) to one character."""
    repo = ic.Repository.open(ic.local_filesystem_storage(hostile))
    tip = repo.lookup_branch("main")
    repo.create_branch("日本語の長いブランチ名前日本語の長いブランチ名前日本語", tip)
    env = {"ICK_TERMINAL": "1", "COLUMNS": "80", "NO_COLOR": "1"}
    result = run("-R", str(hostile), "branch", env=env)
    assert result.returncode == 0, result.stderr
    from rich.cells import cell_len

    rows = result.stdout.splitlines()[2:]
    assert len(rows) == 3
    for row in rows:
        assert tip[:8] in row, result.stdout
        assert cell_len(row) <= 80, row


def test_error_lines_show_control_characters_escaped(tmp_path: Path) -> None:
    """File names in a store being imported, or arguments, reach error messages too."""
    source = tmp_path / "evil\x1b]0;title\x07\x1b[2J"
    result = run("commit", "-m", "x", "--from", str(source), "-R", str(tmp_path / "nope"))
    assert result.returncode == 3, result.stderr
    for raw in ("\x1b", "\x07"):
        assert raw not in result.stderr
    assert "\\x1b]0;title\\x07" in result.stderr
