"""``ick log``, ``show``, ``diff`` and ``reflog`` on the sample repository, in both layouts."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from .conftest import Ick, Sample

RELATIVE = re.compile(r"just now|\d+ minutes? ago")

MAIN = ["day4", "day3", "first", "init"]


def ids_of(doc: dict[str, list[dict[str, str]]]) -> list[str]:
    return [s["id"] for s in doc["snapshots"]]


# --- log -----------------------------------------------------------------------------------------


def test_log_json_lists_main_newest_first_with_snapshot_info_fields(
    ick: Ick, sample: Sample
) -> None:
    doc = ick.json("log")
    assert ids_of(doc) == [sample.ids[k] for k in MAIN]
    first = doc["snapshots"][2]
    assert set(first) == {
        "id",
        "parent_id",
        "written_at",
        "message",
        "metadata",
        "branches",
        "tags",
    }
    assert first["parent_id"] == sample.ids["init"]
    assert first["metadata"] == {"author": "ana"}
    assert first["tags"] == ["v1.0"]
    assert dt.datetime.fromisoformat(first["written_at"]).tzinfo is not None
    assert doc["snapshots"][0]["branches"] == ["main"]
    assert doc["snapshots"][-1]["parent_id"] is None


def test_log_plain_blocks_show_full_ids_and_iso_times(ick: Ick, sample: Sample) -> None:
    out = ick.ok("log").stdout
    assert f"snapshot {sample.ids['day4']} (main, tag: v1.1)" in out
    assert f"parent   {sample.ids['day3']}" in out
    assert "author: ana" in out
    assert "    Add day 4\n\n    With a longer body." in out
    assert "+00:00" in out
    assert "\x1b[" not in out


def test_log_oneline_and_limit(ick: Ick, sample: Sample) -> None:
    out = ick.ok("log", "--oneline", "-n", "2").stdout
    assert out.splitlines() == [
        f"{sample.ids['day4']} (main, tag: v1.1) Add day 4",
        f"{sample.ids['day3']} Add day 3",
    ]
    assert ick.ok("log", "-n", "0").stdout == ""
    assert ids_of(ick.json("log", "--max-count", "1")) == [sample.ids["day4"]]


def test_log_of_a_tag_a_prefix_and_a_parent(ick: Ick, sample: Sample) -> None:
    assert ids_of(ick.json("log", "v1.0")) == [sample.ids["first"], sample.ids["init"]]
    assert ids_of(ick.json("log", sample.ids["day3"][:6].lower()))[0] == sample.ids["day3"]
    assert ids_of(ick.json("log", "main~2"))[0] == sample.ids["first"]
    assert ids_of(ick.json("log", "experiment~1"))[0] == sample.ids["exp1"]


def test_log_all_lists_every_snapshot_once_children_before_parents(
    ick: Ick, sample: Sample
) -> None:
    doc = ick.json("log", "--all")
    ids = ids_of(doc)
    assert sorted(ids) == sorted(sample.ids.values())
    pos = {sid: i for i, sid in enumerate(ids)}
    for snap in doc["snapshots"]:
        if snap["parent_id"] is not None:
            assert pos[snap["id"]] < pos[snap["parent_id"]]
    by_id = {s["id"]: s for s in doc["snapshots"]}
    assert by_id[sample.ids["exp2"]]["branches"] == ["experiment"]


def test_log_graph_all_draws_lanes_forks_and_labels(ick: Ick, sample: Sample) -> None:
    lines = ick.ok("log", "--graph", "--all").stdout.splitlines()
    ids = sample.ids
    # Two tips in two lanes, the fork back into one lane, then shared history.
    assert lines[0] == f"* {ids['exp2']} (experiment) Drop temps"
    assert lines[1] == f"| * {ids['day4']} (main, tag: v1.1) Add day 4"
    assert lines[2] == f"* | {ids['exp1']} Try a coarser precip"
    assert lines[3] == "|/"
    assert lines[4] == f"* {ids['day3']} Add day 3"
    assert lines[5] == f"* {ids['first']} (tag: v1.0) Add temps and weather"
    assert lines[6] == f"* {ids['init']} Repository initialized"
    assert len(lines) == 7


def test_log_graph_on_a_terminal_has_colour_short_ids_and_relative_times(
    ick: Ick, sample: Sample
) -> None:
    out = ick.ok("log", "--graph", "--all", env={"ICK_TERMINAL": "1"}).stdout
    assert "\x1b[" in out
    assert sample.ids["exp2"][:8] in out
    assert sample.ids["exp2"] not in out
    assert RELATIVE.search(out)  # the sample was written a moment ago


def test_log_without_repo_walks_up_from_the_current_directory(
    bare_ick: Ick, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample.path / "refs")
    assert ids_of(bare_ick.json("log", "-n", "1")) == [sample.ids["day4"]]


def test_log_uses_ick_repo_when_no_option(bare_ick: Ick, sample: Sample) -> None:
    doc = bare_ick.json("log", "-n", "1", env={"ICK_REPO": str(sample.path)})
    assert ids_of(doc) == [sample.ids["day4"]]


# --- show ----------------------------------------------------------------------------------------


def test_show_json_has_the_snapshot_and_its_changes(ick: Ick, sample: Sample) -> None:
    doc = ick.json("show", "v1.0")
    assert doc["snapshot"]["id"] == sample.ids["first"]
    assert doc["snapshot"]["tags"] == ["v1.0"]
    changes = doc["changes"]
    assert changes["from"] == sample.ids["init"]
    assert changes["to"] == sample.ids["first"]
    assert changes["arrays"]["added"] == ["/temps", "/weather/precip"]
    assert "/weather" in changes["groups"]["added"]
    temps = next(c for c in changes["chunks"] if c["path"] == "/temps")
    assert temps["count"] == 2
    assert temps["coords"] == [[0, 0, 0], [1, 0, 0]]


def test_show_plain_and_the_first_snapshot(ick: Ick, sample: Sample) -> None:
    out = ick.ok("show", "experiment").stdout
    assert f"snapshot {sample.ids['exp2']} (experiment)" in out
    assert "deleted  array  /temps" in out
    assert "1 array deleted" in out
    doc = ick.json("show", sample.ids["init"])
    assert doc["changes"] is None
    assert doc["snapshot"]["parent_id"] is None


# --- diff ----------------------------------------------------------------------------------------


def test_diff_of_one_revision_is_what_its_snapshot_changed(ick: Ick, sample: Sample) -> None:
    doc = ick.json("diff", "main")
    assert (doc["from"], doc["to"]) == (sample.ids["day3"], sample.ids["day4"])
    assert doc["chunks"] == [{"path": "/temps", "count": 1, "coords": [[3, 0, 0]]}]
    assert doc["arrays"] == {"added": [], "deleted": [], "updated": []}
    assert doc["moved"] == []
    assert doc["stat"]["chunks_changed"] == 1


def test_diff_between_two_branches_and_stat(ick: Ick, sample: Sample) -> None:
    doc = ick.json("diff", "main", "experiment")
    assert doc["arrays"]["deleted"] == ["/temps"]
    assert doc["chunks"][0]["path"] == "/weather/precip"
    stat = ick.json("diff", "main", "experiment", "--stat")
    assert "arrays" not in stat
    assert stat["chunks"] == [{"path": "/weather/precip", "count": 1}]
    assert stat["stat"]["arrays_deleted"] == 1
    out = ick.ok("diff", "main", "experiment", "--stat").stdout
    assert "/weather/precip  1" in out.replace("       ", "  ")
    assert out.rstrip().endswith("1 array deleted, 1 chunk changed in 1 array")


def test_diff_plain_table(ick: Ick, sample: Sample) -> None:
    out = ick.ok("diff", "v1.0", "main").stdout.splitlines()
    assert out[0] == f"from {sample.ids['first']} to {sample.ids['day4']}"
    assert out[1].split() == ["change", "kind", "path", "chunks"]
    assert out[2].split() == ["written", "array", "/temps", "2"]
    assert out[3] == "2 chunks changed in 1 array"


def test_diff_identical_and_first_snapshot(ick: Ick, sample: Sample) -> None:
    assert "no changes" in ick.ok("diff", "v1.1", "main").stdout
    doc = ick.json("diff", sample.ids["init"])
    assert doc["from"] is None
    assert doc["stat"]["chunks_changed"] == 0


# --- reflog --------------------------------------------------------------------------------------


def test_reflog_lists_every_position_newest_first(ick: Ick, sample: Sample) -> None:
    doc = ick.json("reflog", "main")
    assert doc["branch"] == "main"
    entries = doc["entries"]
    assert [e["snapshot_id"] for e in entries] == [sample.ids[k] for k in MAIN]
    assert [e["action"] for e in entries] == ["commit", "commit", "commit", "create"]
    assert entries[0]["previous_id"] == sample.ids["day3"]
    assert set(entries[0]) == {"snapshot_id", "previous_id", "at", "action", "message"}
    ick.ok("reset", "main", "v1.0", "--yes")
    entries = ick.json("reflog")["entries"]
    assert entries[0]["action"] == "reset"
    assert entries[0]["snapshot_id"] == sample.ids["first"]
    assert entries[0]["previous_id"] == sample.ids["day4"]
    plain = ick.ok("reflog", "-n", "1").stdout.splitlines()
    assert plain[0].split()[:4] == ["when", "action", "snapshot", "previous"]
    assert plain[1].split()[1:4] == ["reset", sample.ids["first"], sample.ids["day4"]]
