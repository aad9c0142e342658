"""``ick stats``: exact bytes with --json and when piped, human sizes on a terminal, the bytes
only each snapshot holds, and damage reported as an integrity error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import icechunk_lib as ic
from icechunk_cli import errors

from .conftest import Ick, Sample
from .test_e2e import run

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CHUNK = 250 * 8
"""Bytes of one chunk of the ``native`` fixture's array: 250 float64, uncompressed."""


@pytest.fixture
def native(tmp_path: Path) -> Ick:
    """Four native chunks on main; a branch ``b`` that rewrote one of them."""
    import numpy as np
    import zarr

    path = tmp_path / "native"
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)))
    session = repo.writable_session("main")
    array = zarr.create_array(
        session.store, name="a", shape=(1000,), chunks=(250,), dtype="f8", compressors=None
    )
    array[:] = np.arange(1000.0)
    first = session.commit("four native chunks")
    repo.create_branch("b", first)
    session = repo.writable_session("b")
    zarr.open_array(session.store, path="a")[:250] = -1.0
    session.commit("one rewritten")
    return Ick(path)


def _chunk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "chunks").iterdir())


def test_json_has_exact_bytes(native: Ick) -> None:
    assert native.repo is not None
    doc = native.json("stats")
    assert doc["by"] == "snapshot" and doc["snapshot_id"] is None
    assert doc["total"]["native_bytes"] == 5 * CHUNK == _chunk_bytes(native.repo)
    assert doc["total"]["chunks"] == 5
    rows = {s["message"]: s for s in doc["snapshots"]}
    assert rows["one rewritten"]["size"]["native_bytes"] == 4 * CHUNK
    assert rows["one rewritten"]["only_here"]["native_bytes"] == CHUNK
    assert rows["one rewritten"]["refs"] == ["branch b"]
    # main's first chunk was rewritten only on b: main's tip still holds it alone.
    assert rows["four native chunks"]["only_here"]["native_bytes"] == CHUNK
    assert doc["metadata"]["snapshots"] == 3


def test_branch_and_array_views(native: Ick) -> None:
    refs = {r["name"]: r for r in native.json("stats", "--by", "branch")["refs"]}
    assert refs["main"]["size"]["native_bytes"] == 4 * CHUNK
    assert refs["b"]["size"]["native_bytes"] == 5 * CHUNK  # its history: shared counted once
    assert refs["b"]["snapshots"] == 3
    doc = native.json("stats", "b", "--by", "array")
    assert doc["arrays"] == [
        {
            "path": "/a",
            "size": {
                "chunks": 4,
                "native_bytes": 4 * CHUNK,
                "inlined_bytes": 0,
                "virtual_bytes": 0,
                "virtual_chunks": 0,
                "non_virtual_bytes": 4 * CHUNK,
                "total_bytes": 4 * CHUNK,
            },
        }
    ]
    assert doc["snapshot_id"] == native.json("log", "b", "-n", "1")["snapshots"][0]["id"]


def test_piped_table_has_exact_bytes_and_a_totals_line(native: Ick) -> None:
    out = native.ok("stats").stdout.splitlines()
    assert out[0].split()[:4] == ["snapshot", "written", "refs", "chunks"]
    assert "only here" in out[0]
    assert out[-1].startswith(f"total: 5 chunks, {5 * CHUNK} native, 0 inline, 0 virtual;")
    assert any(str(CHUNK) in line and "one rewritten" in line for line in out)


def test_terminal_table_shows_human_sizes(native: Ick) -> None:
    result = native.ok("stats", env={"ICK_TERMINAL": "1", "COLUMNS": "100"})
    text = ANSI.sub("", result.stdout)
    assert "only here" in text
    assert "7.8 KiB" in text  # 4 chunks of 2000 bytes
    assert "2.0 KiB" in text  # one chunk only b's tip holds
    assert "total: 5 chunks, 9.8 KiB native" in " ".join(text.split())


def test_a_rev_limits_the_snapshot_view(native: Ick) -> None:
    doc = native.json("stats", "main")
    assert [s["message"] for s in doc["snapshots"]] == [
        "four native chunks",
        "Repository initialized",
    ]


def test_branch_view_takes_no_rev(native: Ick) -> None:
    result = native("stats", "main", "--by", "branch")
    assert result.exit_code == 2
    assert "give no REV" in result.stderr


def test_unknown_revision_is_not_found(native: Ick) -> None:
    native.fails(errors.EXIT_NOT_FOUND, "stats", "nope", "--by", "array")


def test_missing_manifest_is_an_integrity_error_naming_it(native: Ick) -> None:
    assert native.repo is not None
    victim = sorted((native.repo / "manifests").iterdir())[0]
    victim.unlink()
    result = native.fails(errors.EXIT_INTEGRITY, "stats")
    assert f"manifests/{victim.name}" in result.stderr


def test_sample_repository(ick: Ick, sample: Sample) -> None:
    """Every chunk of the sample is reachable, so the totals match what is stored."""
    doc = ick.json("stats", "--by", "branch")
    stored = sum(p.stat().st_size for p in (sample.path / "chunks").glob("*"))
    assert doc["total"]["native_bytes"] == stored
    names = [(r["kind"], r["name"]) for r in doc["refs"]]
    assert names == [("branch", "experiment"), ("branch", "main"), ("tag", "v1.0"), ("tag", "v1.1")]


def test_end_to_end_json_and_no_progress_when_piped(native: Ick) -> None:
    assert native.repo is not None
    result = run("stats", "--by", "branch", "--json", "-R", str(native.repo))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert '"native_bytes": 10000' in result.stdout


def test_empty_repository(bare_ick: Ick, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    bare_ick.ok("init", str(path))
    doc = bare_ick.json("stats", "-R", str(path))
    assert doc["total"] == {
        "chunks": 0,
        "native_bytes": 0,
        "inlined_bytes": 0,
        "virtual_bytes": 0,
        "virtual_chunks": 0,
        "non_virtual_bytes": 0,
        "total_bytes": 0,
    }
    [root] = doc["snapshots"]
    assert root["refs"] == ["branch main"] and root["only_here"]["chunks"] == 0
    assert bare_ick.json("stats", "--by", "array", "-R", str(path))["arrays"] == []
    out = bare_ick.ok("stats", "-R", str(path)).stdout
    assert out.splitlines()[-1].startswith("total: 0 chunks, 0 native, 0 inline, 0 virtual;")
