"""Ctrl-C during ``ick commit --from``: one line, exit code 130, and the truth about the commit.

Real processes get a real SIGINT at several moments of the command, from the import to just
after the commit point; whatever the moment, the command ends cleanly and the repository is at
the commit the output names.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CLEAN_ENV

ICK = Path(sys.executable).with_name("ick")
NOISE = ("Task was destroyed", "Event loop is closed", "Traceback", "Exception ignored")

pytestmark = pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if CLEAN_ENV.get(k, "") is not None}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 chunks of 2 KiB (too large to inline): time to interrupt the import midway."""
    import numpy as np
    import zarr

    path = tmp_path_factory.mktemp("interrupt") / "source.zarr"
    root = zarr.open_group(str(path), mode="w")
    for name in ("a", "b", "c"):
        array = root.create_array(name, shape=(500, 256), chunks=(1, 256), dtype="f8")
        array[:] = np.random.default_rng(0).random((500, 256))
    return path


def tip(repo: Path) -> str:
    """The tip of main, after checking that its history and content read back."""
    import icechunk_lib as ic

    repository = ic.Repository.open(ic.local_filesystem_storage(repo))
    snapshot = repository.lookup_branch("main")
    assert next(repository.ancestry(snapshot_id=snapshot)).id == snapshot
    repository.readonly_session(snapshot_id=snapshot).list_nodes("/", stats=True)
    return snapshot


Trigger = Callable[[Path], bool]
"""A moment of the command, seen in the repository's files."""


def importing(repo: Path) -> bool:
    return (repo / "chunks").exists()


def committing(repo: Path) -> bool:
    return (repo / "manifests").exists()


def snapshot_written(repo: Path) -> bool:
    return len(list((repo / "snapshots").iterdir())) > 1


def log_written(repo: Path) -> bool:
    return (repo / "transactions").exists()  # the last write before the commit point


def branch_moved_from(ref: bytes) -> Trigger:
    """After the commit point: main's ref file no longer holds ``ref``."""

    def moved(repo: Path) -> bool:
        return (repo / "refs" / "branch" / "main" / "ref").read_bytes() != ref

    return moved


