"""A writer killed (SIGKILL) at every storage call of a commit on SeaweedFS: the repository
reads at its last commit and the next commit works (tests/test_crash.py on a local disk)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import s3_servers
from crash_worker import commit_message, commit_value, create_repo, write_value
from s3_servers import S3Server, s3_at
from test_crash import (
    TIMEOUT,
    WORKER,
    Spawn,
    _expect,
    _kill,
    assert_same,
    check_consistent,
    check_linear,
    observe,
)
from test_crash import spawn as spawn

import icechunk_lib as ic


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_writer_killed_at_every_storage_call_of_a_commit(
    seaweedfs_server: S3Server, spawn: Spawn, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    server = seaweedfs_server
    for name, value in (
        ("AWS_ACCESS_KEY_ID", s3_servers.ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3_servers.SECRET_KEY),
        ("AWS_DEFAULT_REGION", s3_servers.REGION),
        ("ICK_TEST_S3_ENDPOINT", server.endpoint_url),
    ):
        monkeypatch.setenv(name, value)

    def fresh() -> tuple[str, ic.Storage]:
        prefix = server.fresh_prefix()
        create_repo(f"s3://{s3_servers.BUCKET}/{prefix}")
        return f"s3://{s3_servers.BUCKET}/{prefix}", s3_at(server, prefix)

    url, _ = fresh()
    out = subprocess.run(
        [sys.executable, WORKER, "count", url, "w1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
        env=os.environ,
    ).stdout
    count = int(out.split()[1])
    assert count >= 5

    for index in range(count):
        url, storage = fresh()
        before = observe(storage)
        proc = spawn("pause", url, "w1", str(index), when)
        _expect(proc, f"paused {index} ")
        _, err = _kill(proc)
        assert proc.returncode == -9, err
        repo = ic.Repository.open(storage)
        check_consistent(repo, check_linear(repo))
        after = observe(storage)
        if when == "after" and index == count - 1:
            assert after.history[1:] == before.history  # the swap happened before the kill
        else:
            assert_same(after, before)
        session = repo.writable_session("main")
        message = commit_message("t1", 0)
        write_value(session, commit_value(message))
        session.commit(message)
        check_consistent(repo, check_linear(repo))
