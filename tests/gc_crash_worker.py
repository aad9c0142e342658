"""Worker for ``test_gc_concurrency``: a gc that kills its own process mid-run.

Run as ``python gc_crash_worker.py PATH KILL_AT``: garbage-collects the local repository at
PATH with a cut-off of a week ago and sends itself SIGKILL when the ``KILL_AT``-th batch of
deletes has been done (no cleanup, no ``finally``: what a power cut or OOM kill leaves).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime, timedelta

import icechunk_lib as ic


def main(path: str, kill_at: int) -> None:
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    batches = 0

    def progress(phase: str, done: int, total: int) -> None:
        nonlocal batches
        if phase == "delete":
            batches += 1
            if batches == kill_at:
                print("killing", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

    repo.garbage_collect(datetime.now(UTC) - timedelta(days=7), progress=progress)
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
