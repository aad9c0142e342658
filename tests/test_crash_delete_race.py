"""A branch deleted while another process moves it stays deleted, or the delete waits.

The compare-and-swap of a branch reads the ref, then replaces it. A delete landing between
the two used to be undone by the replace: ``delete_branch`` returned, yet the branch was
back. Deletes now take the key's lock, so they order with a compare-and-swap.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import icechunk_lib as ic
from icechunk_lib.errors import BranchNotFoundError

WORKER = str(Path(__file__).with_name("ref_crash_worker.py"))
TIMEOUT = 60


def test_delete_during_a_compare_and_swap_is_not_undone(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    repo.create_branch("old", repo.lookup_branch("main"))
    # reset_branch("old") stops at its publishing rename, holding the ref's lock.
    worker = subprocess.Popen(
        [sys.executable, WORKER, str(path), "reset_branch", "1", "resume"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        line = worker.stdout.readline().strip()
        assert line == "paused 1 replace", worker.stderr.read() if worker.stderr else line
        outcome: list[object] = []
        deleter = threading.Thread(
            target=lambda: outcome.append(repo.delete_branch("old") or "deleted")
        )
        deleter.start()
        deleter.join(0.5)
        assert deleter.is_alive(), "the delete went ahead while the swap held the lock"
        worker.stdin.write("go\n")
        worker.stdin.flush()
        _, err = worker.communicate(timeout=TIMEOUT)
        assert worker.returncode == 0, err
        deleter.join(TIMEOUT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert outcome == ["deleted"]
    reopened = ic.Repository.open(ic.local_filesystem_storage(path))
    assert reopened.list_branches() == {"main"}
    try:
        reopened.lookup_branch("old")
    except BranchNotFoundError:
        pass
    else:
        raise AssertionError("the deleted branch came back")
