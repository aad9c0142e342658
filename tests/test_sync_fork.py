"""A process forked after ick ran a blocking call keeps working: the child runs its own loop
(the parent's loop thread does not exist there), and the parent's loop is left untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Before zarr is imported, blocking calls run on ick's private loop (icechunk_lib/_sync.py);
# this process has imported zarr, so the check runs in a fresh interpreter.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import icechunk_lib as ic

    assert "zarr" not in sys.modules
    storage = ic.local_filesystem_storage(sys.argv[1])
    repo = ic.Repository.create(storage)
    repo.create_branch("dev", repo.lookup_branch("main"))  # the private loop runs now
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # a child that hangs ends here, and says so by its status
        child = ic.Repository.open(ic.local_filesystem_storage(sys.argv[1]))
        child.create_branch("from-child", child.lookup_branch("main"))
        print("child sees", sorted(child.list_branches()), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    print("parent sees", sorted(repo.list_branches()), flush=True)
    """
)


@pytest.mark.slow
def test_a_forked_child_runs_blocking_calls_and_the_parent_still_does(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "repo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "child sees ['dev', 'from-child', 'main']",
        "child exit 0",
        "parent sees ['dev', 'from-child', 'main']",
    ], result.stderr
