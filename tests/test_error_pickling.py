"""Every ick error survives pickling, so an error raised in a worker process (multiprocessing,
dask, a fork sent away) reaches the caller as itself, with its message and attributes."""

from __future__ import annotations

import concurrent.futures
import inspect
import multiprocessing
import pickle
from pathlib import Path

import pytest

import icechunk_lib as ic
from icechunk_lib import errors


def _error_classes() -> list[type[errors.IcechunkError]]:
    classes = [getattr(errors, name) for name in errors.__all__]
    return [c for c in classes if isinstance(c, type) and issubclass(c, errors.IcechunkError)]


def _instance(cls: type[errors.IcechunkError]) -> errors.IcechunkError:
    """An instance built from made-up values for the constructor's required arguments."""
    args = []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        args.append([] if p.name == "conflicts" else f"{p.name}-value")
    return cls(*args)


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_pickles_as_itself(cls: type[errors.IcechunkError]) -> None:
    exc = _instance(cls)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)
    assert vars(back) == vars(exc)


def _commit_stale(path: str) -> str:
    """In a worker: commit a session whose branch moved meanwhile (a ConflictError)."""
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    stale = repo.writable_session("main")
    repo.writable_session("main").commit("moves main", allow_empty=True)
    return stale.commit("stale", allow_empty=True)


def test_a_conflict_in_a_worker_process_reaches_the_caller(tmp_path: Path) -> None:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "r"))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(_commit_stale, str(tmp_path / "r"))
        with pytest.raises(ic.ConflictError) as info:
            future.result(timeout=120)
    assert info.value.branch == "main"
    assert info.value.actual_parent == repo.lookup_branch("main")
