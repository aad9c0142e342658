"""An empty argument (``"$UNSET"`` in a script) is refused, never read as the default: an
empty REF is not main, an empty --path is not the root."""

from __future__ import annotations

from pathlib import Path

import pytest

import icechunk_lib as ic

from .conftest import Ick, Sample
from .test_content import write_store


def _state(repo: Path) -> tuple[dict[str, str], dict[str, str]]:
    r = ic.Repository.open(ic.local_filesystem_storage(repo))
    branches = {b: r.lookup_branch(b) for b in r.list_branches()}
    return branches, {t: r.lookup_tag(t) for t in r.list_tags()}


@pytest.mark.parametrize(
    "args",
    [
        ["tag", "create", "v2", ""],
        ["branch", "create", "b2", ""],
        ["reset", "experiment", "", "--yes"],
        ["log", ""],
        ["show", ""],
        ["diff", ""],
        ["diff", "v1.0", ""],
        ["ls", ""],
    ],
    ids=" ".join,
)
def test_an_empty_revision_is_not_main(ick: Ick, sample: Sample, args: list[str]) -> None:
    before = _state(sample.path)
    result = ick(*args)
    assert result.exit_code in (2, 3), (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "''" in result.stderr
    assert _state(sample.path) == before


def test_an_empty_commit_path_is_not_the_root(ick: Ick, sample: Sample, tmp_path: Path) -> None:
    source = tmp_path / "s.zarr"
    write_store(source)
    before = _state(sample.path)
    result = ick("commit", "-m", "x", "--from", str(source), "--path", "", "--yes")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "--path" in result.stderr
    assert _state(sample.path) == before


def test_an_empty_commit_source_is_not_the_current_directory(
    ick: Ick, sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_store(tmp_path / "here")
    monkeypatch.chdir(tmp_path / "here")  # a valid store: "" must not mean it
    before = _state(sample.path)
    result = ick("commit", "-m", "x", "--from", "", "--yes", "--path", "/x")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "--from" in result.stderr
    assert _state(sample.path) == before
