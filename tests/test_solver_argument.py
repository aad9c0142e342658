"""A conflict solver given as a class (parentheses forgotten) or as anything else is named as
the mistake, before anything is written, and the session stays usable."""

from __future__ import annotations

from typing import Any

import pytest
import zarr

import icechunk_lib as ic


@pytest.mark.parametrize("solver", [ic.BasicConflictSolver, "basic", 1])
def test_a_solver_that_is_not_a_solver_instance_is_a_clear_error(
    repo: ic.Repository, solver: Any
) -> None:
    stale = repo.writable_session("main")
    zarr.group(stale.store, attributes={"x": 1})
    tip = repo.writable_session("main").commit("moves main", allow_empty=True)
    with pytest.raises(ic.SessionError, match="ConflictSolver"):
        stale.commit("stale", rebase_with=solver)
    with pytest.raises(ic.SessionError, match="ConflictSolver"):
        stale.rebase(solver)
    assert repo.lookup_branch("main") == tip
    assert not stale.read_only and stale.has_uncommitted_changes
    stale.commit("rebased", rebase_with=ic.BasicConflictSolver())
