"""Worker for ``test_crash_refs``: one ref or config change, stopped at one file operation.

Run as ``python ref_crash_worker.py PATH OP INDEX [resume]``. The file operations the local backend
publishes with (``os.replace``, ``os.link``, ``os.unlink``) and its lock (``fcntl.flock``)
are counted; at operation ``INDEX`` the worker prints ``paused <index> <name>`` and sleeps
until the test kills it, with the temporary file written and the key's lock held where the
operation has them; with ``resume`` it goes on when a line arrives on stdin instead. With
``INDEX`` -1 it runs the change and prints ``calls <n>``.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import icechunk_lib as ic

OPS: dict[str, Callable[[ic.Repository, str], object]] = {
    "create_branch": lambda repo, sid: repo.create_branch("dev", sid),
    "reset_branch": lambda repo, sid: repo.reset_branch("old", sid),
    "delete_branch": lambda repo, sid: repo.delete_branch("old"),
    "create_tag": lambda repo, sid: repo.create_tag("v2", sid),
    "delete_tag": lambda repo, sid: repo.delete_tag("v1"),
    "set_config": lambda repo, sid: repo.set_config_value("compression.level", "7"),
}


def _say(line: str) -> None:
    print(line, flush=True)


def main(path: str, op: str, index: int, resume: bool = False) -> None:
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    target = repo.lookup_branch("main")
    calls = 0

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            if calls == index:
                _say(f"paused {index} {name}")
                if resume:
                    sys.stdin.readline()
                else:
                    time.sleep(600)  # the test kills us long before this ends
            calls += 1
            return real(*args, **kwargs)

        return wrapper

    os.replace = counted("replace", os.replace)  # type: ignore[assignment]
    os.link = counted("link", os.link)  # type: ignore[assignment]
    os.unlink = counted("unlink", os.unlink)  # type: ignore[assignment]
    fcntl.flock = counted("flock", fcntl.flock)  # type: ignore[assignment]
    OPS[op](repo, target)
    _say(f"calls {calls}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["resume"])
