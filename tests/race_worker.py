"""Worker for ``test_concurrency``: one process committing to a shared local repository.

It lives in its own module so ``multiprocessing`` "spawn" children can import it by name.
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np
import zarr

import icechunk_lib as ic

__all__ = [
    "ROW",
    "SENTINEL",
    "cell_value",
    "commit_worker",
    "message",
    "row_value",
    "write_commit",
]

ROW = 80  # float64 elements per "rows" chunk: 640 bytes, above the inline threshold
MAX_TRIES = 2_000
# Row 0 of both arrays holds one chunk written at setup (checked at the end as a sentinel) and
# process p writes row p + 1.
SENTINEL = 7


def message(proc: int, commit: int) -> str:
    return f"proc {proc} commit {commit}"


def cell_value(proc: int, commit: int) -> int:
    return 1_000 * (proc + 1) + commit


def row_value(proc: int, commit: int) -> np.ndarray[Any, Any]:
    return cell_value(proc, commit) + np.arange(ROW, dtype="f8") / ROW


def write_commit(session: ic.Session, proc: int, commit: int) -> None:
    """Write commit ``commit`` of process ``proc``: an inline cell and a native chunk."""
    store = session.store
    zarr.open_array(store, path="cells", mode="r+")[proc + 1, commit] = cell_value(proc, commit)
    zarr.open_array(store, path="rows", mode="r+")[proc + 1, commit] = row_value(proc, commit)


def commit_worker(
    path: str | ic.Storage, proc: int, commits: int, mode: str, barrier: Any, results: Any
) -> None:
    """Make ``commits`` commits on main, retrying each conflict until it lands.

    ``mode="reopen"`` redoes the write in a new session after a conflict; ``mode="rebase"``
    rebases the same session with ``ConflictDetector`` and commits again. Puts
    ``(proc, [snapshot ids], conflicts)`` or ``(proc, None, traceback)`` on ``results``.
    """
    try:
        # A local path, or a pickled storage (S3: credentials from the environment).
        storage = path if isinstance(path, ic.Storage) else ic.local_filesystem_storage(path)
        repo = ic.Repository.open(storage)
        barrier.wait()
        landed: list[str] = []
        conflicts = 0
        for commit in range(commits):
            session = repo.writable_session("main")
            write_commit(session, proc, commit)
            for _ in range(MAX_TRIES):
                try:
                    landed.append(session.commit(message(proc, commit)))
                    break
                except ic.ConflictError as exc:
                    if isinstance(exc, ic.RebaseFailedError):
                        raise
                    conflicts += 1
                    if mode == "reopen":
                        session = repo.writable_session("main")
                        write_commit(session, proc, commit)
                    else:
                        session.rebase(ic.ConflictDetector())
            else:
                raise RuntimeError(f"{message(proc, commit)} did not land in {MAX_TRIES} tries")
        results.put((proc, landed, conflicts))
    except BaseException:
        results.put((proc, None, traceback.format_exc()))
        raise
