"""SIGKILL inside a ref or config change: the change happened or not, and nothing is stuck.

``ref_crash_worker.py`` stops at each file operation the change makes (publishing rename or
link, unlink, taking the key's ``flock``) and is killed there. After every kill the
repository opens, the ref is exactly before or after, the leftovers are hidden, the killed
process's lock is free (the kernel drops a ``flock`` with its holder) and the change can be
made again.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import zarr
from ref_crash_worker import OPS

import icechunk_lib as ic

WORKER = str(Path(__file__).with_name("ref_crash_worker.py"))
TIMEOUT = 60


def _state(repo: ic.Repository) -> tuple[object, ...]:
    branches = {name: repo.lookup_branch(name) for name in repo.list_branches()}
    tags = {name: repo.lookup_tag(name) for name in repo.list_tags()}
    return branches, tags, repo.config.compression.level


def _template(path: Path) -> tuple[str, str]:
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    first = repo.lookup_branch("main")
    session = repo.writable_session("main")
    zarr.group(store=session.store, attributes={"k": 1})
    second = session.commit("second")
    repo.create_branch("old", first)
    repo.create_tag("v1", first)
    return first, second


def _run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    try:
        return proc.stdout.readline().strip()
    finally:
        watchdog.cancel()


@pytest.mark.slow
@pytest.mark.parametrize("op", list(OPS))
def test_killed_at_every_file_operation_of_a_ref_change(tmp_path: Path, op: str) -> None:
    template = tmp_path / "template"
    _template(template)
    before = _state(ic.Repository.open(ic.local_filesystem_storage(template)))
    done = tmp_path / "done"
    shutil.copytree(template, done)
    counted = _run(str(done), op, "-1")
    out, err = counted.communicate(timeout=TIMEOUT)
    assert counted.returncode == 0, err
    count = int(out.split()[1])
    assert count >= 1
    after = _state(ic.Repository.open(ic.local_filesystem_storage(done)))
    assert after != before

    for index in range(count):
        path = tmp_path / f"repo{index}"
        shutil.copytree(template, path)
        proc = _run(str(path), op, str(index))
        line = _line(proc)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=TIMEOUT)
        assert line.startswith(f"paused {index} "), (line, err)
        assert proc.returncode == -signal.SIGKILL

        storage = ic.local_filesystem_storage(path)
        repo = ic.Repository.open(storage)
        assert _state(repo) in (before, after), line
        listed = [info.key for info in _list(storage)]
        assert not any(".ick-" in key for key in listed)
        # The same change again, in another process: no lock is left held.
        again = _run(str(path), op, "-1")
        _, err = again.communicate(timeout=TIMEOUT)
        if _state(ic.Repository.open(storage)) != after:
            pytest.fail(f"after a kill at {line!r} the change could not be made again: {err}")
        assert again.returncode == 0 or "already exists" in err or "not found" in err, err


def _list(storage: ic.Storage) -> list[ic.storage.ObjectInfo]:
    import asyncio

    async def collect() -> list[ic.storage.ObjectInfo]:
        return [info async for info in storage.list("")]

    return asyncio.run(collect())
