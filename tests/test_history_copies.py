"""History records are copies: changing what ``lookup_snapshot`` or ``ancestry`` returned never
changes what the next call (served from the in-process cache) returns."""

from __future__ import annotations

import icechunk_lib as ic


def test_mutating_returned_metadata_does_not_change_the_history(repo: ic.Repository) -> None:
    metadata = {"nested": {"x": 1}, "list": [1, {"y": 2}]}
    sid = repo.writable_session("main").commit("m", metadata, allow_empty=True)
    for info in (repo.lookup_snapshot(sid), next(repo.ancestry(branch="main"))):
        info.metadata["nested"]["x"] = "changed"
        info.metadata["list"].append(3)
        info.metadata["list"][1]["y"] = "changed"
        info.metadata["new"] = True
    assert repo.lookup_snapshot(sid).metadata == metadata
    assert next(repo.ancestry(branch="main")).metadata == metadata
    assert ic.Repository.open(repo.storage).lookup_snapshot(sid).metadata == metadata
