"""Shell completion never prints a traceback into the shell: whatever the completion
variables hold, ``ick`` completes something or nothing, quietly."""

from __future__ import annotations

import pytest

import icechunk_lib as ic

from .conftest import Sample
from .test_e2e import ICK, run

pytestmark = pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")

BROKEN = [
    {"_ICK_COMPLETE": "complete_bash"},  # no COMP_WORDS / COMP_CWORD
    {"_ICK_COMPLETE": "complete_bash", "COMP_WORDS": "ick log "},  # no COMP_CWORD
    {"_ICK_COMPLETE": "complete_bash", "COMP_WORDS": "ick log ", "COMP_CWORD": "x"},
    {"_ICK_COMPLETE": "complete_bash", "COMP_WORDS": "ick log ", "COMP_CWORD": "-5"},
    {"_ICK_COMPLETE": "complete_bash", "COMP_WORDS": "ick 'log", "COMP_CWORD": "1"},
    {"_ICK_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": 'ick log "'},
    {"_ICK_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "ick -R"},
    {"_ICK_COMPLETE": "complete_nosuchshell"},
    {"_ICK_COMPLETE": "source_nosuchshell"},
]


@pytest.mark.parametrize("env", BROKEN, ids=lambda e: " ".join(f"{k}={v}" for k, v in e.items()))
def test_broken_completion_requests_print_no_traceback(sample: Sample, env: dict[str, str]) -> None:
    result = run(cwd=sample.path, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    assert "Error" not in result.stdout
    assert result.stderr.count("\n") <= 1, result.stderr


@pytest.mark.parametrize(
    "words",
    [
        "ick -R nowhere log ",
        "ick -R '' log ",
        "ick -R file:///%zz log ",
        "ick log -n 99999999999999999999 ",
        "ick --json -R . --json log -- ",
    ],
)
def test_completion_with_odd_command_lines_is_quiet(sample: Sample, words: str) -> None:
    env = {"_ICK_COMPLETE": "complete_bash", "COMP_WORDS": words}
    result = run(cwd=sample.path, env={**env, "COMP_CWORD": str(len(words.split()))})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_bash_completes_names_with_spaces_and_quotes_as_one_word(sample: Sample) -> None:
    """bash inserts a completion as it is: a name with a space would become two arguments
    (``ick reset sp ace`` resets branch 'sp' to 'ace')."""
    import shlex

    repo = ic.Repository.open(ic.local_filesystem_storage(sample.path))
    for name in ("sp ace", "it's", "a$b"):
        repo.create_branch(name, sample.ids["first"])
    env = {"_ICK_COMPLETE": "complete_bash", "COMP_WORDS": "ick reset ", "COMP_CWORD": "2"}
    result = run(cwd=sample.path, env=env)
    assert result.returncode == 0, result.stderr
    words = [shlex.split(line) for line in result.stdout.splitlines()]
    assert words == [["a$b"], ["experiment"], ["it's"], ["main"], ["sp ace"]]
    zsh = {"_ICK_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "ick reset sp"}
    assert '"sp ace"' in run(cwd=sample.path, env=zsh).stdout  # zsh quotes by itself
