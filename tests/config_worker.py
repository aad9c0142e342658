"""Worker for ``test_config_races``: one process running ``ick config set`` in lockstep.

It lives in its own module so ``multiprocessing`` "spawn" children can import it by name.
"""

from __future__ import annotations

import contextlib
import io
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

__all__ = ["run_ick", "set_worker"]


def run_ick(*args: str) -> int:
    """Run the ``ick`` command line in this process; return its exit code."""
    from icechunk_cli.main import app

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            app(list(args), prog_name="ick")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def set_worker(
    root: str, key: str, values: list[str], barrier: Barrier, results: Queue[int]
) -> None:
    """For each value: wait for the start, ``ick config set KEY VALUE``, report, wait."""
    run_ick("config", "show", "-R", root)  # warm the imports so the runs start together
    from threading import BrokenBarrierError

    try:
        for value in values:
            barrier.wait()
            results.put(run_ick("config", "set", key, value, "-R", root))
            barrier.wait()
    except BrokenBarrierError:
        return  # the test failed and stopped the trials
