"""Through A's fault proxy (tests/s3_proxy.py) in front of the real servers: a server that
ignores conditional writes is refused for writing (unless unsafe writes are allowed, with
the warning), and a commit whose ref-update reply is lost lands exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
import s3_servers
import zarr
from s3_proxy import S3FaultProxy
from s3_servers import S3Server, s3_at

import icechunk_lib as ic
from icechunk_lib.format.storage_settings import StorageRetriesSettings, StorageSettings

MAX_TRIES = 4
FAST = ic.RepositoryConfig(
    storage=StorageSettings(
        retries=StorageRetriesSettings(
            max_tries=MAX_TRIES, initial_backoff_ms=10, max_backoff_ms=50
        )
    )
)


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(s3_server.endpoint_url) as running:
        yield running


def _via(proxy: S3FaultProxy, server: S3Server, prefix: str, **kwargs: object) -> ic.Storage:
    return s3_at(server, prefix, endpoint_url=proxy.endpoint_url, **kwargs)


def test_a_server_ignoring_conditions_is_refused_then_allowed_with_the_warning(
    proxy: S3FaultProxy, s3_server: S3Server
) -> None:
    proxy.strip_conditions()
    prefix = s3_server.fresh_prefix()
    storage = _via(proxy, s3_server, prefix)
    with pytest.raises(ic.ReadOnlyStorageError) as info:
        ic.Repository.create(storage, FAST)
    message = str(info.value)
    assert storage.url in message and "allow_unsafe_writes=True" in message
    assert "--unsafe-writes" in message and s3_servers.SECRET_KEY not in message

    unsafe = _via(proxy, s3_server, prefix, allow_unsafe_writes=True)
    with pytest.warns(ic.UnsafeWritesWarning, match="overwrite each other's commits") as seen:
        repo = ic.Repository.create(unsafe, FAST)
        session = repo.writable_session("main")
        zarr.create_array(session.store, name="a", shape=(3,), dtype="i4")[:] = 5
        new_id = session.commit("unsafe but allowed")
    assert len(seen) == 1
    proxy.strip_conditions(False)
    reader = ic.Repository.open(s3_at(s3_server, prefix))
    assert reader.lookup_branch("main") == new_id
    data = zarr.open_array(reader.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(data, [5, 5, 5])


def test_commit_whose_ref_update_reply_is_lost_lands_once(
    proxy: S3FaultProxy, s3_server: S3Server
) -> None:
    prefix = s3_server.fresh_prefix()
    repo = ic.Repository.create(_via(proxy, s3_server, prefix), FAST)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(3,), dtype="i4")[:] = 1
    session.commit("setup")

    other = ic.Repository.open(s3_at(s3_server, prefix))

    def another_writer_commits_on_top() -> None:
        theirs = other.writable_session("main")
        zarr.open_group(theirs.store, mode="r+").attrs["theirs"] = True
        theirs.commit("theirs")

    for then in (None, another_writer_commits_on_top):
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[0] = 7
        rule = proxy.drop_replies(1, method="PUT", path_contains="refs/branch", then=then)
        new_id = session.commit("mine", rebase_with=ic.ConflictDetector())
        assert rule.hits == 1
        history = list(other.ancestry(branch="main"))
        assert [e.message for e in history].count("mine") == (1 if then is None else 2)
        assert new_id in {e.id for e in history}
    assert [e.message for e in other.ancestry(branch="main")][:4] == [
        "theirs",
        "mine",
        "mine",
        "setup",
    ]


@pytest.mark.parametrize("lost", [1, 100], ids=["one", "every"])
def test_tag_whose_creation_reply_was_lost_is_created_once(
    proxy: S3FaultProxy, s3_server: S3Server, lost: int
) -> None:
    """One reply lost: the retry's 412 finds our bytes; every reply lost: the storage gives
    up writing and its read-back finds them. Either way the tag was created, once."""
    prefix = s3_server.fresh_prefix()
    repo = ic.Repository.create(_via(proxy, s3_server, prefix), FAST)
    tip = repo.lookup_branch("main")
    rule = proxy.drop_replies(lost, method="PUT", path_contains="refs/tag/v1/")
    repo.create_tag("v1", tip)
    rule.count = 0
    assert rule.hits == (1 if lost == 1 else MAX_TRIES)
    other = ic.Repository.open(s3_at(s3_server, prefix))
    assert other.lookup_tag("v1") == tip
    assert other.list_tags() == {"v1"}
    with pytest.raises(ic.TagAlreadyExistsError):  # and it is not created twice
        repo.create_tag("v1", tip)


def test_config_save_whose_reply_was_lost_is_not_a_conflict(
    proxy: S3FaultProxy, s3_server: S3Server
) -> None:
    prefix = s3_server.fresh_prefix()
    repo = ic.Repository.create(_via(proxy, s3_server, prefix), FAST)
    repo.set_config_value("compression.level", "5")
    rule = proxy.drop_replies(1, method="PUT", path_contains="/config")
    assert repo.set_config_value("compression.level", "7") == (5, 7)
    assert rule.hits == 1
    saved = ic.Repository.fetch_config(s3_at(s3_server, prefix))
    assert saved is not None and saved.compression.level == 7
    repo.set_config_value("compression.level", "8")  # the version it holds is current


def test_refusal_is_worded_alike_by_the_repository_and_the_storage(
    proxy: S3FaultProxy, s3_server: S3Server
) -> None:
    """The repository's write check and the storage's own refusal (defence in depth) give
    one message: the storage, what it lacks, and the opt-in."""
    proxy.strip_conditions()
    storage = _via(proxy, s3_server, s3_server.fresh_prefix())
    with pytest.raises(ic.ReadOnlyStorageError) as by_repository:
        ic.Repository.create(storage, FAST)

    async def create_directly() -> None:
        await storage.probe_capabilities()
        await storage.put_if_absent("refs/tag/v1/ref", b"x")

    with pytest.raises(ic.ReadOnlyStorageError) as by_storage:
        asyncio.run(create_directly())
    message = str(by_storage.value)
    assert message == str(by_repository.value)
    assert storage.url in message
    assert "create-if-absent" in message and "compare-and-swap" in message
    assert "allow_unsafe_writes=True" in message and "--unsafe-writes" in message
    assert s3_servers.SECRET_KEY not in message


def test_settings_that_turn_conditions_off_are_an_opt_in_both_checks_honour(
    proxy: S3FaultProxy, s3_server: S3Server
) -> None:
    """Icechunk's ``unsafe_use_conditional_create=False`` opts into unsafe writes: on a
    server ignoring conditions the repository allows them (warning once), and so does the
    storage when it emulates the swap it lacks."""
    proxy.strip_conditions()
    prefix = s3_server.fresh_prefix()
    config = ic.RepositoryConfig(
        storage=StorageSettings(
            unsafe_use_conditional_create=False,
            retries=StorageRetriesSettings(max_tries=MAX_TRIES),
        )
    )
    with pytest.warns(ic.UnsafeWritesWarning) as seen:
        repo = ic.Repository.create(_via(proxy, s3_server, prefix), config)
        session = repo.writable_session("main")
        zarr.create_array(session.store, name="a", shape=(3,), dtype="i4")[:] = 4
        new_id = session.commit("allowed by the settings")
    assert len(seen) == 1
    proxy.strip_conditions(False)
    assert ic.Repository.open(s3_at(s3_server, prefix)).lookup_branch("main") == new_id
