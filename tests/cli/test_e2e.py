"""End-to-end: the installed ``ick`` executable on temporary repositories, start-up cost,
history reads, shell completion and the generated files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import icechunk_lib as ic

from .conftest import CLEAN_ENV, Ick, Sample
from .test_content import write_store

ICK = Path(sys.executable).with_name("ick")
ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "zarr", "s3fs", "fsspec", "pandas", "xarray")

pytestmark = pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if CLEAN_ENV.get(k, "") is not None}
    environ.update(env or {})
    return subprocess.run(
        [str(ICK), *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=60
    )


def imported(*args: str, cwd: Path | None = None) -> set[str]:
    """Top-level packages ``ick ARGS`` imports (from ``python -X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ICK), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_help_imports_nothing_heavy_and_starts_fast() -> None:
    modules = imported("--help")
    assert "icechunk_lib" not in modules
    assert not modules & set(HEAVY)
    result = run("--help")  # speed itself is measured by the benchmarks, not asserted here
    assert result.returncode == 0
    for word in ("log", "commit", "branch", "--install-completion", "Exit codes"):
        assert word in result.stdout


def test_log_imports_no_array_libraries(sample: Sample) -> None:
    modules = imported("log", "-n", "20", "-R", str(sample.path))
    assert "icechunk_lib" in modules
    assert not modules & set(HEAVY)


def test_walkthrough_with_a_store_written_by_zarr(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert run("init", str(repo)).returncode == 0
    source = tmp_path / "source.zarr"
    root = write_store(source)

    first = run("commit", "-m", "Import", "--from", str(source), "--json", cwd=repo)
    assert first.returncode == 0, first.stderr
    stats = json.loads(first.stdout)["stats"]
    assert stats["chunks_written"] == 12

    root["sub/counts"][15] = -1  # one chunk of one array changes
    second = run("commit", "-m", "Fix a count", "--from", str(source), "--json", cwd=repo)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["stats"]["chunks_written"] == 1
    assert again["stats"]["chunks_unchanged"] == 11
    assert again["stats"]["arrays_created"] == 0

    env = {"ICK_REPO": str(repo)}
    assert run("tag", "create", "v1", "main~1", env=env).returncode == 0
    assert run("branch", "create", "dev", "v1", env=env).returncode == 0
    graph = run("log", "--graph", "--all", env=env)
    assert graph.returncode == 0
    assert "(main) Fix a count" in graph.stdout
    assert "(dev, tag: v1) Import" in graph.stdout
    diff = run("diff", "v1", "main", env=env)
    assert diff.stdout.splitlines()[2].split() == ["written", "array", "/sub/counts", "1"]
    listing = run("ls", "-l", "-r", env=env)
    assert "/sub/counts" in listing.stdout
    reset = run("reset", "main", "v1", "--yes", env=env)
    assert reset.returncode == 0
    assert "undo with: ick reset --yes main" in reset.stdout
    missing = run("show", "nope", env=env)
    assert missing.returncode == 3
    assert missing.stderr.startswith("ick: error: ")
    assert missing.stdout == ""


def test_errors_from_the_executable_have_no_traceback(tmp_path: Path) -> None:
    result = run("log", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    debug = run("log", cwd=tmp_path, env={"ICK_DEBUG": "1"})
    assert debug.returncode == 3
    assert "Traceback" in debug.stderr


def test_bash_completion_offers_branch_and_tag_names(sample: Sample) -> None:
    complete = {"_ICK_COMPLETE": "complete_bash"}
    result = run(cwd=sample.path, env={**complete, "COMP_WORDS": "ick log ", "COMP_CWORD": "2"})
    assert result.stdout.split() == ["experiment", "main", "v1.0", "v1.1"]
    deleting = run(
        cwd=sample.path,
        env={**complete, "COMP_WORDS": "ick tag delete v1.", "COMP_CWORD": "3"},
    )
    assert deleting.stdout.split() == ["v1.0", "v1.1"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_in_the_repository_are_current(shell: str) -> None:
    """``make completions`` writes these; regenerate them when this fails."""
    result = run(
        "--show-completion", shell, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    )
    assert result.returncode == 0
    committed = ROOT / "completions" / f"ick.{shell}"
    assert committed.read_text() == result.stdout


# --- history reads -------------------------------------------------------------------------------


@pytest.fixture
def long_history() -> Iterator[str]:
    """A 2,500-commit repository in a named in-memory storage (shared within the process)."""
    url = "memory://ick-cli-long-history"
    repo = ic.Repository.create(ic.storage_from_url(url))
    for i in range(2_500):
        repo.writable_session("main").commit(f"commit {i}", allow_empty=True)
    yield url
    type(repo.storage).drop_named("ick-cli-long-history")  # type: ignore[attr-defined]


def test_log_of_1000_reads_a_few_snapshots(
    long_history: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = ic.storage_from_url(long_history)
    reads: list[str] = []
    cls: Any = type(storage)
    for method in ("get", "get_versioned"):
        real = getattr(cls, method)

        def counting(self: Any, key: str, *args: Any, _real: Any = real, **kw: Any) -> Any:
            reads.append(key)
            return _real(self, key, *args, **kw)

        monkeypatch.setattr(cls, method, counting)
    doc = Ick(None).json("log", "-n", "1000", "-R", long_history)
    assert len(doc["snapshots"]) == 1000
    assert doc["snapshots"][-1]["message"] == "commit 1500"
    snapshot_reads = [k for k in reads if k.startswith("snapshots/")]
    assert len(snapshot_reads) <= 12, snapshot_reads  # 1000 entries, ~101 per read
    assert len(reads) <= 20, reads
