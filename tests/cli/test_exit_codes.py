"""Every documented exit code, and the one-line errors that come with them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import icechunk_lib as ic
import icechunk_lib.errors as ic_errors
from icechunk_cli import errors

from .conftest import Ick, Sample
from .test_e2e import ICK, run


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
    ick.fails(2, "log", "-R", "nosuchscheme://example.com/repo", repo=False)
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


# Every exception class the library and the command line export, built with its real
# constructor arguments, and the exit code docs/cli.md documents for it. A class added
# without an entry here fails test_every_exported_error_has_an_expected_exit_code.
_CONFLICT = ic.Conflict(ic.ConflictType.ChunkDoubleUpdate, "/a", [[0, 1]])
EVERY_ERROR: list[tuple[BaseException, int]] = [
    # no category: 1
    (ic.IcechunkError("something failed"), 1),
    (ic.StorageError("the disk is full"), 1),
    (ic.ReadOnlyStorageError("http://example.com/r lacks compare-and-swap; it can be read"), 1),
    (ic.ImportSourceError("/src", "the store cannot list its keys"), 1),
    (ic_errors.RefError("a ref problem"), 1),
    (ic.ProtectedBranchError("main", "delete"), 1),
    (ic.SessionError("bad commit metadata"), 1),
    (ic.ReadOnlySessionError("commit"), 1),
    (ic.NoChangesToCommitError(), 1),
    (ic_errors.ImportWouldDeleteError("/src", "/", ["/a"]), 1),
    (ic.VirtualChunkError("a virtual chunk cannot be read"), 1),
    (ic.VirtualContainerNotAuthorizedError("s3://b/x.nc", "s3://b/"), 1),
    (ic.VirtualSourceError("s3://b/x.nc", "HTTP 500 InternalError"), 1),
    # a warning, raised only where warnings are errors (python -W error): 1
    (ic.UnsafeWritesWarning("writing to s3://b/r without compare-and-swap"), 1),
    # unsupported: 1
    (ic.UnsupportedError("written by a newer ick"), 1),
    (ic.UnsupportedFormatError("snapshots/X", "format version 9"), 1),
    (ic_errors.RetiredFormatError("snapshots/X", "format version 1"), 1),
    (ic.VirtualStoreUnsupportedError("gs://b/x.nc", "gs://b/", "ObjectStoreConfig.Gcs"), 1),
    # invalid input: 2
    (ic.InvalidInputError("bad argument"), 2),
    (ic_errors.InvalidKeyError("a/../b", "empty, '.' and '..' segments are not allowed"), 2),
    (ic_errors.InvalidStorageURLError("ftp://example.com/r", "unsupported scheme"), 2),
    (ic.InvalidImportSourceError("/src", "bad zarr.json", key="zarr.json", field="shape"), 2),
    (ic.AmbiguousRefError("ab", ["branch ab", "snapshot ABCD"]), 2),
    (ic.InvalidNameError("branch", "a/b", "no slashes"), 2),
    (ic.ConfigError("unknown config key 'x'"), 2),
    (ic.InvalidVirtualContainerError("s3://b", "must end in '/'"), 2),
    (ic.InvalidVirtualLocationError("file:///d/../x", "has a '..' segment"), 2),
    # not found: 3
    (ic.NotFoundError("no such thing"), 3),
    (ic_errors.ObjectNotFoundError("chunks/X", "/repo"), 3),
    (ic_errors.LocationNotFoundError("/repo"), 3),
    (ic.ImportSourceNotFoundError("/src", "no such file or directory"), 3),
    (ic.RepositoryNotFoundError("/x"), 3),
    (ic.RefNotFoundError("r"), 3),
    (ic.BranchNotFoundError("b"), 3),
    (ic.TagNotFoundError("t"), 3),
    (ic.RevisionNotFoundError("main~9", "main has 3 ancestors"), 3),
    (ic.SnapshotNotFoundError("S"), 3),
    (ic.NodeNotFoundError("/p"), 3),
    (ic.VirtualContainerNotFoundError("s3://other/x.nc", ["s3://b/"]), 3),
    (ic.VirtualSourceNotFoundError("s3://b/x.nc"), 3),
    # already exists: 4
    (ic.AlreadyExistsError("taken"), 4),
    (ic_errors.ObjectExistsError("refs/branch/main/ref"), 4),
    (ic.RepositoryAlreadyExistsError("/x"), 4),
    (ic.BranchAlreadyExistsError("b"), 4),
    (ic.TagAlreadyExistsError("t", deleted=True), 4),
    # concurrent update: 4
    (ic.ConcurrentUpdateError("changed meanwhile"), 4),
    (ic_errors.PreconditionFailedError("config"), 4),
    (ic.ConflictError("main", "A", "B"), 4),
    (ic.RebaseFailedError("S", [_CONFLICT], branch="main", expected_parent="A"), 4),
    (ic.ConfigChangedError("saved meanwhile"), 4),
    (ic.RefsKeptMovingError(8), 4),
    # integrity: 5
    (ic.IntegrityError("damaged"), 5),
    (ic.CorruptObjectError("snapshots/X", "bad checksum"), 5),
    (ic_errors.ObjectIdMismatchError("snapshots/X", "snapshot", "X", "Y"), 5),
    (ic_errors.MissingObjectError("manifests/X", "/repo"), 5),
    (ic.VirtualSourceChangedError("s3://b/x.nc", "its ETag differs"), 5),
    (ic.VirtualSourceTruncatedError("file:///d/x.nc", 100, 50), 5),
    # the command line's own
    (errors.CliError("no such file: out.json"), 1),
    (errors.PathNotFoundError("no such directory: /src"), 3),
    (errors.NoRepositoryError(Path("/")), 3),
    (errors.LocationTakenError("/r is inside the repository /"), 4),
    (errors.Interrupted("interrupted; the commit landed"), 130),
]


def _exported_errors() -> set[type[BaseException]]:
    found = set()
    for module in (ic_errors, errors):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                found.add(obj)
    return found


def test_every_exported_error_has_an_expected_exit_code() -> None:
    listed = [type(exc) for exc, _ in EVERY_ERROR]
    assert len(listed) == len(set(listed)), "a class is listed twice"
    missing = _exported_errors() - set(listed)
    assert not missing, f"add these to EVERY_ERROR with their exit code: {missing}"
    assert set(listed) <= _exported_errors()


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        *EVERY_ERROR,
        (ValueError("bug"), 1),
        (FileNotFoundError(2, "No such file or directory", "out.json"), 3),
        (FileExistsError(17, "File exists", "out.json"), 4),
        (OSError(28, "No space left on device", "out.json"), 1),
        (KeyboardInterrupt(), 130),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_classify(exc: BaseException, code: int) -> None:
    failure = errors.classify(exc)
    assert failure.exit_code == code
    assert failure.kind == type(exc).__name__
    assert "\n" not in failure.line()
    assert failure.line().startswith("ick: error: ")


def test_each_category_has_one_documented_exit_code() -> None:
    for name, code in errors.CATEGORIES.items():
        category = getattr(ic_errors, name)
        assert getattr(ic, name) is category  # public, for ``except ic.NotFoundError``
        assert f"`{name}`" in errors.EXIT_CODES[code], (name, code)
    # Every library error is in at most one category: its exit code cannot depend on order.
    for cls in _exported_errors():
        if issubclass(cls, ic.IcechunkError):
            found = [n for n in errors.CATEGORIES if issubclass(cls, getattr(ic_errors, n))]
            assert len(found) <= 1, (cls, found)


def test_hints_survive_the_category_table() -> None:
    # Hints stay per class, the most specific one winning, and the message overrides too.
    assert errors.classify(ic.BranchNotFoundError("b")).hint == "`ick branch` lists the branches"
    assert "ick log --all" in errors.classify(ic.RevisionNotFoundError("r")).hint
    assert "backup" in errors.classify(ic_errors.MissingObjectError("chunks/X", "/r")).hint
    assert errors.classify(ic.RebaseFailedError("S", [_CONFLICT])).hint == ""
    repo = errors.classify(ic.RepositoryNotFoundError("/x"))
    assert repo.message == "no ick repository at /x" and "ick init" in repo.hint


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


# --- damage, limits and usage errors (issue 8) ---------------------------------------------------


def test_5_a_branch_tip_whose_snapshot_is_missing(ick: Ick, sample: Sample) -> None:
    (sample.path / "snapshots" / sample.ids["day4"]).unlink()
    for args in (["log"], ["show"], ["ls"], ["diff", "main"], ["log", "main~1"]):
        result = ick.fails(5, *args)
        assert f"snapshots/{sample.ids['day4']}" in result.stderr, args
        assert "damaged" in result.stderr
    ick.fails(3, "show", "0" * len(sample.ids["day4"]))  # an id nobody wrote: not found


def test_5_a_missing_parent_in_show_and_diff(ick: Ick, sample: Sample) -> None:
    (sample.path / "snapshots" / sample.ids["day3"]).unlink()
    for args in (["show", "main"], ["diff", "main"]):
        result = ick.fails(5, *args)
        assert f"snapshots/{sample.ids['day3']}" in result.stderr, args


def test_5_a_damaged_format_version_is_damage_in_one_message(ick: Ick, sample: Sample) -> None:
    snapshot = sample.path / "snapshots" / sample.ids["day4"]
    data = bytearray(snapshot.read_bytes())
    data[4] = 9  # the format version byte of the header
    snapshot.write_bytes(bytes(data))
    result = ick.fails(5, "log")
    assert "version field is damaged" in result.stderr
    assert "upgrade" not in result.stderr, result.stderr
    doc = json.loads(ick("log", "--json").stderr)
    assert doc["error"]["exit_code"] == 5


def test_1_a_newer_format_version_says_upgrade_once(ick: Ick, sample: Sample) -> None:
    import struct

    import xxhash

    snapshot = sample.path / "snapshots" / sample.ids["day4"]
    data = bytearray(snapshot.read_bytes())
    data[4:6] = struct.pack("<H", 9)  # a well-formed file of a format version 9
    data[28:36] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(data[:28] + data[36:])))
    snapshot.write_bytes(bytes(data))
    result = ick.fails(1, "log")
    assert "format version 9" in result.stderr
    assert result.stderr.count("upgrade") == 1, result.stderr
    assert "damaged" not in result.stderr


def test_a_damaged_ref_fails_only_what_needs_it(ick: Ick, sample: Sample) -> None:
    (sample.path / "refs" / "branch" / "experiment" / "ref").write_bytes(b"garbage\n")
    log = ick.ok("log", "--oneline")
    assert sample.ids["day4"] in log.stdout
    assert "experiment" in log.stderr and "damaged" in log.stderr  # a warning, once
    assert log.stderr.count("\n") == 1
    assert json.loads(ick.ok("show", "v1.1", "--json").stdout)["snapshot"]["tags"] == ["v1.1"]
    ick.ok("ls")
    ick.ok("tag")
    for args in (["log", "--all"], ["log", "experiment"], ["branch"], ["reflog", "experiment"]):
        result = ick.fails(5, *args)
        assert "refs/branch/experiment" in result.stderr, args


def test_2_counts_beyond_the_largest_integer(ick: Ick) -> None:
    for args in (["log", "-n", "9223372036854775808"], ["reflog", "-n", "99999999999999999999"]):
        result = ick(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        doc = json.loads(ick(*args, "--json").stderr)
        assert doc["error"]["exit_code"] == 2
    ick.ok("log", "-n", "9223372036854775807")


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "log", "--no-such-option"],
        ["log", "--json", "--no-such-option"],
        ["log", "--no-such-option", "--json"],
        ["--json", "frobnicate"],
        ["diff", "--json"],
        ["tag", "--json", "create"],
        ["ls", "/a", "/b", "--json"],
        ["commit", "-m", "x", "--from", ".", "--metadata", "novalue", "--json"],
    ],
    ids=" ".join,
)
def test_2_usage_errors_with_json_are_the_json_error_document(ick: Ick, args: list[str]) -> None:
    result = ick(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    doc = json.loads(result.stderr)
    assert set(doc["error"]) == {"exit_code", "type", "message", "hint"}
    assert doc["error"]["exit_code"] == 2
    assert doc["error"]["message"]


@pytest.mark.parametrize(
    ("args", "as_json"),
    [
        (["reflog", "-n", "--", "--json", "main"], True),  # "--" is -n's value, not the end
        (["log", "-n", "x", "--json"], True),
        (["log", "-R", "--json", "-n", "x"], False),  # "--json" is -R's value
        (["log", "-n", "x", "--", "--json"], False),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_usage_errors_find_json_where_click_does(ick: Ick, args: list[str], as_json: bool) -> None:
    result = ick(*args, repo=False)
    assert result.exit_code == 2, result.output
    if as_json:
        assert json.loads(result.stderr)["error"]["exit_code"] == 2
    else:
        assert not result.stderr.startswith("{")


def test_2_reset_with_json_does_not_ask(ick: Ick, sample: Sample) -> None:
    result = ick("reset", "main", "v1.0", "--json", input="y\n")
    assert result.exit_code == 2
    assert "pass --yes" in json.loads(result.stderr)["error"]["message"]
    assert "?" not in result.stderr  # no question was asked
    assert ick.json("branch")["branches"][1]["snapshot"]["id"] == sample.ids["day4"]


@pytest.mark.parametrize("name", ["--help", "-x", "-R"])
def test_hints_with_names_that_look_like_options_run_as_printed(
    ick: Ick, sample: Sample, name: str
) -> None:
    import shlex

    ick.ok("branch", "create", "--", name)
    deleted = ick.ok("branch", "delete", "--", name)
    assert name not in [b["name"] for b in ick.json("branch")["branches"]]
    hint = deleted.stderr.split("restore it with: ", 1)[1].strip()
    argv = shlex.split(hint)
    assert argv[0] == "ick"
    ick.ok(*argv[1:], repo=False)  # the hint restores the branch
    assert name in [b["name"] for b in ick.json("branch")["branches"]]

    ick.ok("reset", "--yes", "--", name, "v1.0")
    moved = ick.ok("reset", "--yes", "--", name, "main")
    undo = shlex.split(moved.stdout.split("undo with: ", 1)[1].strip())
    ick.ok(*undo[1:], repo=False)
    reflog = json.loads(ick.ok("reflog", "--json", "--", name).stdout)
    assert reflog["entries"][0]["snapshot_id"] == sample.ids["first"]


# --- the real executable: one failure per category ---------------------------------------------


def _newer_format(sample: Sample) -> None:
    """Rewrite the tip's snapshot as a well-formed file of a format version 9."""
    import struct

    import xxhash

    snapshot = sample.path / "snapshots" / sample.ids["day4"]
    data = bytearray(snapshot.read_bytes())
    data[4:6] = struct.pack("<H", 9)
    data[28:36] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(data[:28] + data[36:])))
    snapshot.write_bytes(bytes(data))


