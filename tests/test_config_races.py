"""Config changes are compare-and-swap against what the writer read: never a silent loss."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import pytest
from config_worker import set_worker

import icechunk_lib as ic
from icechunk_cli.commands.config import flatten

KEYS = {
    "compression.level": lambda trial: str(1 + trial % 20),
    "inline_chunk_threshold_bytes": lambda trial: str(100 + trial),
    "get_partial_values_concurrency": lambda trial: str(2 + trial),
    "caching.num_snapshots": lambda trial: str(10 + trial),
}
TRIALS = 25
TIMEOUT = 120


def test_stale_repository_save_conflicts_and_keeps_the_other_change(
    storage: ic.Storage,
) -> None:
    ic.Repository.create(storage)
    first = ic.Repository.open(storage)
    stale = ic.Repository.open(storage)
    first.config.compression.level = 9
    first.save_config()
    stale.config.inline_chunk_threshold_bytes = 64
    with pytest.raises(ic.ConfigChangedError, match="someone else changed"):
        stale.save_config()
    saved = ic.Repository.fetch_config(storage)
    assert saved is not None
    assert (saved.compression.level, saved.inline_chunk_threshold_bytes) == (9, 512)
    # The winner keeps saving against the version it wrote; a reopened object can save.
    first.config.compression.level = 4
    first.save_config()
    again = ic.Repository.open(storage)
    again.config.inline_chunk_threshold_bytes = 64
    again.save_config()
    saved = ic.Repository.fetch_config(storage)
    assert saved is not None
    assert (saved.compression.level, saved.inline_chunk_threshold_bytes) == (4, 64)


def test_open_with_a_config_swaps_against_the_saved_version(storage: ic.Storage) -> None:
    ic.Repository.create(storage)
    mine = ic.Repository.open(storage, config=ic.RepositoryConfig(inline_chunk_threshold_bytes=9))
    other = ic.Repository.open(storage)
    other.config.compression.level = 8
    other.save_config()
    with pytest.raises(ic.ConfigChangedError):
        mine.save_config()
    assert ic.Repository.open(storage).config.compression.level == 8


def test_created_and_unpickled_repositories_keep_their_config_version(
    storage: ic.Storage,
) -> None:
    created = ic.Repository.create(storage)
    created.config.compression.level = 6
    created.save_config()  # the version written by create is the one it swaps against
    copy = pickle.loads(pickle.dumps(created))
    ic.Repository.open(storage).set_config_value("compression.level", "2")
    copy.config.inline_chunk_threshold_bytes = 1
    with pytest.raises(ic.ConfigChangedError):
        copy.save_config()


def test_set_config_value_merges_disjoint_changes_and_reports_true_previous(
    storage: ic.Storage,
) -> None:
    ic.Repository.create(storage)
    a = ic.Repository.open(storage)
    b = ic.Repository.open(storage)
    assert a.set_config_value("compression.level", "7") == (3, 7)
    # b read before a's save; its change of another key is merged, not lost.
    assert b.set_config_value("inline_chunk_threshold_bytes", "100") == (512, 100)
    assert b.config.compression.level == 7
    saved = ic.Repository.fetch_config(storage)
    assert saved is not None
    assert (saved.compression.level, saved.inline_chunk_threshold_bytes) == (7, 100)
    # a is now stale too: setting the key b changed is a conflict, and nothing is saved.
    with pytest.raises(ic.ConfigChangedError, match="inline_chunk_threshold_bytes"):
        a.set_config_value("inline_chunk_threshold_bytes", "200")
    saved = ic.Repository.fetch_config(storage)
    assert saved is not None
    assert saved.inline_chunk_threshold_bytes == 100


def test_racing_ick_config_set_processes_lose_no_setting(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    ic.Repository.create(ic.local_filesystem_storage(root))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(KEYS) + 1)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=set_worker,
            args=(str(root), key, [make(t) for t in range(TRIALS)], barrier, results),
        )
        for key, make in KEYS.items()
    ]
    for process in processes:
        process.start()
    try:
        for trial in range(TRIALS):
            barrier.wait(TIMEOUT)  # start
            barrier.wait(TIMEOUT)  # all done
            codes = [results.get(timeout=TIMEOUT) for _ in KEYS]
            saved = ic.Repository.fetch_config(ic.local_filesystem_storage(root))
            assert saved is not None
            settings = dict(flatten(saved.to_dict()))
            lost = {k: settings[k] for k, make in KEYS.items() if settings[k] != int(make(trial))}
            assert codes == [0] * len(KEYS), f"trial {trial}: exit codes {codes}"
            assert not lost, f"trial {trial}: settings lost, still at {lost}"
    except BaseException:
        barrier.abort()  # release the workers waiting for the next trial
        raise
    finally:
        for process in processes:
            process.join(TIMEOUT)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * len(processes)
