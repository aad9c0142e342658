"""S3 credentials: Icechunk's helpers and rules, refreshing, and that the secret never shows
in a repr, an error, a log or a pickle (searched for, in this process and another)."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import _s3_credential_source as source
import pytest
import s3_servers
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.errors import (
    InvalidStorageURLError,
    LocationNotFoundError,
    ObjectNotFoundError,
    StorageError,
)
from icechunk_lib.storage import S3Credentials, S3StaticCredentials
from icechunk_lib.storage.s3 import S3Storage

SECRET = s3_servers.SECRET_KEY
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def storage(s3_server: S3Server) -> AsyncIterator[S3Storage]:
    made = ic.s3_storage(
        bucket=s3_servers.BUCKET, prefix=s3_server.fresh_prefix(), **s3_server.storage_kwargs()
    )
    assert isinstance(made, S3Storage)
    async with made:
        await made.put("config", b"cfg")
        yield made


# --- Icechunk's helpers ------------------------------------------------------------------


def test_s3_credentials_follows_icechunks_rules() -> None:
    assert isinstance(ic.s3_credentials(), S3Credentials.FromEnv)
    assert isinstance(ic.s3_credentials(from_env=True), S3Credentials.FromEnv)
    assert isinstance(ic.s3_credentials(anonymous=True), S3Credentials.Anonymous)
    static = ic.s3_credentials(access_key_id="id", secret_access_key="s")
    assert isinstance(static, S3Credentials.Static)
    assert static.credentials == S3StaticCredentials("id", "s")
    refreshable = ic.s3_credentials(get_credentials=source.long_lived)
    assert isinstance(refreshable, S3Credentials.Refreshable)
    assert refreshable.get_credentials is source.long_lived
    assert refreshable.current is None
    for conflicting in (
        {"anonymous": True, "access_key_id": "id", "secret_access_key": "s"},
        {"from_env": True, "access_key_id": "id", "secret_access_key": "s"},
        {"get_credentials": source.long_lived, "access_key_id": "id"},
        {"access_key_id": "id"},
    ):
        with pytest.raises(ValueError, match="Conflicting"):
            ic.s3_credentials(**conflicting)  # type: ignore[arg-type]


def test_scatter_initial_credentials_calls_now() -> None:
    before = len(source.CALLS)
    refreshable = ic.s3_refreshable_credentials(source.long_lived, scatter_initial_credentials=True)
    assert len(source.CALLS) == before + 1
    assert refreshable.current is not None


def test_get_credentials_must_pickle() -> None:
    with pytest.raises(ValueError, match="picklable"):
        ic.s3_refreshable_credentials(lambda: S3StaticCredentials("a", "b"))


def test_presets() -> None:
    r2 = ic.r2_storage(bucket="b", prefix="p", account_id="acct", from_env=True)
    assert isinstance(r2, S3Storage)
    assert r2.endpoint_url == "https://acct.r2.cloudflarestorage.com"
    assert r2.url == "s3://b/p"
    with pytest.raises(ValueError, match="account_id or endpoint_url"):
        ic.r2_storage(bucket="b")
    tigris = ic.tigris_storage(bucket="b", prefix=None)
    assert isinstance(tigris, S3Storage)
    assert tigris.endpoint_url == "https://fly.storage.tigris.dev"
    assert tigris.capabilities.safe_writes
    weak = ic.tigris_storage(bucket="b", prefix=None, use_weak_consistency=True)
    assert not weak.capabilities.safe_writes and not weak.unsafe_writes  # read-only


def test_plain_http_needs_allow_http() -> None:
    with pytest.raises(InvalidStorageURLError, match="allow_http"):
        ic.s3_storage(bucket="b", endpoint_url="http://127.0.0.1:9000")
    assert ic.s3_storage(bucket="b", endpoint_url="http://127.0.0.1:9000", allow_http=True)


# --- the secret never shows ------------------------------------------------------------------


async def test_secret_not_in_repr_str_or_pickle(storage: S3Storage) -> None:
    static = ic.s3_static_credentials(access_key_id="id", secret_access_key=SECRET)
    for shown in (repr(storage), str(storage), storage.url, repr(static), repr(static.credentials)):
        assert SECRET not in shown
    assert SECRET.encode() not in pickle.dumps(storage)
    clone = pickle.loads(pickle.dumps(storage))
    assert await clone.get("config") == b"cfg"  # same process: the live credentials
    await clone.close()


async def test_secret_not_in_errors_or_logs(
    storage: S3Storage, s3_server: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    with pytest.raises(ObjectNotFoundError) as missing:
        await storage.get("missing")
    errors.append(missing.value)
    gone = ic.s3_storage(bucket="no-such-bucket-here", prefix="p", **s3_server.storage_kwargs())
    with pytest.raises(LocationNotFoundError) as no_bucket:
        await gone.put("config", b"x")
    assert "no-such-bucket-here" in str(no_bucket.value)
    errors.append(no_bucket.value)
    await gone.close()
    for error in errors:
        assert SECRET not in str(error)
        assert SECRET not in repr(error)
        assert SECRET.encode() not in pickle.dumps(error)
    assert SECRET not in caplog.text
    assert caplog.text  # botocore did log its requests


# --- refreshing ---------------------------------------------------------------------------


async def test_refreshable_credentials_are_fetched_again_before_expiry(
    s3_server: S3Server,
) -> None:
    kwargs = s3_server.storage_kwargs()
    del kwargs["access_key_id"], kwargs["secret_access_key"]
    prefix = s3_server.fresh_prefix()
    before = len(source.CALLS)
    async with ic.s3_storage(
        bucket=s3_servers.BUCKET, prefix=prefix, get_credentials=source.long_lived, **kwargs
    ) as lasting:
        await lasting.put("a", b"1")
        await lasting.put("b", b"2")
        assert await lasting.get("a") == b"1"
    assert len(source.CALLS) == before + 1  # valid for an hour: fetched once
    before = len(source.CALLS)
    async with ic.s3_storage(
        bucket=s3_servers.BUCKET, prefix=prefix, get_credentials=source.short_lived, **kwargs
    ) as brief:
        assert await brief.get("a") == b"1"
        assert await brief.get("b") == b"2"
    assert len(source.CALLS) >= before + 2  # about to expire: fetched again


# --- pickles in another process --------------------------------------------------------------

_READ = """
import asyncio, pickle, sys
storage = pickle.loads(open(sys.argv[1], "rb").read())
async def main():
    try:
        print("DATA", (await storage.get("config")).decode())
    except Exception as exc:
        print("ERROR", type(exc).__name__, exc)
    finally:
        await storage.close()
