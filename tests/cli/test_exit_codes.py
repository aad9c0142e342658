"""Every documented exit code, and the one-line errors that come with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import icechunk_lib as ic
from icechunk_cli import errors

from .conftest import Ick, Sample


def test_the_documented_codes() -> None:
    assert errors.EXIT_CODES.keys() == {0, 1, 2, 3, 4, 5, 130}


def test_1_error(ick: Ick) -> None:
    result = ick.fails(1, "branch", "delete", "main")
    assert result.stderr == (
        "ick: error: cannot delete branch 'main': it is the repository's main branch\n"
    )


def test_1_unexpected_errors_are_one_line_unless_debugging(
    ick: Ick, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ic.Repository, "list_branches", broken)
    result = ick.fails(1, "branch")
    assert "unexpected RuntimeError: disk on fire" in result.stderr
    assert "ICK_DEBUG=1" in result.stderr
    debug = ick("branch", env={"ICK_DEBUG": "1"})
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("ick: error: unexpected")


def test_2_usage(ick: Ick, sample: Sample) -> None:
    assert ick("log", "--no-such-option").exit_code == 2
    assert ick("frobnicate").exit_code == 2
    assert ick("diff").exit_code == 2  # FROM missing
    ick.fails(2, "log", "-R", "ftp://example.com/repo", repo=False)
    ick.fails(2, "tag", "create", ".hidden")


def test_2_ambiguous_revision_lists_the_candidates(ick: Ick, sample: Sample) -> None:
    # A branch and a tag of one name (a name spelling an id prefix is not ambiguous: it wins).
    ick.ok("branch", "create", "twin", "v1.0")
    ick.ok("tag", "create", "twin", sample.ids["day3"])
    result = ick.fails(2, "log", "twin")
    assert "branch twin" in result.stderr
    assert "tag twin" in result.stderr
    assert result.stderr.count("\n") == 1


def test_3_not_found(ick: Ick, bare_ick: Ick, sample: Sample, tmp_path: Path) -> None:
    missing = bare_ick.fails(3, "log", "-R", str(tmp_path))
    assert f"no ick repository at {tmp_path}" in missing.stderr
    assert "ick init" in missing.stderr
    ick.fails(3, "log", "nope")
    ick.fails(3, "show", "ZZZZZZZZZZ")
    ick.fails(3, "log", "main~10")
    ick.fails(3, "ls", "main", "/nope")
    ick.fails(3, "reflog", "nope")
    ick.fails(3, "reset", "nope", "main", "--yes")
    ick.fails(3, "tag", "delete", "nope")


def test_3_no_repository_here_says_how_to_point_at_one(
    bare_ick: Ick, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = bare_ick.fails(3, "log")
    assert f"no ick repository in {tmp_path} or any parent directory" in result.stderr
    assert "-R/--repo" in result.stderr
    assert "ICK_REPO" in result.stderr
    assert "ick init" in result.stderr


def test_4_conflict(ick: Ick) -> None:
    ick.fails(4, "branch", "create", "main")
    ick.fails(4, "tag", "create", "v1.0")


def test_5_integrity(ick: Ick, sample: Sample) -> None:
    snapshot = sample.path / "snapshots" / sample.ids["day4"]
    data = bytearray(snapshot.read_bytes())
    data[-8:] = bytes(8)
    snapshot.write_bytes(bytes(data))
    result = ick.fails(5, "log")
    assert "corrupt" in result.stderr
    assert "damaged" in result.stderr


def test_130_interrupted(ick: Ick, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(ic.Repository, "ancestry", interrupted)
    result = ick.fails(130, "log")
    assert result.stderr == "ick: error: interrupted\n"


def test_json_errors_are_one_json_line_on_stderr(ick: Ick) -> None:
    result = ick("branch", "delete", "nope", "--json")
    assert result.exit_code == 3
    assert result.stdout == ""
    doc = json.loads(result.stderr)
    assert doc == {
        "error": {
            "exit_code": 3,
            "type": "BranchNotFoundError",
            "message": "branch 'nope' not found",
            "hint": "`ick branch` lists the branches",
        }
    }


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ic.RepositoryNotFoundError("/x"), 3),
        (ic.BranchNotFoundError("b"), 3),
        (ic.TagNotFoundError("t"), 3),
        (ic.SnapshotNotFoundError("S"), 3),
        (ic.RevisionNotFoundError("r"), 3),
        (ic.NodeNotFoundError("/p"), 3),
        (ic.AmbiguousRefError("ab", ["branch ab", "snapshot ABCD"]), 2),
        (ic.InvalidNameError("branch", "a/b", "no slashes"), 2),
        (ic.ConfigError("bad"), 2),
        (ic.ConfigChangedError("saved meanwhile"), 4),
        (ic.ImportSourceNotFoundError("/src", "no such file or directory"), 3),
        (ic.ImportSourceError("/src", "no zarr.json found in it"), 1),
        (ic.ConflictError("main", "A", "B"), 4),
        (ic.BranchAlreadyExistsError("b"), 4),
        (ic.TagAlreadyExistsError("t", deleted=True), 4),
        (ic.RepositoryAlreadyExistsError("/x"), 4),
        (ic.CorruptObjectError("snapshots/X", "bad checksum"), 5),
        (ic.UnsupportedFormatError("snapshots/X", "version 9"), 1),
        (ic.ProtectedBranchError("main", "delete"), 1),
        (ic.IcechunkError("other"), 1),
        (errors.NoRepositoryError(Path("/")), 3),
        (errors.NotFoundError("x"), 3),
        (ValueError("bug"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_classify(exc: BaseException, code: int) -> None:
    failure = errors.classify(exc)
    assert failure.exit_code == code
    assert "\n" not in failure.line()
    assert failure.line().startswith("ick: error: ")


def test_conflict_message_names_the_branch_and_both_snapshots() -> None:
    line = errors.classify(ic.ConflictError("main", "AAAA", "BBBB")).line()
    assert "'main' moved meanwhile" in line
    assert "AAAA" in line and "BBBB" in line
    assert "session" not in line  # library wording about sessions does not apply here


def test_format_errors_get_the_hint_that_fits() -> None:
    # A pre-release format needs the old ick, not a newer one; a misnamed object a restore.
    from icechunk_lib.errors import ObjectIdMismatchError, RetiredFormatError

    retired = errors.classify(RetiredFormatError("config", "format version 1"))
    assert retired.exit_code == 1 and "upgrade" not in (retired.hint or "")
    misnamed = errors.classify(ObjectIdMismatchError("snapshots/A", "snapshot", "A", "B"))
    assert misnamed.exit_code == 5 and "backup" in (misnamed.hint or "")
