"""Which repository a command acts on, with the real ``ick`` executable: an explicit but
empty ``-R`` never falls back to the repository of the current directory, ``ick init`` never
creates a repository inside another one's files (nor over a file), and a deleted current
directory is named as such."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import icechunk_lib as ic

from .conftest import Sample
from .test_e2e import ICK, run

pytestmark = pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")


def _branches(repo: Path) -> list[str]:
    return sorted(ic.Repository.open(ic.local_filesystem_storage(repo)).list_branches())


@pytest.mark.parametrize("args", [["-R", ""], ["--repo="], ["-R", "  "]])
@pytest.mark.parametrize("verb", [["log"], ["branch", "delete", "experiment"]])
def test_an_empty_repo_option_is_refused_not_the_current_directory(
    sample: Sample, args: list[str], verb: list[str]
) -> None:
    """``ick -R "$UNSET" branch delete x`` must not act on the repository one stands in."""
    result = run(*args, *verb, cwd=sample.path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert "experiment" in _branches(sample.path)
    after = run(*verb, *args, "--json", cwd=sample.path)  # after the verb, and with --json
    assert after.returncode == 2
    assert json.loads(after.stderr)["error"]["exit_code"] == 2
    assert "experiment" in _branches(sample.path)


def test_an_empty_ick_repo_is_unset(sample: Sample) -> None:
    """An empty environment variable is the same as no variable, as for most programs."""
    result = run("log", "--json", cwd=sample.path, env={"ICK_REPO": ""})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["snapshots"][0]["id"] == sample.ids["day4"]


def test_init_with_an_empty_url_is_refused(tmp_path: Path) -> None:
    result = run("init", "", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "empty" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("inside", ["new", "deep/new", "refs/branch/evil", "snapshots/x"])
def test_init_inside_a_repository_is_refused(sample: Sample, inside: str) -> None:
    """A repository in another's directory mixes its files with the other's: refused, and the
    outer repository stays readable."""
    target = sample.path / inside
    before = _branches(sample.path)
    for args, cwd in ((["init", str(target)], None), (["init"], target)):
        if cwd is not None:
            cwd.mkdir(parents=True, exist_ok=True)
        result = run(*args, cwd=cwd)
        assert result.returncode == 4, (args, result.stdout, result.stderr)
        assert result.stdout == ""
        assert f"inside the repository at {sample.path}" in result.stderr
        assert result.stderr.count("\n") == 1
        assert not (target / "refs").exists()
    assert _branches(sample.path) == before
    listing = run("-R", str(sample.path), "branch", "--json")
    assert listing.returncode == 0, listing.stderr


def test_init_through_a_symlink_into_a_repository_is_refused(
    sample: Sample, tmp_path: Path
) -> None:
    link = tmp_path / "link"
    link.symlink_to(sample.path)
    result = run("init", str(link / "sub"))
    assert result.returncode == 4, result.stderr
    assert not (sample.path / "sub").exists()


def test_init_next_to_a_repository_and_nested_repositories_found_nearest_first(
    sample: Sample, tmp_path: Path
) -> None:
    """A sibling is fine; discovery picks the nearest repository at or above the directory."""
    sibling = sample.path.parent / "sibling"
    assert run("init", str(sibling)).returncode == 0
    inner = sample.path / "data" / "inner"  # made by hand, as a copy would
    inner.parent.mkdir()
    shutil.copytree(sibling, inner)
    found = run("log", "--json", cwd=inner / "snapshots")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["snapshots"][0]["message"] == "Repository initialized"
    outer = run("log", "--json", "-n", "1", cwd=sample.path / "data")
    assert json.loads(outer.stdout)["snapshots"][0]["id"] == sample.ids["day4"]


@pytest.mark.parametrize("where", ["file", "file/sub"])
def test_init_on_a_file_is_refused_naming_it(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("precious")
    result = run("init", str(tmp_path / where))
    assert result.returncode == 4, result.stderr
    assert f"{tmp_path / 'file'} is a file" in result.stderr
    assert "'.'" not in result.stderr
    assert (tmp_path / "file").read_text() == "precious"


def test_a_deleted_current_directory_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child stands in the directory while it is deleted
        os.close(read)
        try:
            os.chdir(gone)
            gone.rmdir()
            env = {k: v for k, v in os.environ.items() if k != "ICK_REPO"}
            os.dup2(write, 2)
            os.execve(str(ICK), [str(ICK), "log"], env)
        finally:
            os._exit(99)
    os.close(write)
    with os.fdopen(read) as stderr:
        message = stderr.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3, message
    assert "current directory" in message and "deleted" in message
    assert "Errno" not in message


def test_a_home_directory_of_an_unknown_user_is_a_usage_error(tmp_path: Path) -> None:
    """``~nosuchuser/repo`` cannot be expanded: a usage error naming it, not a crash."""
    where = "~ick-no-such-user/repo"
    for args in (["-R", where, "log"], ["init", where], ["commit", "-m", "x", "--from", where]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "~ick-no-such-user" in result.stderr
        assert "unexpected" not in result.stderr


def test_a_symlink_loop_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for args in (["-R", "a", "log"], ["init", "a/x"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "loop" in result.stderr.lower()
        assert "'~'" not in result.stderr


@pytest.mark.parametrize("inside", ["snapshots", "manifests", "refs/branch/main", "refs"])
def test_discovery_from_inside_the_repository_files(sample: Sample, inside: str) -> None:
    result = run("log", "-n", "1", "--json", cwd=sample.path / inside)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["snapshots"][0]["id"] == sample.ids["day4"]
    explicit = run("-R", str(sample.path / inside), "log", cwd=sample.path)  # -R is exact
    assert explicit.returncode == 3, explicit.stderr
