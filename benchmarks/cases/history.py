"""Case 6: history: one-chunk commits, ``ancestry`` of a 10,000-commit repository, the CLI.

* A commit of one changed chunk: 300 commits on a fresh repository, each in its own session;
  the first 100 (while each snapshot's ancestry summary still grows) are not reported.
* ``ancestry``: the first 1,000 entries, and the whole 10,000, from a freshly opened
  repository. The local 10,000-commit repositories are built once and cached in
  ``OUT/cache``; the in-memory ones are built in every run, and so are the S3 ones, of
  1,000 commits (the server lives as long as the run).
* Requests per commit (S3 only): one-chunk commits on a repository reached through the
  proxy that counts requests (``benchmarks/request_counter.py``): what ``commit`` sends, by
  kind, and what a whole cycle (writable session, one chunk written, commit) sends.
* Whole processes (local only): ``ick log -n 1000 -R PATH`` against a Python process that
  opens the repository with Icechunk and prints 1,000 entries; the same Python process for
  both engines; ``ick --help`` against ``icechunk --help`` (Icechunk's own command line).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import zarr
from zarr.core.buffer import Buffer

from benchmarks.common import chunk_pool, run
from benchmarks.engines import Repo, create_repo, open_repo
from benchmarks.harness import Case, Context, Metric, Round, remove, stopwatch
from benchmarks.s3 import request_metrics

FIXTURE_VERSION = 1
SLOTS = 100  # chunks of the array the commits take turns changing
COUNTED = 10  # one-chunk commits whose requests are counted (S3)


def _one_chunk_commit(repo: Repo, i: int, pool: Sequence[Buffer], collect: bool = True) -> float:
    store = repo.writable()
    run(store.set(f"a/c/{i % SLOTS}", pool[i % len(pool)]))
    with stopwatch(collect=collect, profile="commit_one" if collect else None) as t:
        repo.commit(f"change {i}")
    return t.seconds * 1e3


def _new_history_repo(engine: str, backend: str, path: Path) -> Repo:
    repo = create_repo(engine, backend, path)
    zarr.create_array(repo.writable(), name="a", shape=(128 * SLOTS,), chunks=(128,), dtype="f8")
    repo.commit("array")
    return repo


def _grow(repo: Repo, commits: int) -> None:
    pool = chunk_pool(1024, 16)
    for i in range(commits):
        _one_chunk_commit(repo, i, pool, collect=False)


def _history(ctx: Context, engine: str, backend: str, commits: int) -> tuple[Repo, Path | None]:
    """A repository with ``commits`` commits on main (cached on disk for the local backend;
    an S3 server lives only as long as the run)."""
    if backend != "local":
        repo = _new_history_repo(engine, backend, Path())
        _grow(repo, commits - 2)
        return repo, None
    home = ctx.cache / f"history-v{FIXTURE_VERSION}-{commits}-{engine}"
    if not (home / "complete.json").exists():
        remove(home)
        home.mkdir(parents=True)
        print(f"    building {home.name} (cached for later runs)", flush=True)
        started = time.perf_counter()
        repo = _new_history_repo(engine, backend, home / "repo")
        _grow(repo, commits - 2)  # creation and the array are the first two
        (home / "complete.json").write_text(json.dumps({"seconds": time.perf_counter() - started}))
    return open_repo(engine, home / "repo"), home / "repo"


def _process(ctx: Context, command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=ctx.root, env=ctx.process_env(), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip()[-500:]}")
    return elapsed, done.stdout


def _bin(ctx: Context, name: str) -> str:
    return str(Path(ctx.python).parent / name)


def _requests(ctx: Context, engine: str) -> Iterator[Round]:
    """Requests of one-chunk commits on S3, counted by the proxy in front of the server."""
    from benchmarks.s3 import counting

    path = ctx.tempdir(f"c6-{engine}-s3-counted")
    try:
        repo = create_repo(engine, "s3", path / "repo", counted=True)
        zarr.create_array(
            repo.writable(), name="a", shape=(128 * SLOTS,), chunks=(128,), dtype="f8"
        )
        repo.commit("array")
        pool = chunk_pool(1024, 16)
        for i in range(COUNTED):
            with counting(repo.prefix) as cycle:
                store = repo.writable()
                run(store.set(f"a/c/{i % SLOTS}", pool[i % len(pool)]))
                with counting(repo.prefix) as commit:
                    repo.commit(f"change {i}")
            yield {**commit.values("req_commit"), **cycle.values("req_cycle")}
    finally:
        remove(path)


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    commits = 1_000 if ctx.quick or backend == "s3" else 10_000
    sampled, skipped = (40, 20) if ctx.quick else (200, 100)

    path = ctx.tempdir(f"c6-{engine}-{backend}")
    try:
        repo = _new_history_repo(engine, backend, path / "repo")
        pool = chunk_pool(1024, 16)
        for i in range(skipped + sampled):
            ms = _one_chunk_commit(repo, i, pool)
            if i >= skipped:
                yield {"commit_one": ms}
    finally:
        remove(path)
    if backend == "s3":
        yield from _requests(ctx, engine)

    repo, where = _history(ctx, engine, backend, commits)
    for _ in range(ctx.rounds()):
        fresh = repo.reopen()
        with stopwatch(profile="ancestry_1000") as t:
            count = fresh.ancestry(1000)
        if count != 1000:
            raise AssertionError(f"ancestry gave {count} entries")
        values: Round = {"ancestry_1000": t.seconds}
        fresh = repo.reopen()
        with stopwatch(profile="ancestry_all") as t:
            count = fresh.ancestry(commits + 1)
        if count != commits:
            raise AssertionError(f"full ancestry gave {count} entries, expected {commits}")
        values["ancestry_all"] = t.seconds
        yield values
    if where is None:
        return

    worker = [ctx.python, "-m", "benchmarks.worker", "ancestry", f"--engine={engine}"]
    worker += [f"--path={where}", "-n", "1000"]
    if engine == "ick":
        log = [_bin(ctx, "ick"), "log", "-n", "1000", "-R", str(where)]
        help_command = [_bin(ctx, "ick"), "--help"]
    else:
        log = worker
        help_command = [_bin(ctx, "icechunk"), "--help"]
    _, out = _process(ctx, log)  # warm the page cache, and check the output once
    if engine == "ick":
        entries = out.count("\nsnapshot ") + out.startswith("snapshot ")
        if entries != 1000:
            raise AssertionError(f"ick log -n 1000 printed {entries} entries")
    _process(ctx, help_command)
    for _ in range(ctx.rounds()):
        yield {
            "log_process": _process(ctx, log)[0],
            "ancestry_process": _process(ctx, worker)[0],
            "help_process": _process(ctx, help_command)[0],
        }


CASE = Case(
    id="6",
    title="History",
    summary=(
        "Commits of one changed chunk; `ancestry` (first 1,000 and all 10,000 entries) of a "
        "10,000-commit repository; `ick log -n 1000` and `ick --help` as whole processes."
    ),
    metrics=(
        Metric("commit_one", "commit of one changed chunk", "ms"),
        Metric("ancestry_1000", "ancestry, 1,000 entries", "s"),
        Metric("ancestry_all", "ancestry, all 10,000 entries", "s"),
        Metric(
            "log_process",
            "log -n 1000, whole process (ick log / Icechunk in Python)",
            "s",
            backends=("local",),
        ),
        Metric(
            "ancestry_process",
            "1,000 entries from a Python process",
            "s",
            backends=("local",),
        ),
        Metric("help_process", "--help, whole process", "s", backends=("local",)),
        *request_metrics("req_commit", "commit of one changed chunk"),
        *request_metrics("req_cycle", "session + one chunk + commit", kinds=False),
    ),
    run=measure,
    backends=("memory", "local", "s3"),
    engines=("ick", "icechunk"),
    notes=(
        "A plain zarr store has no history, so only ick and Icechunk are compared.",
        "Icechunk's `log` figure is a Python process that opens the repository and prints "
        "1,000 entries (`benchmarks/worker.py ancestry`); Icechunk 1.1's own command line "
        "lists snapshots only of repositories registered in its config file.",
        "`--quick` uses a 1,000-commit repository (the ancestry rows then read all 1,000); "
        "so does S3 at every size.",
        "Requests (S3) are counted by a proxy in front of the server, on 10 one-chunk commits "
        "of a repository of their own (timings are taken without the proxy).",
    ),
)
