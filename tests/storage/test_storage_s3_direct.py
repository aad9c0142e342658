"""The direct request path (GET, PUT, HEAD, DELETE through aiohttp, our own SigV4) on real
servers: a SeaweedFS that checks signatures accepts ours for odd keys and refuses a wrong
secret; error replies are classified by status and code; expired tokens are refreshed once;
credentials refreshed before expiry sign the requests; nothing is left open at exit."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import _s3_credential_source as source
import pytest
import s3_servers
from s3_proxy import S3FaultProxy
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.errors import ObjectNotFoundError, StorageError
from icechunk_lib.storage._s3_errors import Failure, error_code
from icechunk_lib.storage._s3_requests import Failed
from icechunk_lib.storage.s3 import S3Storage
from icechunk_lib.storage.tuning import StorageTuning

SECRET = s3_servers.SECRET_KEY
ROOT = Path(__file__).resolve().parents[2]
FAST = StorageTuning(max_tries=3, initial_backoff_seconds=0.01, max_backoff_seconds=0.02)
ODD_KEYS = [
    "a b/c d",
    "plus+sign/x+y",
    "per%cent/%41%2F",
    "ünï/cödé/日本語",
    "eq=ual&and?q#frag",
    "tilde~/dollar$/at@/star*/(paren)/'quote'/comma,semi;colon:",
    "brackets[]{}/caret^/pipe|/back`tick",
]


def storage_on(server: S3Server, endpoint_url: str | None = None, **kwargs: object) -> S3Storage:
    options = {**server.storage_kwargs(), **kwargs}
    if endpoint_url is not None:
        options["endpoint_url"] = endpoint_url
    made = ic.s3_storage(bucket=s3_servers.BUCKET, prefix=server.fresh_prefix(), **options)
    assert isinstance(made, S3Storage)
    made.apply_tuning(FAST)
    return made


@pytest.fixture
def auth_proxy(seaweedfs_auth_server: S3Server) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(seaweedfs_auth_server.endpoint_url) as running:
        yield running


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(s3_server.endpoint_url) as running:
        yield running


# --- signatures a checking server accepts, and refuses ------------------------------------


@pytest.mark.parametrize("key", ODD_KEYS)
async def test_odd_keys_are_signed_as_the_server_expects(
    seaweedfs_auth_server: S3Server, key: str
) -> None:
    async with storage_on(seaweedfs_auth_server) as storage:
        await storage.put_if_absent(key, b"v1")
        data, etag = await storage.get_versioned(key)
        assert data == b"v1"
        await storage.put_if_match(key, b"v22", etag)
        assert await storage.get(key, (1, 3)) == b"22"
        assert await storage.exists(key)
        assert await storage.size(key) == 3
        assert [i.key async for i in storage.list("")] == [key]  # stored under that very key
        await storage.delete(key)
        assert not await storage.exists(key)


async def test_a_wrong_secret_is_refused_and_not_retried(
    seaweedfs_auth_server: S3Server, auth_proxy: S3FaultProxy
) -> None:
    async with storage_on(seaweedfs_auth_server) as good:
        await good.put("config", b"c")
        prefix = good.prefix
    wrong = ic.s3_storage(
        bucket=s3_servers.BUCKET,
        prefix=prefix,
        **{
            **seaweedfs_auth_server.storage_kwargs(),
            "endpoint_url": auth_proxy.endpoint_url,
            "secret_access_key": "not-" + SECRET,
        },
    )
    async with wrong:
        for attempt in (wrong.get("config"), wrong.put("config", b"x"), wrong.exists("config")):
            with pytest.raises(StorageError, match="access denied") as info:
                await attempt
            assert SECRET not in str(info.value)
    assert [s.method for s in auth_proxy.requests(path_contains="config")] == ["GET", "PUT", "HEAD"]


# --- error replies, classified ----------------------------------------------------------------


async def _failure(call: object) -> Failed:
    with pytest.raises(Failed) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_error_replies_are_classified_by_status_and_code(
    s3_server: S3Server, proxy: S3FaultProxy
) -> None:
    async with storage_on(s3_server, proxy.endpoint_url) as storage:
        missing = await _failure(storage._send("GET", "missing"))
        assert (missing.failure, error_code(missing.exc), missing.tries) == (
            Failure.NOT_FOUND,
            "NoSuchKey",
            1,
        )
        again = pickle.loads(pickle.dumps(missing.exc))
        assert (str(again), error_code(again)) == (str(missing.exc), "NoSuchKey")
        head = await _failure(storage._send("HEAD", "missing"))
        assert head.failure is Failure.NOT_FOUND  # no body: the status stands for the code
        await storage.put("k", b"v")
        exists = await _failure(storage._send("PUT", "k", {"if-none-match": "*"}, b"w"))
        assert (exists.failure, exists.tries, exists.uncertain) == (Failure.PRECONDITION, 1, False)
        proxy.slow_down(FAST.max_tries, path_contains="/k")
        throttled = await _failure(storage._send("GET", "k"))
        assert (throttled.failure, error_code(throttled.exc), throttled.tries) == (
            Failure.THROTTLED,
            "SlowDown",
            FAST.max_tries,
        )
        proxy.fail_with(500, "InternalError", 1, path_contains="/k")
        assert (await storage._send("GET", "k")).body == b"v"  # a 500 is retried
    gets = proxy.requests("GET", "/k")
    assert [s.action for s in gets] == ["slow_down"] * FAST.max_tries + ["reply", "forward"]


async def test_a_checking_server_denies_a_reader_its_writes(
    seaweedfs_auth_server: S3Server,
) -> None:
    async with storage_on(
        seaweedfs_auth_server,
        access_key_id=s3_servers.READER_KEY,
        secret_access_key=s3_servers.READER_SECRET,
    ) as reader:
        denied = await _failure(reader._send("PUT", "k", {}, b"v"))
        assert denied.failure is Failure.DENIED
        assert denied.tries == 1
        with pytest.raises(ObjectNotFoundError):
            await reader.get("k")  # reading is allowed: the object is simply missing


# --- credentials -----------------------------------------------------------------------------


def _refreshing(server: S3Server, endpoint_url: str, function: object) -> S3Storage:
    kwargs = server.storage_kwargs()
    del kwargs["access_key_id"], kwargs["secret_access_key"]
    kwargs["endpoint_url"] = endpoint_url
    made = ic.s3_storage(
        bucket=s3_servers.BUCKET,
        prefix=server.fresh_prefix(),
        get_credentials=function,  # type: ignore[arg-type]
        **kwargs,
    )
    assert isinstance(made, S3Storage)
    made.apply_tuning(FAST)
    return made


async def test_an_expired_token_refreshes_the_credentials_once(
    s3_server: S3Server, proxy: S3FaultProxy
) -> None:
    async with _refreshing(s3_server, proxy.endpoint_url, source.long_lived) as storage:
        await storage.put("config", b"c")
        before = len(source.CALLS)
        proxy.fail_with(400, "ExpiredToken", 1, method="GET", path_contains="config")
        assert await storage.get("config") == b"c"
        assert len(source.CALLS) == before + 1  # fetched again, then sent again
        assert len(proxy.requests("GET", "config")) == 2
        proxy.fail_with(400, "ExpiredToken", 2, method="GET", path_contains="config")
        with pytest.raises(StorageError, match="ExpiredToken"):
            await storage.get("config")  # still expired after one refresh: given up
        assert len(proxy.requests("GET", "config")) == 4


async def test_an_expired_token_without_a_way_to_refresh_is_an_error(
    s3_server: S3Server, proxy: S3FaultProxy
) -> None:
    async with storage_on(s3_server, proxy.endpoint_url) as storage:
        proxy.fail_with(403, "ExpiredToken", 1, method="GET", path_contains="config")
        with pytest.raises(StorageError, match="access denied"):
            await storage.get("config")
        assert len(proxy.requests("GET", "config")) == 1


async def test_credentials_refreshed_before_expiry_sign_the_requests(
    seaweedfs_auth_server: S3Server,
) -> None:
    server = seaweedfs_auth_server
    # First a wrong secret, about to expire: the first request fetches the right one.
    async with _refreshing(server, server.endpoint_url, source.wrong_then_right) as storage:
        await storage.put("config", b"c")
        assert await storage.get("config") == b"c"


# --- lifecycle -------------------------------------------------------------------------------

_UNCLOSED = """
import asyncio, sys, threading
sys.path[:0] = sys.argv[2:]
import icechunk_lib as ic, s3_servers
from s3_servers import S3Server
server = S3Server("x", sys.argv[1], None, None, None)
storage = s3_servers.s3_at(server, "unclosed")
async def use():
    await storage.put("k", b"v")
    assert await storage.get("k") == b"v"
