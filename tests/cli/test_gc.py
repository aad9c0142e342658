"""``ick gc``: the grace period, dry runs, asking first, the summary and --json."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from gc_support import age, keys, write_chunks

import icechunk_lib as ic
from icechunk_cli import errors
from icechunk_cli.commands.gc import DEFAULT_GRACE

from .conftest import Ick, Sample
from .test_confirmation import at_terminal, piped
from .test_e2e import ICK

OLD = timedelta(days=10)


@pytest.fixture
def garbage(sample: Sample) -> tuple[Ick, set[str]]:
    """The sample with branch ``experiment`` deleted after a commit of 3 native chunks,
    every object aged 10 days; returns ``ick`` and the keys only that branch held."""
    storage = ic.local_filesystem_storage(sample.path)
    repo = ic.Repository.open(storage)
    before = keys(storage)
    write_chunks(repo, "experiment", "big", 0, 3, 5.0)
    repo.delete_branch("experiment")
    age(storage, OLD)
    return Ick(sample.path), keys(storage) - before


def test_default_grace_is_a_week() -> None:
    assert DEFAULT_GRACE == "7d"


def test_dry_run_reports_and_deletes_nothing(garbage: tuple[Ick, set[str]], sample: Sample) -> None:
    ick, _ = garbage
    before = keys(ic.local_filesystem_storage(sample.path))
    out = ick.ok("gc", "--dry-run")
    assert out.stdout.startswith("Would delete ")
    assert "3 chunks" in out.stdout and "(7 days ago)" in out.stdout
    assert "full run" in out.stderr
    assert keys(ic.local_filesystem_storage(sample.path)) == before


def test_json_summary_matches_what_went(garbage: tuple[Ick, set[str]], sample: Sample) -> None:
    ick, only_experiment = garbage
    dry = ick.json("gc", "--dry-run")
    storage = ic.local_filesystem_storage(sample.path)
    before = keys(storage)
    doc = ick.json("gc", "--yes")
    gone = before - keys(storage)
    assert only_experiment <= gone  # plus what the earlier experiment commits held alone
    assert doc["dry_run"] is False and dry["dry_run"] is True
    names = ("snapshots_deleted", "transaction_logs_deleted", "manifests_deleted")
    for name in (*names, "chunks_deleted", "bytes_deleted"):
        assert doc[name] == dry[name], name
    by_prefix = {p: sum(k.startswith(p) for k in gone) for p in ("snapshots/", "chunks/")}
    assert doc["snapshots_deleted"] == by_prefix["snapshots/"] >= 1
    assert doc["chunks_deleted"] == by_prefix["chunks/"] >= 3
    assert doc["attributes_deleted"] == 0 and doc["full"] is True
    assert set(doc) >= {"cut_off", "objects_listed", "manifests_read", "snapshots_read"}
    # Right after, nothing more to do, and the run is an incremental one.
    again = ick.json("gc", "--yes")
    assert again["chunks_deleted"] == again["snapshots_deleted"] == 0
    assert again["full"] is False
    assert ic.Repository.open(storage).verify().ok


def test_human_summary_uses_human_sizes(garbage: tuple[Ick, set[str]]) -> None:
    ick, _ = garbage
    out = ick.ok("gc", "--yes", "--older-than", "2026-01-01T00:00:00Z").stdout
    assert out.startswith("Deleted 0 snapshots")  # nothing was written before that date
    out = ick.ok("gc", "--yes", "--older-than", "1d").stdout
    assert out.startswith("Deleted ") and " KiB)" in out and "(1 day ago)" in out


def test_young_garbage_waits_for_the_grace_period(sample: Sample) -> None:
    storage = ic.local_filesystem_storage(sample.path)
    repo = ic.Repository.open(storage)
    write_chunks(repo, "experiment", "big", 0, 3, 5.0)
    repo.delete_branch("experiment")
    ick = Ick(sample.path)
    assert ick.json("gc", "--yes")["chunks_deleted"] == 0
    age(storage, timedelta(days=8))
    assert ick.json("gc", "--yes")["chunks_deleted"] == 3


@pytest.mark.parametrize("value", ["soon", "7x", "2999-01-01"])
def test_bad_older_than_is_a_usage_error(ick: Ick, value: str) -> None:
    result = ick("gc", "--dry-run", "--older-than", value)
    assert result.exit_code == errors.EXIT_USAGE
    assert "--older-than" in result.stderr


def test_no_repository_is_not_found(tmp_path: Path, bare_ick: Ick) -> None:
    bare_ick.fails(errors.EXIT_NOT_FOUND, "gc", "--dry-run", "-R", str(tmp_path / "nothing"))


def test_damage_exits_5_and_deletes_nothing(garbage: tuple[Ick, set[str]], sample: Sample) -> None:
    ick, _ = garbage
    storage = ic.local_filesystem_storage(sample.path)
    victim = sorted((sample.path / "manifests").iterdir())[0]
    victim.write_bytes(b"broken")
    before = keys(storage)
    ick.fails(errors.EXIT_INTEGRITY, "gc", "--yes")
    assert keys(storage) == before


# --- asking first (real processes: a pipe or a terminal as stdin) ---------------------------

needs_ick = pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")


@needs_ick
@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_gc_in_a_script_needs_yes(
    garbage: tuple[Ick, set[str]], sample: Sample, extra: list[str]
) -> None:
    storage = ic.local_filesystem_storage(sample.path)
    before = keys(storage)
    result = piped(sample.path, "gc", *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and "--yes" in result.stderr and "?" not in result.stderr
    assert keys(storage) == before
    done = piped(sample.path, "gc", "--yes", *extra, answer="")
    assert done.returncode == 0, done.stderr
    assert keys(storage) != before


@needs_ick
def test_gc_at_a_terminal_asks(garbage: tuple[Ick, set[str]], sample: Sample) -> None:
    storage = ic.local_filesystem_storage(sample.path)
    before = keys(storage)
    declined = at_terminal(sample.path, "gc", answer="n\n")
    assert declined.returncode == 1, declined.stderr
    assert "Delete every object no branch or tag reaches" in declined.stderr
    assert "nothing deleted" in declined.stderr and declined.stdout == ""
    assert keys(storage) == before
    accepted = at_terminal(sample.path, "gc", answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("Deleted ")
    assert keys(storage) != before


@needs_ick
def test_end_to_end_dry_run_needs_no_answer(garbage: tuple[Ick, set[str]], sample: Sample) -> None:
    result = subprocess.run(
        [str(ICK), "gc", "--dry-run", "--json", "-R", str(sample.path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"dry_run": true' in result.stdout
