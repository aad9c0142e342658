"""``ick branch``, ``tag``, ``reset``, ``init`` and ``config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import icechunk_lib as ic

from .conftest import Ick, Sample

# --- branch --------------------------------------------------------------------------------------


def test_branch_lists_names_with_their_snapshots(ick: Ick, sample: Sample) -> None:
    doc = ick.json("branch")
    assert [b["name"] for b in doc["branches"]] == ["experiment", "main"]
    main = doc["branches"][1]["snapshot"]
    assert main["id"] == sample.ids["day4"]
    assert set(main) == {"id", "parent_id", "written_at", "message", "metadata"}
    assert ick.json("branch", "list") == doc
    lines = ick.ok("branch").stdout.splitlines()
    assert lines[0].split() == ["branch", "snapshot", "written", "message"]
    assert lines[2].split()[:2] == ["main", sample.ids["day4"]]


def test_branch_create_at_a_ref_and_delete_with_a_restore_hint(ick: Ick, sample: Sample) -> None:
    assert ick.json("branch", "create", "fix", "v1.0") == {
        "branch": "fix",
        "snapshot_id": sample.ids["first"],
    }
    out = ick.ok("branch", "create", "dev")
    assert out.stdout == f"Created branch dev at {sample.ids['day4']}\n"
    deleted = ick.ok("branch", "delete", "fix")
    assert deleted.stdout == f"Deleted branch fix (was {sample.ids['first']})\n"
    hint = f"ick -R {sample.path} branch create fix {sample.ids['first']}"
    assert f"restore it with: {hint}\n" in deleted.stderr
    assert [b["name"] for b in ick.json("branch")["branches"]] == ["dev", "experiment", "main"]


def test_group_options_before_the_subcommand_count(ick: Ick, sample: Sample) -> None:
    result = ick.ok("branch", "-R", str(sample.path), "--json", "create", "x", repo=False)
    assert '"branch": "x"' in result.stdout or '"branch":"x"' in result.stdout


def test_branch_errors(ick: Ick) -> None:
    ick.fails(4, "branch", "create", "experiment")
    ick.fails(3, "branch", "delete", "nope")
    ick.fails(3, "branch", "create", "x", "nope")
    result = ick.fails(1, "branch", "delete", "main")
    assert "main" in result.stderr
    ick.fails(2, "branch", "create", "bad/name")


@pytest.mark.parametrize("name", ["feat~", "main~1"])
def test_names_a_revision_reads_otherwise_are_refused(ick: Ick, name: str) -> None:
    for kind in ("branch", "tag"):
        result = ick.fails(2, kind, "create", name)
        assert f"{name!r}" in result.stderr and "'~'" in result.stderr


def test_a_name_spelling_an_id_prefix_is_addressable(ick: Ick, sample: Sample) -> None:
    prefix = sample.ids["day4"][:6].lower()
    ick.ok("branch", "create", prefix, "v1.0")
    assert ick.json("log", prefix, "-n", "1")["snapshots"][0]["id"] == sample.ids["first"]


# --- tag -----------------------------------------------------------------------------------------


def test_tags_list_create_and_names_are_never_reused(ick: Ick, sample: Sample) -> None:
    doc = ick.json("tag")
    assert [(t["name"], t["snapshot"]["id"]) for t in doc["tags"]] == [
        ("v1.0", sample.ids["first"]),
        ("v1.1", sample.ids["day4"]),
    ]
    assert ick.json("tag", "create", "exp", "experiment") == {
        "tag": "exp",
        "snapshot_id": sample.ids["exp2"],
    }
    ick.fails(4, "tag", "create", "exp")
    deleted = ick.ok("tag", "delete", "exp", "--yes")
    assert deleted.stdout == f"Deleted tag exp (was {sample.ids['exp2']})\n"
    assert "cannot be used" in deleted.stderr
    result = ick.fails(4, "tag", "create", "exp", "main")
    assert "reused" in result.stderr
    ick.fails(3, "tag", "delete", "exp", "--yes")
    assert [t["name"] for t in ick.json("tag", "list")["tags"]] == ["v1.0", "v1.1"]


# --- reset ---------------------------------------------------------------------------------------


def test_reset_with_yes_moves_the_branch_and_prints_the_undo(ick: Ick, sample: Sample) -> None:
    out = ick.ok("reset", "main", "v1.0", "--yes").stdout.splitlines()
    assert out[0] == f"Moved branch main from {sample.ids['day4']} to {sample.ids['first']}"
    assert out[1] == f"undo with: ick -R {sample.path} reset --yes main {sample.ids['day4']}"
    assert ick.json("log", "-n", "1")["snapshots"][0]["id"] == sample.ids["first"]
    undo = out[1].removeprefix("undo with: ick ").split()
    assert ick.json(*undo) == {
        "branch": "main",
        "previous_id": sample.ids["first"],
        "snapshot_id": sample.ids["day4"],
        "moved": True,
    }


def test_reset_without_a_terminal_needs_yes(ick: Ick, sample: Sample) -> None:
    """Asking happens only at a terminal (tests/cli/test_confirmation.py); a script's input
    is never read as the answer."""
    for answer in ("y\n", "n\n", None):
        refused = ick("reset", "main", "v1.0", input=answer)
        assert refused.exit_code == 2
        assert "pass --yes" in refused.stderr
        assert "Move branch" not in refused.stderr
    assert ick.json("log", "-n", "1")["snapshots"][0]["id"] == sample.ids["day4"]


def test_reset_to_where_the_branch_is_does_nothing(ick: Ick, sample: Sample) -> None:
    doc = ick.json("reset", "main", "v1.1")
    assert doc["moved"] is False
    assert "already at" in ick.ok("reset", "main", "v1.1").stdout


def test_reset_is_compare_and_swap(
    ick: Ick, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit landing between reading the branch and moving it wins; reset exits 4."""
    real = ic.Repository.lookup_branch

    def lookup_then_race(self: ic.Repository, name: str) -> str:
        found = real(self, name)
        self.reset_branch(name, sample.ids["exp2"])  # another writer moves the branch
        return found

    monkeypatch.setattr(ic.Repository, "lookup_branch", lookup_then_race)
    result = ick.fails(4, "reset", "main", "v1.0", "--yes")
    assert "moved meanwhile" in result.stderr
    monkeypatch.undo()
    assert ick.json("log", "-n", "1")["snapshots"][0]["id"] == sample.ids["exp2"]