asyncio.run(main())
"""


def _elsewhere(storage: S3Storage, tmp_path: Path, env_keys: bool) -> str:
    """Unpickle ``storage`` in a fresh process and read ``config``; its output."""
    payload = pickle.dumps(storage)
    assert SECRET.encode() not in payload
    path = tmp_path / "storage.pickle"
    path.write_bytes(payload)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PYTHONPATH=os.pathsep.join(
            [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "storage")]
        ),
        HOME=str(tmp_path),  # no ~/.aws profile
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    if env_keys:
        env.update(AWS_ACCESS_KEY_ID=s3_servers.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    done = subprocess.run(
        [sys.executable, "-c", _READ, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert not done.stderr, done.stderr
    return done.stdout


@pytest.mark.slow
async def test_static_keys_do_not_travel(storage: S3Storage, tmp_path: Path) -> None:
    without = _elsewhere(storage, tmp_path, env_keys=False)
    assert without.startswith("ERROR StorageError")
    assert "AWS_ACCESS_KEY_ID" in without
    assert "never pickled" in without
    assert SECRET not in without
    assert _elsewhere(storage, tmp_path, env_keys=True).strip() == "DATA cfg"


@pytest.mark.slow
async def test_get_credentials_travels_by_reference(s3_server: S3Server, tmp_path: Path) -> None:
    kwargs = s3_server.storage_kwargs()
    del kwargs["access_key_id"], kwargs["secret_access_key"]
    async with ic.s3_storage(
        bucket=s3_servers.BUCKET,
        prefix=s3_server.fresh_prefix(),
        get_credentials=source.long_lived,
        scatter_initial_credentials=True,  # fetched here, never pickled
        **kwargs,
    ) as storage:
        await storage.put("config", b"cfg")
        assert _elsewhere(storage, tmp_path, env_keys=False).strip() == "DATA cfg"


async def test_anonymous_requests_are_unsigned(s3_server: S3Server, storage: S3Storage) -> None:
    kwargs = s3_server.storage_kwargs()
    del kwargs["access_key_id"], kwargs["secret_access_key"]
    anonymous = ic.s3_storage(
        bucket=s3_servers.BUCKET, prefix=storage.prefix, anonymous=True, **kwargs
    )
    assert SECRET.encode() not in pickle.dumps(anonymous)
    async with anonymous:
        try:
            assert await anonymous.get("config") == b"cfg"
        except StorageError as exc:  # a server may refuse unsigned reads: said clearly
            assert "access denied" in str(exc)