def run_and_interrupt(
    runs: list[tuple[Path, Trigger, float | None]], argv: list[str]
) -> list[tuple[subprocess.Popen[str], float]]:
    """Start ``ick ARGV -R repo`` for every run at once; send each SIGINT ``delay`` seconds
    after its trigger (None: never). Returns the processes and, for each, the time from its
    trigger to its end (for those not interrupted)."""
    procs = [
        subprocess.Popen(
            [str(ICK), *argv, "-R", str(repo)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        for repo, _, _ in runs
    ]
    seen: list[float | None] = [None] * len(runs)
    took = [0.0] * len(runs)
    pending = set(range(len(runs)))
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        for i in list(pending):
            repo, trigger, delay = runs[i]
            if seen[i] is None and trigger(repo):
                seen[i] = now
            start = seen[i]
            if procs[i].poll() is not None:
                took[i] = now - (start or now)
                pending.discard(i)
            elif start is not None and delay is not None and now - start >= delay:
                procs[i].send_signal(signal.SIGINT)
                pending.discard(i)
        time.sleep(0.001)
    return list(zip(procs, took, strict=True))


def test_interrupting_commit_from_ends_cleanly_and_tells_the_truth(
    big_source: Path, tmp_path: Path
) -> None:
    template = tmp_path / "template"
    subprocess.run([str(ICK), "init", str(template)], check=True, capture_output=True)
    before = tip(template)

    # How long the import takes here, to spread interrupts over it; then interrupts around
    # the commit point: as the commit starts, with its snapshot and its transaction log
    # written (just before the branch moves), and once the branch moved.
    whole = tmp_path / "whole"
    shutil.copytree(template, whole)
    argv = ["commit", "-m", "import", "--from", str(big_source)]
    [(whole_run, duration)] = run_and_interrupt([(whole, importing, None)], argv)
    assert whole_run.communicate(timeout=60)[1] == ""
    assert whole_run.returncode == 0

    moments: list[tuple[Trigger, float]] = [
        (importing, 0.0),
        (importing, duration * 0.3),
        (importing, duration * 0.6),
        (committing, 0.0),
        (snapshot_written, 0.0),
        (log_written, 0.0),
        (branch_moved_from((template / "refs" / "branch" / "main" / "ref").read_bytes()), 0.0),
    ]
    runs = []
    for i, (trigger, delay) in enumerate(moments):
        repo = tmp_path / f"r{i}"
        shutil.copytree(template, repo)
        runs.append((repo, trigger, delay))
    results = run_and_interrupt(runs, argv)

    outcomes = []
    for (repo, _, _), (proc, _) in zip(runs, results, strict=True):
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode in (0, 130), (proc.returncode, stdout, stderr)
        for noise in NOISE:
            assert noise not in stderr, stderr
        now = tip(repo)
        if proc.returncode == 130:
            assert stderr.count("\n") == 1, stderr
            assert stderr.startswith("ick: error: interrupted")
        if "Committed" in stdout:
            committed = stdout.split()[1]
            assert now == committed, (stdout, stderr)
            assert f"committing {committed}" in stderr or proc.returncode == 0, stderr
        else:
            assert "nothing was committed" in stderr, stderr
            assert now == before, (stdout, stderr)
        outcomes.append("committed" if now != before else "not committed")
    assert "not committed" in outcomes  # the interrupts did land during the import


@pytest.mark.parametrize("module", ["typer", "icechunk_cli.errors", "icechunk_cli.main"])
def test_ctrl_c_while_the_app_is_still_loading_is_one_line(module: str) -> None:
    """The console script's entry point catches an interrupt during the app's own imports."""
    from icechunk_cli import entry, errors

    assert entry.EXIT_INTERRUPTED == errors.EXIT_INTERRUPTED
    code = (
        "import sys\n"
        "class Interrupting:\n"
        "    def find_spec(self, name, *args):\n"
        f"        if name == {module!r}:\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupting())\n"
        "from icechunk_cli.entry import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--version"],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "ick: error: interrupted\n"
    assert done.stdout == ""


_LATE_INTERRUPTS = {
    # inside the held block, once the outcome is reported: the hold absorbs it
    "after the report": (
        "original = commit_module.mark_outcome_reported\n"
        "def late():\n"
        "    original()\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "commit_module.mark_outcome_reported = late\n"
    ),
    # once the hold is lifted, on the way out of the command: a real KeyboardInterrupt
    "after the hold": (
        "held = commit_module._HeldInterrupts\n"
        "original = held.__exit__\n"
        "def late(self, *exc):\n"
        "    original(self, *exc)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "held.__exit__ = late\n"
    ),
}


@pytest.mark.parametrize("moment", sorted(_LATE_INTERRUPTS))
def test_ctrl_c_after_the_commit_is_reported_leaves_exit_code_0(
    big_source: Path, tmp_path: Path, moment: str
) -> None:
    """A Ctrl-C that lands once "Committed ..." is printed, on the way out of the command, does
    not turn a landed and reported commit into exit code 130 (a pipeline would take it for a
    failure). The process sends itself the SIGINT at that exact moment."""
    repo = tmp_path / "repo"
    subprocess.run([str(ICK), "init", str(repo)], check=True, capture_output=True)
    code = (
        "import os, signal\n"
        "from icechunk_cli.commands import commit as commit_module\n"
        + _LATE_INTERRUPTS[moment]
        + "from icechunk_cli.entry import main\n"
        "main()\n"
    )
    argv = ["commit", "-m", "m", "--from", str(big_source), "-R", str(repo)]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.startswith("Committed "), (done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert tip(repo) == done.stdout.split()[1]


_COMMAND_INTERRUPTS = {
    # right after the command's function returned and its return was noted
    "as it returns": (
        "from icechunk_cli import render\n"
        "original = render.mark_outcome_reported\n"
        "def late():\n"
        "    original()\n"
        "    open(os.environ['ICK_TEST_MARK'], 'w').close()  # the moment came\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)  # the interrupt ends this\n"
        "render.mark_outcome_reported = late\n"
    ),
    # as the command's function starts, after its group's own function ran
    "as it starts": (
        "from icechunk_cli.commands import tag\n"
        "info = next(c for c in tag.app.registered_commands if c.name == 'create')\n"
        "original = info.callback\n"
        "@functools.wraps(original)\n"
        "def early(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)  # the interrupt ends this\n"
        "info.callback = early\n"
    ),
}


@pytest.mark.parametrize("moment", sorted(_COMMAND_INTERRUPTS))
def test_ctrl_c_after_any_command_returned_leaves_exit_code_0(tmp_path: Path, moment: str) -> None:
    """``ick tag create`` did its work and printed it; a Ctrl-C that lands once its function
    returned ends with exit code 0, not 130. One that lands as it starts (after its group's
    own function ran) is an interrupt: 130, and no tag."""
    repo = tmp_path / "repo"
    subprocess.run([str(ICK), "init", str(repo)], check=True, capture_output=True)
    code = (
        "import functools, os, signal, time\n"
        + _COMMAND_INTERRUPTS[moment]
        + "from icechunk_cli.entry import main\n"
        "main()\n"
    )
    mark = tmp_path / "interrupted-after-return"
    done = subprocess.run(
        [sys.executable, "-c", code, "tag", "create", "v1", "-R", str(repo)],
        env={**environment(), "ICK_TEST_MARK": str(mark)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    import icechunk_lib as ic

    repository = ic.Repository.open(ic.local_filesystem_storage(repo))
    if moment == "as it starts":
        assert done.returncode == 130, (done.stdout, done.stderr)
        assert done.stderr == "ick: error: interrupted\n"
        assert repository.list_tags() == set()
        return
    assert mark.exists()  # the interrupt was sent once the function had returned
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stderr == ""
    assert "v1" in done.stdout
    assert repository.lookup_tag("v1") == repository.lookup_branch("main")
