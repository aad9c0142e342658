"""Questions before destructive commands are asked only of a person at a terminal: a script
(stdin not a terminal) or --json gets a usage error naming --yes, never a prompt that would
read (and eat) the script's input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import icechunk_lib as ic

from .conftest import CLEAN_ENV, Sample
from .test_e2e import ICK

pytestmark = pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if CLEAN_ENV.get(k, "") is not None}


def _tip(repo: Path, branch: str = "main") -> str:
    return ic.Repository.open(ic.local_filesystem_storage(repo)).lookup_branch(branch)


def piped(repo: Path, *args: str, answer: str = "y\n") -> subprocess.CompletedProcess[str]:
    """Run ick in a script: stdin is a pipe holding ``answer`` (the script's own input)."""
    return subprocess.run(
        [str(ICK), "-R", str(repo), *args],
        input=answer,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )


def at_terminal(repo: Path, *args: str, answer: str) -> subprocess.CompletedProcess[str]:
    """Run ick with a terminal as its stdin, typing ``answer``."""
    leader, follower = os.openpty()
    try:
        os.write(leader, answer.encode())
        return subprocess.run(
            [str(ICK), "-R", str(repo), *args],
            stdin=follower,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_reset_in_a_script_does_not_ask_and_does_not_move(sample: Sample, extra: list[str]) -> None:
    result = piped(sample.path, "reset", "main", "v1.0", *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "?" not in result.stderr  # no question
    assert "--yes" in result.stderr
    if extra:
        assert json.loads(result.stderr)["error"]["exit_code"] == 2
    assert _tip(sample.path) == sample.ids["day4"]


def test_reset_in_a_script_with_yes_moves(sample: Sample) -> None:
    result = piped(sample.path, "reset", "main", "v1.0", "--yes", answer="")
    assert result.returncode == 0, result.stderr
    assert _tip(sample.path) == sample.ids["first"]


def test_reset_at_a_terminal_asks(sample: Sample) -> None:
    declined = at_terminal(sample.path, "reset", "main", "v1.0", answer="n\n")
    assert declined.returncode == 1, declined.stderr
    assert "Move branch 'main'" in declined.stderr
    assert f"not moved; branch 'main' stays at {sample.ids['day4']}" in declined.stderr
    assert _tip(sample.path) == sample.ids["day4"]
    accepted = at_terminal(sample.path, "reset", "main", "v1.0", answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert _tip(sample.path) == sample.ids["first"]
    # The answer's echo stays on stderr: stdout is the result alone, as when piped.
    assert accepted.stdout.startswith("Moved branch main from ")
    assert declined.stdout == ""


def test_reset_to_where_the_branch_is_needs_no_answer(sample: Sample) -> None:
    result = piped(sample.path, "reset", "main", "v1.1", answer="")
    assert result.returncode == 0, result.stderr
    assert "already at" in result.stdout


def test_commit_at_a_terminal_asks_on_stderr_only(sample: Sample, tmp_path: Path) -> None:
    from .test_content import write_store

    source = tmp_path / "s.zarr"
    write_store(source)
    args = ("commit", "-m", "x", "--from", str(source))
    declined = at_terminal(sample.path, *args, answer="n\n")
    assert declined.returncode == 1, declined.stderr
    assert "Delete them from main and commit? [y/N]" in declined.stderr
    assert declined.stdout == ""
    accepted = at_terminal(sample.path, *args, answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("Committed ")
    assert _tip(sample.path) != sample.ids["day4"]


def _tags(repo: Path) -> list[str]:
    return sorted(ic.Repository.open(ic.local_filesystem_storage(repo)).list_tags())


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_tag_delete_in_a_script_needs_yes(sample: Sample, extra: list[str]) -> None:
    """Deleting a tag cannot be undone (its name is never usable again): never unasked."""
    result = piped(sample.path, "tag", "delete", "v1.0", *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "--yes" in result.stderr
    assert _tags(sample.path) == ["v1.0", "v1.1"]
    done = piped(sample.path, "tag", "delete", "v1.0", "--yes", *extra, answer="")
    assert done.returncode == 0, done.stderr
    assert _tags(sample.path) == ["v1.1"]


def test_tag_delete_at_a_terminal_asks(sample: Sample) -> None:
    declined = at_terminal(sample.path, "tag", "delete", "v1.0", answer="n\n")
    assert declined.returncode == 1, declined.stderr
    assert "Delete tag 'v1.0'" in declined.stderr
    assert "not deleted" in declined.stderr
    assert declined.stdout == ""
    assert _tags(sample.path) == ["v1.0", "v1.1"]
    accepted = at_terminal(sample.path, "tag", "delete", "v1.0", answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == f"Deleted tag v1.0 (was {sample.ids['first']})\n"
    assert _tags(sample.path) == ["v1.1"]