# --- init ----------------------------------------------------------------------------------------


def test_init_creates_a_repository_and_refuses_a_non_empty_location(
    bare_ick: Ick, tmp_path: Path
) -> None:
    target = tmp_path / "new"
    doc = bare_ick.json("init", str(target))
    assert doc["branch"] == "main"
    assert ic.Repository.exists(ic.local_filesystem_storage(target))
    log = bare_ick.json("log", "-R", str(target))
    assert log["snapshots"][0]["id"] == doc["snapshot_id"]
    assert log["snapshots"][0]["message"] == "Repository initialized"
    bare_ick.fails(4, "init", str(target))
    other = tmp_path / "occupied"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    bare_ick.fails(4, "init", str(other))


def test_init_takes_a_file_url_or_r(bare_ick: Ick, tmp_path: Path) -> None:
    result = bare_ick.ok("init", (tmp_path / "a").as_uri())
    assert result.stdout.startswith("Initialized empty ick repository in ")
    bare_ick.ok("init", "-R", str(tmp_path / "b"))
    assert ic.Repository.exists(ic.local_filesystem_storage(tmp_path / "b"))
    bare_ick.fails(2, "init", str(tmp_path / "c"), "-R", str(tmp_path / "d"))
    bare_ick.fails(2, "init", "nosuchscheme://x")


# --- config --------------------------------------------------------------------------------------


def test_config_alone_shows_like_tag_and_branch_list(ick: Ick, sample: Sample) -> None:
    """`ick config` is `ick config show`, with --json before or after the group."""
    assert ick.ok("config").stdout == ick.ok("config", "show").stdout
    shown = ick.json("config", "show")
    assert json.loads(ick.ok("--json", "config").stdout) == shown
    assert json.loads(ick.ok("config", "--json").stdout) == shown


def test_config_show_and_set(ick: Ick, sample: Sample) -> None:
    doc = ick.json("config", "show")
    assert doc["config"]["compression"]["level"] == 3
    lines = ick.ok("config", "show").stdout.splitlines()
    assert lines[0].split() == ["key", "value"]
    assert ["compression.level", "3"] in [line.split() for line in lines]
    assert ick.json("config", "set", "compression.level", "7") == {
        "key": "compression.level",
        "value": 7,
        "previous": 3,
    }
    saved = ic.Repository.fetch_config(ic.local_filesystem_storage(sample.path))
    assert saved is not None
    assert saved.compression.level == 7
    out = ick.ok("config", "set", "inline_chunk_threshold_bytes", "1024").stdout
    assert out == "inline_chunk_threshold_bytes = 1024  (was 512)\n"
    ick.fails(2, "config", "set", "no.such.key", "1")
    ick.fails(2, "config", "set", "compression.level", "many")
    ick.fails(2, "config", "set", "compression.level", "99")
