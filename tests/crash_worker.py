"""Worker script for ``test_crash``: commits to a local repository until it is killed.

Run as ``python crash_worker.py MODE PATH TAG [ARGS]``; every line it prints is flushed so the
test can follow it:

* ``loop PATH TAG MAX``: print ``ready``, then commit ``MAX`` times, printing
  ``committed <k> <snapshot id>`` after each commit returns.
* ``count PATH TAG``: make one commit through ``FaultyStorage`` and print ``calls <n>``.
* ``pause PATH TAG INDEX WHEN``: make one commit, stopping forever at storage call ``INDEX``
  of the commit (``WHEN`` is ``before`` or ``after`` the call does its work) after printing
  ``paused <index> <method> <key>``; prints ``done`` if the commit has fewer calls.

Each commit ``k`` of worker ``TAG`` writes one value to every element of two arrays and to a
group attribute, so a snapshot is consistent only if all three agree with its message.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import zarr
from faulty_storage import Call, FaultyStorage

import icechunk_lib as ic

__all__ = [
    "ARRAYS",
    "commit_message",
    "commit_value",
    "create_repo",
    "open_storage",
    "write_value",
]

# "x": 4 native chunks (800 bytes each); "y": 4 inline chunks.
ARRAYS: dict[str, dict[str, Any]] = {
    "x": {"shape": (4, 100), "chunks": (1, 100), "dtype": "f8", "compressors": None},
    "y": {"shape": (8,), "chunks": (2,), "dtype": "i8"},
}


def commit_message(tag: str, k: int) -> str:
    return f"{tag} {k}"


def commit_value(message: str) -> int:
    """The value every element holds in the snapshot committed with ``message``."""
    if message == "setup":
        return 0
    tag, k = message.split()
    return int(tag.lstrip("tw")) * 100_000 + int(k) + 1


def open_storage(path: str) -> ic.Storage:
    """A local path, or ``s3://bucket/prefix`` on the server at ``$ICK_TEST_S3_ENDPOINT``
    with credentials from the environment (the S3 crash test)."""
    if not path.startswith("s3://"):
        return ic.local_filesystem_storage(path)
    bucket, prefix = path.removeprefix("s3://").split("/", 1)
    return ic.s3_storage(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=os.environ["ICK_TEST_S3_ENDPOINT"],
        allow_http=True,
        force_path_style=True,
    )


def create_repo(path: str) -> ic.Repository:
    repo = ic.Repository.create(open_storage(path))
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    for name, kwargs in ARRAYS.items():
        root.create_array(name, fill_value=-1, **kwargs)
    write_value(session, 0)
    session.commit("setup")
    return repo


def write_value(session: ic.Session, value: int) -> None:
    root = zarr.open_group(session.store, mode="r+")
    for name in ARRAYS:
        arr = root[name]
        assert isinstance(arr, zarr.Array)
        arr[...] = value
    root.attrs["value"] = value


def _say(line: str) -> None:
    print(line, flush=True)


def _loop(path: str, tag: str, commits: int) -> None:
    repo = ic.Repository.open(open_storage(path))
    _say("ready")
    for k in range(commits):
        message = commit_message(tag, k)
        session = repo.writable_session("main")
        write_value(session, commit_value(message))
        _say(f"committed {k} {session.commit(message)}")


def _one_commit(path: str, tag: str, faulty: FaultyStorage) -> ic.Session:
    repo = ic.Repository.open(faulty)
    session = repo.writable_session("main")
    write_value(session, commit_value(commit_message(tag, 0)))
    return session


def _count(path: str, tag: str) -> None:
    faulty = FaultyStorage(open_storage(path))
    session = _one_commit(path, tag, faulty)
    faulty.reset()
    session.commit(commit_message(tag, 0))
    _say(f"calls {faulty.count}")


def _pause(path: str, tag: str, index: int, when: str) -> None:
    faulty = FaultyStorage(open_storage(path))
    session = _one_commit(path, tag, faulty)

    def stop_here(call: Call) -> None:
        _say(f"paused {call.index} {call.method} {call.key}")
        time.sleep(600)  # the test kills us long before this ends

    faulty.arm(index, when="after" if when == "after" else "before", on_fault=stop_here)
    session.commit(commit_message(tag, 0))
    _say("done")


def main(argv: list[str]) -> None:
    mode, path, tag, *rest = argv
    if mode == "loop":
        _loop(path, tag, int(rest[0]))
    elif mode == "count":
        _count(path, tag)
    elif mode == "pause":
        _pause(path, tag, int(rest[0]), rest[1])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