asyncio.run(use())  # never closed, on a loop that has ended
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
asyncio.run_coroutine_threadsafe(use(), loop).result()  # a loop still running at exit
print("done")
"""


def test_nothing_is_left_open_at_exit(s3_server: S3Server) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "always", "PYTHONASYNCIODEBUG": "0"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _UNCLOSED,
            s3_server.endpoint_url,
            str(ROOT),
            str(ROOT / "tests"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "done"
    for noise in ("Unclosed", "unclosed", "Task was destroyed", "Traceback"):
        assert noise not in done.stderr, done.stderr


@pytest.fixture
async def storage(s3_server: S3Server) -> AsyncIterator[S3Storage]:
    async with storage_on(s3_server) as opened:
        yield opened


# --- addressing (no request is sent) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "origin", "path", "region"),
    [
        ({"region": "eu-west-3"}, "https://ick-b.s3.eu-west-3.amazonaws.com", "/", "eu-west-3"),
        (
            {"region": "eu-west-3", "force_path_style": True},
            "https://s3.eu-west-3.amazonaws.com",
            "/ick-b/",
            "eu-west-3",
        ),
        (
            {"endpoint_url": "https://objects.example.com/s3", "force_path_style": True},
            "https://objects.example.com",
            "/s3/ick-b/",
            "us-east-1",
        ),
        (
            {"endpoint_url": "http://10.0.0.7:9000", "allow_http": True, "region": "garage"},
            "http://10.0.0.7:9000",
            "/ick-b/",
            "garage",
        ),
    ],
)
async def test_requests_go_where_botocore_would_send_them(
    options: dict[str, object], origin: str, path: str, region: str
) -> None:
    made = ic.s3_storage(
        bucket="ick-b", prefix="p", access_key_id="AKID", secret_access_key=SECRET, **options
    )
    assert isinstance(made, S3Storage)
    async with made as storage:
        http = (await storage._connection()).http
        assert (http.route.origin, http.route.path, http.signer.region) == (origin, path, region)
        assert http.route.aws == ("endpoint_url" not in options)
        assert http.route.target("p/a b") == (f"{origin}{path}p/a%20b", f"{path}p/a%20b")
        assert SECRET not in repr(http)
