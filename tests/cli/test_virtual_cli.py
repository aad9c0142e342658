"""``ick`` on a repository with virtual chunks: ls -l and stats count them, verify checks
them without reading their sources, and diff, show and log work as for any chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zarr
from virtual_mixed import Mixed, build

from icechunk_cli.errors import EXIT_INTEGRITY

from .conftest import CLEAN_ENV, Ick

ICK = Path(sys.executable).with_name("ick")


@pytest.fixture
def mixed(tmp_path: Path) -> Mixed:
    return build(tmp_path)


@pytest.fixture
def ick(mixed: Mixed) -> Ick:
    return Ick(mixed.repo_path)


def _lengths(m: Mixed) -> tuple[int, int]:
    return m.ranges[0][1], m.ranges[1][1]


def test_ls_long_shows_how_many_chunks_are_virtual(ick: Ick, mixed: Mixed) -> None:
    l2, l3 = _lengths(mixed)
    session = mixed.repo.writable_session("main")
    zarr.create_array(session.store, name="plain", shape=(2,), chunks=(1,), dtype="i1")[:] = 1
    session.commit("an array without virtual chunks")
    [node, plain] = ick.json("ls", "-l")["nodes"]
    assert node["path"] == "/mixed" and node["chunks_written"] == 4
    assert (node["native_chunks"], node["inline_chunks"], node["virtual_chunks"]) == (1, 1, 2)
    assert node["virtual_bytes"] == l2 + l3
    assert (plain["virtual_chunks"], plain["virtual_bytes"], plain["inline_chunks"]) == (0, 0, 2)

    lines = ick.ok("ls", "-l").stdout.splitlines()
    assert lines[0].split() == ["path", "shape", "dtype", "chunks", "written", "bytes", "virtual"]
    assert lines[1].split()[0] == "/mixed" and lines[1].split()[-1] == "2"
    assert lines[1].split()[4] == "4"
    assert lines[2].split()[0] == "/plain" and lines[2].split()[-1] == "0"
    # Without virtual chunks in the listing, no virtual column.
    assert ick.ok("ls", "-l", "/plain").stdout.splitlines()[0].split()[-1] == "bytes"
    # Without -l nothing is counted.
    assert ick.json("ls")["nodes"][0]["virtual_chunks"] is None


def test_stats_show_virtual_bytes_and_chunks(ick: Ick, mixed: Mixed) -> None:
    l2, l3 = _lengths(mixed)
    # A second snapshot on a tag names one of the same ranges again.
    session = mixed.repo.writable_session("main")
    o2 = mixed.ranges[0][0]
    session.store.set_virtual_ref("mixed/c/3/0", mixed.blob, offset=o2, length=l2)
    session.commit("row 3 names row 2's range")
    mixed.repo.create_tag("first", mixed.first)

    doc = ick.json("stats")
    assert doc["total"]["virtual_bytes"] == l2 + l3
    assert doc["total"]["virtual_chunks"] == 2
    tip, first = doc["snapshots"][0], doc["snapshots"][1]
    assert tip["only_here"]["virtual_chunks"] == 0  # its one range is the tag's too
    assert first["only_here"]["virtual_bytes"] == l3
    assert tip["size"]["virtual_chunks"] == 2 and tip["size"]["virtual_bytes"] == 2 * l2

    out = ick.ok("stats").stdout.splitlines()
    header = out[0].split()
    assert "virtual" in header
    assert out[-1].startswith("total: ")
    assert f"{l2 + l3} virtual (in 2 virtual chunks)" in out[-1]

    arrays = ick.json("stats", "--by", "array")["arrays"]
    assert arrays == [
        {
            "path": "/mixed",
            "size": {
                **arrays[0]["size"],
                "chunks": 4,
                "virtual_chunks": 2,
                "virtual_bytes": 2 * l2,
            },
        }
    ]
    text = ick.ok("stats", "--by", "array").stdout.splitlines()
    assert text[0].split() == ["array", "chunks", "native", "inline", "virtual"]
    assert text[1].split()[0] == "/mixed" and text[1].split()[-1] == str(2 * l2)
    refs = {r["name"]: r for r in ick.json("stats", "--by", "branch")["refs"]}
    # main's history holds the tagged snapshot too: both ranges, each once.
    assert refs["main"]["size"]["virtual_bytes"] == l2 + l3 and refs["main"]["snapshots"] == 3
    assert refs["first"]["size"]["virtual_bytes"] == l2 + l3 and refs["first"]["snapshots"] == 2


def test_verify_counts_virtual_chunks_and_reports_an_undeclared_location(
    ick: Ick, mixed: Mixed
) -> None:
    doc = ick.json("verify")
    assert doc["ok"] and doc["checked"]["virtual_chunks"] == 2
    assert doc["checked"]["virtual_locations"] == 1 and doc["checked"]["chunks"] == 1
    out = ick.ok("verify").stdout
    assert "2 virtual chunks, 1 virtual locations" in out and "sources not read" in out

    session = mixed.repo.writable_session("main")
    undeclared = "https://example.com/data/far.nc"
    session.store.set_virtual_ref(
        "mixed/c/0/0", undeclared, offset=0, length=10, validate_container=False
    )
    session.commit("a ref outside every container")
    result = ick("verify", "--json")
    assert result.exit_code == EXIT_INTEGRITY
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["kind"] == "virtual_chunk" and problem["key"] == undeclared
    assert "no virtual chunk container" in problem["message"]
    text = ick("verify")
    assert text.exit_code == EXIT_INTEGRITY
    assert undeclared in text.stdout and "1 problem(s) found" in text.stdout


def test_diff_show_and_log_with_virtual_chunks(ick: Ick, mixed: Mixed) -> None:
    o2, l2 = mixed.ranges[0]
    session = mixed.repo.writable_session("main")
    session.store.set_virtual_ref("mixed/c/2/0", mixed.blob, offset=o2, length=l2, checksum='"e"')
    second = session.commit("row 2 remade with an ETag")

    doc = ick.json("diff", mixed.first, second)
    assert doc["chunks"] == [{"path": "/mixed", "count": 1, "coords": [[2, 0]]}]
    assert "1 chunk changed in 1 array" in ick.ok("diff", mixed.first, second, "--stat").stdout
    shown = ick.json("show")
    assert shown["snapshot"]["id"] == second
    assert shown["changes"]["chunks"][0]["path"] == "/mixed"
    assert "/mixed" in ick.ok("show").stdout
    log = ick.json("log")
    assert [e["id"] for e in log["snapshots"][:2]] == [second, mixed.first]
    assert "row 2 remade with an ETag" in ick.ok("log").stdout


@pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")
def test_the_ick_executable_lists_stats_and_verifies(mixed: Mixed) -> None:
    environ = {k: v for k, v in os.environ.items() if CLEAN_ENV.get(k, "") is not None}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ICK), "-R", str(mixed.repo_path), *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
        )

    listed = run("ls", "-l", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["nodes"][0]["virtual_chunks"] == 2
    stats = run("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total"]["virtual_chunks"] == 2
    verified = run("verify")
    assert verified.returncode == 0 and "2 virtual chunks" in verified.stdout
