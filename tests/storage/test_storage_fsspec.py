"""FsspecStorage: the contract kit through fsspec's own s3 protocol on a real server (writes by
emulation), read-only by default, and what emulation cannot promise."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import AsyncIterator

import pytest
import s3_servers
from s3_servers import S3Server

from icechunk_lib.errors import ObjectExistsError, ReadOnlyStorageError
from icechunk_lib.storage import Storage
from icechunk_lib.storage.fsspec_storage import UNSAFE_WRITES_WARNING, FsspecStorage
from icechunk_lib.testing.storage import StorageTests


def s3fs_storage(server: S3Server, prefix: str, *, unsafe: bool) -> FsspecStorage:
    import s3fs

    fs = s3fs.S3FileSystem(**server.client_kwargs())
    root = f"{s3_servers.BUCKET}/{prefix}"
    return FsspecStorage(fs, root, url=f"s3://{root}", allow_unsafe_writes=unsafe)


class TestFsspecStorageUnsafeWrites(StorageTests):
    """Every part of the contract that holds without atomic operations, on fsspec's memory
    filesystem (fast; the s3 protocol on a real server is checked below)."""

    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        import fsspec

        root = f"/ick-{uuid.uuid4().hex}"
        fs = fsspec.filesystem("memory")
        async with FsspecStorage(
            fs, root, url=f"memory-fs:/{root}", allow_unsafe_writes=True
        ) as storage:
            yield storage
        fs.rm(root, recursive=True) if fs.exists(root) else None

    def test_declares_safe_writes_and_url(self, storage: Storage) -> None:
        assert not storage.capabilities.create_if_absent
        assert not storage.capabilities.compare_and_swap
        assert storage.unsafe_writes
        assert storage.url.startswith("memory-fs:")

    async def test_put_if_absent_race_has_one_winner(self, storage: Storage) -> None:
        pytest.skip("emulated create-if-absent is a check then a write: racers can both win")

    async def test_put_if_match_race_has_one_winner(self, storage: Storage) -> None:
        pytest.skip("emulated compare-and-swap is a check then a write: racers can both win")


@pytest.fixture
def read_only(moto_server: S3Server) -> FsspecStorage:
    prefix = moto_server.fresh_prefix()
    writer = s3fs_storage(moto_server, prefix, unsafe=True)
    import asyncio

    async def fill() -> None:
        await writer.put("config", b"cfg")
        await writer.put("refs/branch/main/ref", b"ref")

    asyncio.run(fill())
    return s3fs_storage(moto_server, prefix, unsafe=False)


async def test_read_only_by_default_reads_but_refuses_every_write(
    read_only: FsspecStorage,
) -> None:
    assert not read_only.capabilities.safe_writes
    assert not read_only.unsafe_writes
    assert await read_only.get("config") == b"cfg"
    assert await read_only.get("config", (1, 2)) == b"f"
    assert await read_only.size("refs/branch/main/ref") == 3
    assert {i.key async for i in read_only.list("refs/")} == {"refs/branch/main/ref"}
    for write in (
        lambda: read_only.put("config", b"x"),
        lambda: read_only.put_if_absent("new", b"x"),
        lambda: read_only.put_new("chunks/X", b"x"),
        lambda: read_only.put_if_match("config", b"x", "v"),
        lambda: read_only.delete("config"),
        lambda: read_only.create_root(),
    ):
        with pytest.raises(ReadOnlyStorageError, match="allow_unsafe_writes=True") as info:
            await write()
        # the one refusal every backend words alike: what is missing and what can be lost
        message = str(info.value)
        assert message == read_only_refusal(read_only), message
        assert "concurrent writers could lose updates" in message
    assert await read_only.get("config") == b"cfg"


async def test_unsafe_create_still_refuses_what_it_sees(moto_server: S3Server) -> None:
    # Emulation loses only races: a create that finds the object present is refused.
    storage = s3fs_storage(moto_server, moto_server.fresh_prefix(), unsafe=True)
    await storage.put_if_absent("refs/tag/v1/ref", b"one")
    with pytest.raises(ObjectExistsError):
        await storage.put_if_absent("refs/tag/v1/ref", b"two")
    assert await storage.get("refs/tag/v1/ref") == b"one"


def test_repr_pickle_and_no_secret(read_only: FsspecStorage) -> None:
    assert repr(read_only) == f"FsspecStorage({read_only.url!r}, read-only)"
    assert s3_servers.SECRET_KEY not in repr(read_only) + read_only.url
    clone = pickle.loads(pickle.dumps(read_only))
    assert clone == read_only
    assert not clone.unsafe_writes


def test_warning_says_what_can_be_lost() -> None:
    assert "lost" in UNSAFE_WRITES_WARNING
    assert "tag" in UNSAFE_WRITES_WARNING


def test_pickles_carry_no_secret_option_and_rebuild_elsewhere(moto_server: S3Server) -> None:
    """A secret passed as a filesystem option stays out of the pickle: in this process the
    copy shares the live filesystem; in another it is rebuilt without the secret."""
    import subprocess
    import sys

    storage = s3fs_storage(moto_server, moto_server.fresh_prefix(), unsafe=False)
    data = pickle.dumps(storage)
    assert s3_servers.SECRET_KEY.encode() not in data
    clone = pickle.loads(data)
    assert clone.fs is storage.fs
    script = (
        "import pickle, sys; s = pickle.loads(sys.stdin.buffer.read()); "
        "print(sorted(s.fs.storage_options)); print(s.root)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert "secret" not in shown
    assert "'key'" not in shown
    assert "client_kwargs" in shown
    assert storage.root in shown


def test_public_options_drop_credentials_at_any_depth() -> None:
    from icechunk_lib.storage.fsspec_storage import public_options

    options = {
        "anon": False,
        "key": "AKIA",
        "secret": "s",
        "token": "t",
        "account_key": "k",
        "sas_token": "x",
        "requester_pays": True,
        "client_kwargs": {"endpoint_url": "http://h", "aws_secret_access_key": "s"},
    }
    assert public_options(options) == {
        "anon": False,
        "requester_pays": True,
        "client_kwargs": {"endpoint_url": "http://h"},
    }


def _s3a_options(endpoint_url: str) -> dict[str, object]:
    """fsspec options for ``s3a://`` (s3fs through ``FsspecStorage``, not ``S3Storage``)."""
    return {
        "endpoint_url": endpoint_url,
        "key": s3_servers.ACCESS_KEY,
        "secret": s3_servers.SECRET_KEY,
        "client_kwargs": {"region_name": s3_servers.REGION},
        "skip_instance_cache": True,
        "use_listings_cache": False,
    }


