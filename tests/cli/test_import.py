"""``ick commit --from`` with sources that are not what they should be.

A directory that is not a store root, bad ``zarr.json`` files, Zarr v2 leftovers, and imports
that delete groups or arrays: each is refused (or asked about) before the branch moves, with a
message naming the source.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import import_sources
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icechunk_lib as ic

from .conftest import CLEAN_ENV, Ick, Sample
from .test_content import write_store
from .test_e2e import ICK


def _state(ick: Ick) -> tuple[Any, Any]:
    """Every branch tip and main's tree: what a refused import must leave alone."""
    return ick.json("branch", "list"), ick.json("ls", "-r", "-l")


def _json_error(ick: Ick, code: int, *args: str) -> Any:
    """Run with --json, require exit code ``code`` and nothing on stdout; the error document."""
    result = ick(*args, "--json")
    assert (result.exit_code, result.stdout) == (code, ""), result.stderr
    return json.loads(result.stderr)["error"]


def test_a_directory_that_is_not_a_store_root_is_refused(ick: Ick, tmp_path: Path) -> None:
    parent = tmp_path / "data"
    write_store(parent / "one.zarr")
    write_store(parent / "more" / "two.zarr")
    before = _state(ick)
    result = ick.fails(2, "commit", "-m", "x", "--from", str(parent), "--yes")
    assert f"cannot import {parent}: no zarr.json at its top" in result.stderr
    assert f"stores below it: {parent / 'one.zarr'}, {parent / 'more/two.zarr'};" in result.stderr
    assert "--from takes the top directory" in result.stderr
    assert _state(ick) == before

    error = _json_error(ick, 2, "commit", "-m", "x", "--from", str(parent))
    assert error["type"] == "InvalidImportSourceError"
    assert _state(ick) == before


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (
            {"chunk_grid": {"name": "regular", "configuration": {"chunk_shape": ["a"]}}},
            "chunk_grid",
        ),
        ({"chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [0]}}}, "chunk_grid"),
        ({"shape": [-4]}, "shape"),
        ({"data_type": "float1024"}, "data_type"),
        (b'{"zarr_format": 3, "node_', "not JSON"),
    ],
    ids=["chunk-shape-a", "chunk-shape-0", "negative-shape", "dtype", "truncated"],
)
def test_bad_source_metadata_is_an_input_error(
    ick: Ick, tmp_path: Path, damage: dict[str, Any] | bytes, field: str
) -> None:
    source = tmp_path / "s.zarr"
    write_store(source)
    meta = source / "sub" / "counts" / "zarr.json"
    if isinstance(damage, bytes):
        meta.write_bytes(damage)
    else:
        meta.write_text(json.dumps({**json.loads(meta.read_text()), **damage}))
    before = _state(ick)
    result = ick.fails(2, "commit", "-m", "x", "--from", str(source), "--path", "/m")
    assert f"{meta} is not valid Zarr v3 metadata: {field}" in result.stderr
    assert "damaged" not in result.stderr and "backup" not in result.stderr
    assert _state(ick) == before


def test_deleting_groups_and_arrays_needs_yes(ick: Ick, sample: Sample, tmp_path: Path) -> None:
    source = tmp_path / "s.zarr"
    write_store(source)  # /temps, /sub/counts; main also has /weather/precip
    before = _state(ick)
    refused = ick.fails(1, "commit", "-m", "x", "--from", str(source))
    assert f"{source} lacks 2 group(s) or array(s) under /, which the import would delete: " in (
        refused.stderr
    )
    assert "/weather, /weather/precip; nothing was committed; pass --yes" in refused.stderr
    error = _json_error(ick, 1, "commit", "-m", "x", "--from", str(source))
    assert error["type"] == "ImportWouldDeleteError"
    assert _state(ick) == before

    # Into a path of its own nothing is deleted, so nothing is asked.
    ick.ok("commit", "-m", "aside", "--from", str(source), "--path", "/aside")

    done = ick.ok("commit", "-m", "replace", "--from", str(source), "--yes").stdout
    assert "deleted /weather (and 1 below it)" in done.splitlines()
    assert "deleted /aside (and 3 below it)" in done.splitlines()
    assert [n["path"] for n in ick.json("ls")["nodes"]] == ["/sub", "/temps"]

    ick.ok("reset", "main", sample.ids["day4"], "--yes")
    doc = ick.json("commit", "-m", "replace", "--from", str(source), "-y")
    assert doc["committed"] is True
    assert doc["deleted"] == ["/weather", "/weather/precip"]
    # /temps changed rank, so it was replaced: deleted and created, and still there.
    assert (doc["stats"]["groups_deleted"], doc["stats"]["arrays_deleted"]) == (1, 2)