def _damaged(sample: Sample) -> None:
    snapshot = sample.path / "snapshots" / sample.ids["day4"]
    data = bytearray(snapshot.read_bytes())
    data[-8:] = bytes(8)
    snapshot.write_bytes(bytes(data))


@pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")
@pytest.mark.parametrize(
    ("args", "damage", "code", "kind"),
    [
        (["branch", "delete", "nope"], None, 3, "BranchNotFoundError"),
        (["branch", "create", "main"], None, 4, "BranchAlreadyExistsError"),
        (["tag", "create", ".hidden"], None, 2, "InvalidNameError"),
        (["config", "set", "no.such.key", "1"], None, 2, "ConfigError"),
        (["log"], _damaged, 5, "CorruptObjectError"),
        (["log"], _newer_format, 1, "UnsupportedFormatError"),
        (["branch", "delete", "main"], None, 1, "ProtectedBranchError"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else getattr(v, "__name__", str(v)),
)
def test_categories_through_the_real_executable(
    sample: Sample,
    args: list[str],
    damage: Callable[[Sample], None] | None,
    code: int,
    kind: str,
) -> None:
    if damage is not None:
        damage(sample)
    text = run(*args, "-R", str(sample.path))
    assert text.returncode == code, text.stderr
    assert text.stdout == ""
    assert text.stderr.startswith("ick: error: ") and text.stderr.count("\n") == 1
    doc = json.loads(run(*args, "-R", str(sample.path), "--json").stderr)
    assert doc["error"]["exit_code"] == code
    assert doc["error"]["type"] == kind
