"""A commit's message and metadata: what cannot be read back is refused before anything is
written, so a bad value never leaves a branch whose tip or ref cannot be decoded."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np
import pytest
import zarr

import icechunk_lib as ic


def _reopened(repo: ic.Repository) -> ic.Repository:
    """The repository as another process sees it (no object cache)."""
    return ic.Repository.open(repo.storage)


@pytest.mark.parametrize(
    "message",
    [None, 5, b"bytes", ["a"], "lone surrogate \ud800"],
    ids=["none", "int", "bytes", "list", "surrogate"],
)
def test_a_message_that_is_not_text_is_refused_and_the_branch_stays_readable(
    repo: ic.Repository, message: Any
) -> None:
    tip = repo.lookup_branch("main")
    session = repo.writable_session("main")
    zarr.group(session.store)
    with pytest.raises(ic.SessionError, match="message"):
        session.commit(message)
    # Nothing landed, the history still reads, and the session can commit a good message.
    again = _reopened(repo)
    assert again.lookup_branch("main") == tip
    assert [s.message for s in again.ancestry(branch="main")] == ["Repository initialized"]
    assert len(again.reflog("main")) == 1
    assert not session.read_only and session.has_uncommitted_changes
    new = session.commit("good")
    assert _reopened(repo).lookup_branch("main") == new


@pytest.mark.parametrize(
    "metadata",
    [
        {1: "int key"},
        {"nested": {2: "int key"}},
        ["not", "a", "dict"],
        "text",
        {"uuid": uuid.UUID(int=1)},
        {"when": dt.datetime(2020, 1, 1)},
        {"set": {1, 2}},
        {"huge": 2**64},
        {"object": object()},
        {"text": "lone surrogate \ud800"},
        {"numpy": np.float64(1.5)},
    ],
    ids=[
        "int-key",
        "nested-int-key",
        "list",
        "str",
        "uuid",
        "naive-datetime",
        "set",
        "huge-int",
        "object",
        "surrogate",
        "numpy-float",
    ],
)
def test_metadata_that_would_not_read_back_as_given_is_refused(
    repo: ic.Repository, metadata: Any
) -> None:
    tip = repo.lookup_branch("main")
    session = repo.writable_session("main")
    zarr.group(session.store)
    with pytest.raises(ic.SessionError, match="metadata"):
        session.commit("m", metadata)
    again = _reopened(repo)
    assert again.lookup_branch("main") == tip
    assert again.lookup_snapshot(tip).message == "Repository initialized"
    assert not session.read_only and session.has_uncommitted_changes


def test_json_like_metadata_reads_back_exactly(repo: ic.Repository) -> None:
    metadata = {
        "none": None,
        "flag": True,
        "ints": [-(2**63), 2**64 - 1, 0],
        "float": 1.5,
        "inf": float("inf"),
        "text": "ünï ☃ 😀",
        "nested": {"list": [1, "two", {"three": [3.0]}]},
        "bytes": b"\x00\xff",
        "when": dt.datetime(2020, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    }
    session = repo.writable_session("main")
    zarr.group(session.store)
    sid = session.commit("m", metadata)
    assert _reopened(repo).lookup_snapshot(sid).metadata == metadata
