"""Credentials the server refuses: a wrong secret, an unknown key, and an identity that may
read but not write. Each gets a clear error naming the place and the credentials to check,
never a secret, and nothing in the repository changes. SeaweedFS checks credentials (its
identities file in tests/s3_servers.py, on a server of its own); the other test servers
accept any keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import s3_servers
import zarr
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.errors import StorageError


def _storage(server: S3Server, prefix: str, key: str, secret: str) -> ic.Storage:
    kwargs = dict(server.storage_kwargs(), access_key_id=key, secret_access_key=secret)
    return ic.s3_storage(bucket=s3_servers.BUCKET, prefix=prefix, **kwargs)


@pytest.fixture
def prefix(seaweedfs_auth_server: S3Server) -> str:
    """A repository with one committed array, made with the full-access keys."""
    prefix = seaweedfs_auth_server.fresh_prefix()
    repo = ic.Repository.create(
        _storage(seaweedfs_auth_server, prefix, s3_servers.ACCESS_KEY, s3_servers.SECRET_KEY)
    )
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 7
    session.commit("first")
    return prefix


@pytest.mark.parametrize(
    ("key", "secret"),
    [(s3_servers.ACCESS_KEY, "a-wrong-secret-do-not-leak"), ("nobody", "unknown-secret-x")],
    ids=["wrong-secret", "unknown-key"],
)
def test_refused_credentials_are_named_without_the_secret(
    seaweedfs_auth_server: S3Server, prefix: str, key: str, secret: str
) -> None:
    with pytest.raises(StorageError) as caught:
        ic.Repository.open(_storage(seaweedfs_auth_server, prefix, key, secret))
    message = str(caught.value)
    assert "access denied" in message
    assert f"s3://{s3_servers.BUCKET}/{prefix}" in message
    assert "credentials" in message
    assert secret not in message + repr(caught.value)
    assert s3_servers.SECRET_KEY not in message


def test_a_reader_reads_and_is_refused_writing_with_nothing_changed(
    seaweedfs_auth_server: S3Server, prefix: str
) -> None:
    reader = ic.Repository.open(
        _storage(seaweedfs_auth_server, prefix, s3_servers.READER_KEY, s3_servers.READER_SECRET)
    )
    tip = reader.lookup_branch("main")
    store = reader.readonly_session("main").store
    assert np.array_equal(zarr.open_array(store, path="a", mode="r")[:], np.full(4, 7))
    session = reader.writable_session("main")
    zarr.open_array(session.store, path="a")[:2] = 1
    with pytest.raises(StorageError) as caught:
        session.commit("not allowed")
    assert "access denied" in str(caught.value)
    assert s3_servers.READER_SECRET not in str(caught.value)
    for denied in (lambda: reader.create_tag("v1", tip), lambda: reader.create_branch("b", tip)):
        with pytest.raises(StorageError, match="access denied"):
            denied()
    writer = ic.Repository.open(
        _storage(seaweedfs_auth_server, prefix, s3_servers.ACCESS_KEY, s3_servers.SECRET_KEY)
    )
    assert writer.lookup_branch("main") == tip
    assert writer.list_tags() == set()
    assert writer.list_branches() == {"main"}


def test_cli_access_denied_exits_1_and_shows_no_secret(
    seaweedfs_auth_server: S3Server, prefix: str
) -> None:
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=s3_servers.READER_KEY,
        AWS_SECRET_ACCESS_KEY=s3_servers.READER_SECRET,
        AWS_ENDPOINT_URL=seaweedfs_auth_server.endpoint_url,
        AWS_REGION=s3_servers.REGION,
        ICK_DEBUG="1",
    )
    url = f"s3://{s3_servers.BUCKET}/{prefix}"
    ick = [str(Path(sys.executable).with_name("ick")), "-R", url]
    shown = subprocess.run([*ick, "log"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "first" in shown.stdout
    denied = subprocess.run(
        [*ick, "tag", "create", "v1", "main"], env=env, capture_output=True, text=True
    )
    assert denied.returncode == 1, denied.stderr
    assert "access denied" in denied.stderr
    assert s3_servers.READER_SECRET not in denied.stdout + denied.stderr
    wrong = dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-do-not-leak")
    refused = subprocess.run([*ick, "log"], env=wrong, capture_output=True, text=True)
    assert refused.returncode == 1, refused.stderr
    assert "wrong-secret-do-not-leak" not in refused.stdout + refused.stderr
