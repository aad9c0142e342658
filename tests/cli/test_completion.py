"""Shell completion never prints a traceback into the shell: whatever the completion
variables hold, ``ick`` completes something or nothing, quietly."""

from __future__ import annotations

import pytest

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
