"""``ick expire``: the cut-off, dry runs, the flags, --json, and asking before changing anything.

The sample repository (conftest)::

    main:        init -- first (tag v1.0) -- day3 -- day4 (tag v1.1)
    experiment:                               day3 -- exp1 -- exp2
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import icechunk_lib as ic

from .conftest import Ick, Sample
from .test_confirmation import at_terminal, piped
from .test_e2e import run


def _repo(sample: Sample) -> ic.Repository:
    return ic.Repository.open(ic.local_filesystem_storage(str(sample.path)))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _at(sample: Sample, name: str) -> str:
    """The write time of a sample snapshot, as an ISO cut-off."""
    return _repo(sample).lookup_snapshot(sample.ids[name]).written_at.isoformat()


def test_dry_run_lists_what_the_run_releases_and_changes_nothing(ick: Ick, sample: Sample) -> None:
    before = _files(sample.path)
    cut = _at(sample, "day4")
    dry = ick.json("expire", "--older-than", cut, "--dry-run")
    assert _files(sample.path) == before
    assert dry["dry_run"] is True and dry["record_id"] is None
    ids = sample.ids
    # day4 is main's tip, exp2 experiment's, first and day4 tagged: exp1 and day3 go
    assert sorted(dry["released"]) == sorted([ids["day3"], ids["exp1"]])
    real = ick.json("expire", "--older-than", cut, "--yes")
    assert real["released"] == dry["released"]
    assert real["reparented"] == dry["reparented"]
    assert real["dry_run"] is False and real["record_id"]


def test_human_output_names_each_released_snapshot(ick: Ick, sample: Sample) -> None:
    out = ick.ok("expire", "--older-than", _at(sample, "day4"), "--dry-run").stdout
    assert out.startswith("Would release 2 snapshot(s) older than ")
    assert sample.ids["day3"] in out and sample.ids["exp1"] in out
    assert "Nothing was changed (dry run)." in out
    out = ick.ok("expire", "--older-than", _at(sample, "day4"), "--yes").stdout
    assert out.startswith("Released 2 snapshot(s)")
    assert "`ick gc` reclaims the space" in out


def test_flags_delete_refs_whose_tip_is_released(ick: Ick, sample: Sample) -> None:
    cut = _at(sample, "exp2")
    doc = ick.json(
        "expire", "--older-than", cut, "--yes", "--delete-expired-branches", "--delete-expired-tags"
    )
    ids = sample.ids
    # exp2 itself is not older than the cut-off, so experiment stays; v1.0 goes, v1.1 is
    # main's tip (always kept) and stays
    assert doc["deleted_branches"] == []
    assert doc["deleted_tags"] == ["v1.0"]
    assert ids["first"] in doc["released"]
    repo = _repo(sample)
    assert repo.list_tags() == {"v1.1"}
    assert repo.list_branches() == {"main", "experiment"}
    later = repo.lookup_snapshot(ids["exp2"]).written_at + dt.timedelta(microseconds=1)
    # a cut-off after every commit: experiment's tip is released with the branch flag
    doc = ick.json(
        "expire", "--older-than", later.isoformat(), "--yes", "--delete-expired-branches"
    )
    assert doc["deleted_branches"] == ["experiment"]
    assert ids["exp2"] in doc["released"]
    assert _repo(sample).list_branches() == {"main"}


def test_after_expiry_log_goes_to_the_first_snapshot_and_verify_is_clean(
    ick: Ick, sample: Sample
) -> None:
    ick.ok("expire", "--older-than", _at(sample, "day4"), "--yes")
    log = [e["id"] for e in ick.json("log", "experiment")["snapshots"]]
    assert log == [sample.ids["exp2"], sample.ids["init"]]
    log = [e["id"] for e in ick.json("log", "main")["snapshots"]]
    # day4's parent day3 is released: like every kept snapshot whose parent is, day4 now
    # has the first snapshot as parent (v1.0's snapshot is kept, but not in between)
    assert log == [sample.ids["day4"], sample.ids["init"]]
    assert ick.json("log", "v1.0")["snapshots"][-1]["id"] == sample.ids["init"]
    assert ick.json("verify")["ok"] is True


def test_without_a_terminal_it_refuses_without_yes(ick: Ick, sample: Sample) -> None:
    before = _files(sample.path)
    result = ick("expire", "--older-than", _at(sample, "day4"))
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    result = ick("expire", "--older-than", _at(sample, "day4"), "--json")
    assert result.exit_code == 2
    assert _files(sample.path) == before


@pytest.mark.parametrize("value", ["soon", "30x", "2999-01-01"])
def test_a_bad_cutoff_is_a_usage_error(ick: Ick, value: str) -> None:
    result = ick("expire", "--older-than", value, "--yes")
    assert result.exit_code == 2
    assert "--older-than" in result.stderr


def test_no_repository_is_not_found(tmp_path: Path, bare_ick: Ick) -> None:
    bare_ick.fails(3, "-R", str(tmp_path / "nothing"), "expire", "--older-than", "1d", "--yes")


def test_nothing_old_enough_releases_nothing(ick: Ick) -> None:
    doc = ick.json("expire", "--older-than", "30d", "--yes")
    assert doc["released"] == [] and doc["record_id"] is None


def test_at_a_terminal_it_asks_and_a_no_changes_nothing(sample: Sample) -> None:
    cut = _at(sample, "day4")
    before = _files(sample.path)
    refused = at_terminal(sample.path, "expire", "--older-than", cut, answer="n\n")
    assert refused.returncode == 1, refused.stderr
    assert "Would release 2 snapshot(s)" in refused.stderr
    assert _files(sample.path) == before
    agreed = at_terminal(sample.path, "expire", "--older-than", cut, answer="y\n")
    assert agreed.returncode == 0, agreed.stderr
    assert agreed.stdout.startswith("Released 2 snapshot(s)")


def test_a_script_gets_exit_2_and_its_input_is_not_read(sample: Sample) -> None:
    result = piped(sample.path, "expire", "--older-than", _at(sample, "day4"))
    assert result.returncode == 2
    assert "--yes" in result.stderr


def test_the_executable_prints_json_and_progress_goes_to_stderr(sample: Sample) -> None:
    result = run(
        "-R",
        str(sample.path),
        "expire",
        "--older-than",
        _at(sample, "day4"),
        "--yes",
        "--json",
        env={"ICK_TERMINAL": "1"},
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["released"]) == 2
    assert "snapshots" in result.stderr  # the progress bar, drawn for a terminal
