"""A commit that failed with its branch update's outcome unknown (every reply lost, through
the fault proxy on SeaweedFS) did land: a manual ``rebase`` or a second ``commit`` after it
finds it on the branch and never applies the same changes again."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import zarr
from s3_proxy import S3FaultProxy
from s3_servers import S3Server, s3_at

import icechunk_lib as ic
from icechunk_lib.format.storage_settings import StorageRetriesSettings, StorageSettings

TRIES = 3
FAST = ic.RepositoryConfig(
    storage=StorageSettings(
        retries=StorageRetriesSettings(max_tries=TRIES, initial_backoff_ms=10, max_backoff_ms=50)
    )
)


@pytest.fixture
def proxy(seaweedfs_server: S3Server) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(seaweedfs_server.endpoint_url) as running:
        yield running


def _lost_commit(
    proxy: S3FaultProxy, server: S3Server, others_commit_meanwhile: bool
) -> tuple[ic.Session, ic.Repository]:
    """A session whose commit of ``a[0] = 7`` landed but failed, every reply to its branch
    update lost (with another writer committing on top right after it landed, if asked);
    and a handle on the repository that does not go through the proxy."""
    prefix = server.fresh_prefix()
    repo = ic.Repository.create(s3_at(server, prefix, endpoint_url=proxy.endpoint_url), FAST)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(3,), dtype="i4")[:] = 1
    session.commit("setup")
    other = ic.Repository.open(s3_at(server, prefix))
    theirs_done: list[str] = []

    def theirs() -> None:
        if others_commit_meanwhile and not theirs_done:
            writer = other.writable_session("main")
            zarr.open_group(writer.store, mode="r+").attrs["theirs"] = True
            theirs_done.append(writer.commit("theirs"))

    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0] = 7
    rule = proxy.drop_replies(TRIES, method="PUT", path_contains="refs/branch", then=theirs)
    with pytest.raises(ic.StorageError):
        session.commit("mine")
    assert rule.hits == TRIES
    return session, other


def _messages(repo: ic.Repository) -> list[str]:
    return [entry.message for entry in repo.ancestry(branch="main")]


@pytest.mark.parametrize("others_commit_meanwhile", [False, True])
def test_rebase_finds_the_lost_commit_landed_and_never_applies_it_twice(
    proxy: S3FaultProxy, seaweedfs_server: S3Server, others_commit_meanwhile: bool
) -> None:
    session, other = _lost_commit(proxy, seaweedfs_server, others_commit_meanwhile)
    history = _messages(other)
    assert history[:2] == (["theirs", "mine"] if others_commit_meanwhile else ["mine", "setup"])
    mine = next(e.id for e in other.ancestry(branch="main") if e.message == "mine")

    session.rebase(ic.ConflictDetector())
    assert session.snapshot_id == mine
    assert session.read_only  # as after a commit that returned
    assert session.commit("mine, once more") == mine  # the landed commit, not a new one
    assert _messages(other) == history
    data = zarr.open_array(other.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(data, [7, 1, 1])


def test_a_second_commit_returns_the_lost_one_that_landed(
    proxy: S3FaultProxy, seaweedfs_server: S3Server
) -> None:
    session, other = _lost_commit(proxy, seaweedfs_server, others_commit_meanwhile=True)
    history = _messages(other)
    mine = next(e.id for e in other.ancestry(branch="main") if e.message == "mine")
    assert session.commit("mine, again", rebase_with=ic.ConflictDetector()) == mine
    assert session.read_only and session.snapshot_id == mine
    assert _messages(other) == history