def test_creating_a_repository_never_creates_the_bucket(moto_server: S3Server) -> None:
    """s3fs's makedirs creates a missing bucket; a repository on it must not."""
    import s3fs

    import icechunk_lib as ic
    from icechunk_lib.errors import NotFoundError

    bucket = f"ick-missing-{uuid.uuid4().hex[:12]}"
    url = f"s3a://{bucket}/repo"
    options = _s3a_options(moto_server.endpoint_url)
    storage = ic.storage_from_url(url, storage_options=options, allow_unsafe_writes=True)
    assert isinstance(storage, FsspecStorage)
    with pytest.warns(ic.UnsafeWritesWarning), pytest.raises(NotFoundError) as info:
        ic.Repository.create(storage)
    assert repr(bucket) in str(info.value)
    assert s3_servers.SECRET_KEY not in str(info.value)
    fs = s3fs.S3FileSystem(**moto_server.client_kwargs())
    assert bucket not in {name.rstrip("/") for name in fs.ls("")}

    # Under an existing bucket the repository is created as before.
    there = f"s3a://{s3_servers.BUCKET}/{moto_server.fresh_prefix()}"
    good = ic.storage_from_url(there, storage_options=options, allow_unsafe_writes=True)
    with pytest.warns(ic.UnsafeWritesWarning):
        repo = ic.Repository.create(good)
    assert repo.list_branches() == {"main"}


async def test_a_ranged_read_is_one_request(moto_server: S3Server) -> None:
    """A byte range, open-ended or not, is one ranged GET: no size lookup first."""
    from s3_proxy import S3FaultProxy

    import icechunk_lib as ic

    with S3FaultProxy(moto_server.endpoint_url) as proxy:
        options = _s3a_options(proxy.endpoint_url)
        url = f"s3a://{s3_servers.BUCKET}/{moto_server.fresh_prefix()}"
        storage = ic.storage_from_url(url, storage_options=options, allow_unsafe_writes=True)
        await storage.put("chunks/A", b"0123456789")
        cases = [((2, 7), b"23456"), ((3, None), b"3456789"), ((0, 4), b"0123")]
        cases += [((8, 50), b"89")]
        for byte_range, expected in cases:
            before = len(proxy.requests())
            assert await storage.get("chunks/A", byte_range) == expected
            seen = proxy.requests()[before:]
            assert [(s.method, b"range" in s.headers) for s in seen] == [("GET", True)]
        # Past the end is empty, as slicing is (the server's 416 costs one more look).
        assert await storage.get("chunks/A", (10, None)) == b""
        assert await storage.get("chunks/A", (12, 20)) == b""
        assert await storage.get("chunks/A", (5, 5)) == b""
        with pytest.raises(FileNotFoundError):
            await storage.get("chunks/B", (2, 5))


def read_only_refusal(storage: FsspecStorage) -> str:
    """The refusal the repository's write check gives for ``storage``."""
    with pytest.raises(ReadOnlyStorageError) as info:
        storage.check_writable()
    return str(info.value)