def _ask(args: list[str], answer: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the ick executable with a terminal as its stdin, typing ``answer``."""
    leader, follower = os.openpty()
    try:
        os.write(leader, answer.encode())
        return subprocess.run(
            [str(ICK), *args], stdin=follower, capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")
def test_a_person_at_a_terminal_is_asked(sample: Sample, tmp_path: Path) -> None:
    source = tmp_path / "s.zarr"
    write_store(source)
    env = {k: v for k, v in os.environ.items() if CLEAN_ENV.get(k, "") is not None}
    args = ["commit", "-m", "x", "--from", str(source), "-R", str(sample.path)]
    repo = ic.Repository.open(ic.local_filesystem_storage(str(sample.path)))
    tip = repo.lookup_branch("main")

    no = _ask(args, "n\n", env)
    assert no.returncode == 1, no.stderr
    assert f"{source} lacks 2 group(s) or array(s) under /:\n  /weather (and 1 below it)\n" in (
        no.stderr
    )
    assert "Delete them from main and commit? [y/N]" in no.stderr
    assert "nothing committed; branch 'main' is unchanged" in no.stderr
    assert repo.lookup_branch("main") == tip

    yes = _ask(args, "y\n", env)
    assert yes.returncode == 0, yes.stderr
    assert "deleted /weather (and 1 below it)" in yes.stdout
    assert repo.lookup_branch("main") != tip


def test_v2_nodes_in_the_source_are_named_in_a_warning(ick: Ick, tmp_path: Path) -> None:
    source = tmp_path / "s.zarr"
    write_store(source)
    zarr.open_group(str(source / "sub" / "old"), mode="w", zarr_format=2)
    result = ick.ok("commit", "-m", "x", "--from", str(source), "--path", "/m")
    warning = f"ick: warning: skipped 1 Zarr v2 group(s) or array(s) in {source} "
    assert result.stderr == warning + "(convert them to v3 to import them): sub/old\n"
    doc = ick.json("commit", "-m", "y", "--from", str(source), "--path", "/n")
    assert doc["skipped_v2"] == ["sub/old"]


@pytest.mark.filterwarnings("ignore::zarr.errors.ZarrFutureWarning")
@pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(import_sources.TARGETS), changes=import_sources.mutations)
def test_fuzzed_sources_import_exactly_or_leave_the_branch_alone(
    target: str, changes: list[tuple[str, Any, Any]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, path = Path(tmp) / "src", Path(tmp) / "repo"
        import_sources.write_base(src)
        import_sources.apply(src, target, changes)
        repo = ic.Repository.create(ic.local_filesystem_storage(str(path)))
        tip = repo.lookup_branch("main")
        result = Ick(path)("commit", "-m", "fuzz", "--from", str(src), "--path", "/imported")
        if result.exit_code == 2:
            assert result.stderr.startswith(f"ick: error: cannot import {src}: {src / target} ")
            assert result.stderr.count("\n") == 1
            assert repo.lookup_branch("main") == tip
            return
        assert result.exit_code == 0, result.stderr
        assert repo.lookup_branch("main") != tip
        import_sources.assert_reads_back(src, repo.readonly_session("main").store, "imported/")
