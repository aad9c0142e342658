"""Command line of the benchmark suite (``benchmarks/run.py`` is its entry point)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Case,
    Context,
    enable_profiling,
    environment_note,
    interleave,
    median,
    remove,
    take_profiles,
)

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Benchmark ick against Icechunk and zarr's plain stores.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument(
        "--cases",
        default="all",
        help="comma-separated case ids (default all but the on-demand ones)",
    )
    parser.add_argument(
        "--backends",
        default="memory,local",
        help="comma-separated backends: memory, local, s3 (a SeaweedFS the run starts)",
    )
    parser.add_argument(
        "--engines", default="ick,icechunk,zarr", help="comma-separated engines to measure"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="measured rounds (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results",
        help="where results.json, results.md and cached fixtures go",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the results of other cases/backends from the existing results.json",
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="regenerate the results block and plots of docs/performance.md",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite results.md (and docs with --update-docs) from results.json",
    )
    parser.add_argument(
        "--clear-cache", action="store_true", help="rebuild the cached fixtures in OUT/cache"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile ick's timed blocks with pyinstrument into OUT/profiles (no results)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser


def _python() -> str:
    """The interpreter as the reader would type it (``.venv/bin/python`` from the root)."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return str(exe)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Icechunk's Rust core logs a warning for every local repository; keep the output readable.
    os.environ.setdefault("ICECHUNK_LOG", "error")
    from benchmarks import report
    from benchmarks.cases import CASES
    from benchmarks.engines import BACKENDS, ENGINES

    if args.list:
        for case in CASES.values():
            when = " (on demand: name it in --cases)" if case.on_demand else ""
            print(f"{case.id}. {case.title}: backends {', '.join(case.backends)}{when}")
        return 0
    out: Path = args.out.resolve()
    old = None
    if (out / "results.json").exists():
        old = json.loads((out / "results.json").read_text())
    if args.report_only:
        if old is None:
            print(f"no results in {out}", file=sys.stderr)
            return 1
        report.write_results(old, out)
        if args.update_docs:
            print(f"wrote {report.update_docs(old, ROOT)}")
        return 0

    if args.cases == "all":
        case_ids = [c.id for c in CASES.values() if not c.on_demand]
    else:
        case_ids = _split(args.cases)
    backends = _split(args.backends)
    engines = _split(args.engines)
    if args.profile and args.engines == _parser().get_default("engines"):
        engines = ["ick"]
    for name, chosen, known in (
        ("case", case_ids, list(CASES)),
        ("backend", backends, list(BACKENDS)),
        ("engine", engines, list(ENGINES)),
    ):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            print(f"unknown {name} {', '.join(unknown)}", file=sys.stderr)
            return 2
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    ctx = Context(out=out, quick=args.quick, repeat=repeat)
    if args.clear_cache:
        remove(ctx.cache)
    if args.profile:
        enable_profiling()

    started = time.perf_counter()
    run_info: dict[str, Any] = {
        "command": shlex.join(
            [_python(), "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "repeat": repeat,
        "cases": case_ids,
        "backends": backends,
        "loadavg_start": environment_note().get("loadavg"),
    }
    doc: dict[str, Any] = {
        "schema": report.SCHEMA,
        "machine": report.machine_info(),
        "cases": {},
        "results": [],
        "errors": [],
        "runs": [],
    }
    try:
        for case_id in case_ids:
            case = CASES[case_id]
            doc["cases"][case.id] = {
                "title": case.title,
                "summary": case.summary,
                "notes": list(case.notes),
                "metrics": [
                    {"key": m.key, "label": m.label, "unit": m.unit, "plot": m.plot}
                    for m in case.metrics
                ],
            }
            for backend in [b for b in backends if b in case.backends]:
                _run_case(ctx, case, backend, engines, doc)
                if args.profile:
                    _write_profiles(out / "profiles", f"case{case.id}-{backend}")
    finally:
        from benchmarks import s3

        s3.shutdown()
        remove(ctx.scratch)
    if args.profile:
        print(f"profiles in {out / 'profiles'} (timings of a profiled run are not saved)")
        return 0
    run_info["seconds"] = time.perf_counter() - started
    run_info["loadavg_end"] = environment_note().get("loadavg")
    doc["runs"].append(run_info)
    if args.merge:
        doc = report.merge(old, doc)
    json_path, md_path = report.write_results(doc, out)
    print(f"wrote {json_path} and {md_path} ({run_info['seconds'] / 60:.1f} min)")
    if args.update_docs:
        print(f"wrote {report.update_docs(doc, ROOT)}")
    return 0


def _run_case(ctx: Context, case: Case, backend: str, engines: list[str], doc: Any) -> None:
    """Run one case on one backend, every engine in turn, and add its numbers to ``doc``."""
    from benchmarks import report

    chosen = [e for e in case.engines if e in engines]
    print(f"case {case.id} ({case.title}), {backend}: {', '.join(chosen)}", flush=True)
    began = time.perf_counter()
    outcomes = interleave(
        {e: partial(case.run, ctx, e, backend) for e in chosen},
        lambda text: print(text, flush=True),
    )
    for engine, outcome in outcomes.items():
        if outcome.error:
            doc["errors"].append(
                {"case": case.id, "backend": backend, "engine": engine, "error": outcome.error}
            )
        for metric in case.metrics:
            values = outcome.samples.get(metric.key)
            if not values or (metric.engines and engine not in metric.engines):
                continue
            doc["results"].append(
                {
                    "case": case.id,
                    "backend": backend,
                    "engine": engine,
                    "metric": metric.key,
                    "unit": metric.unit,
                    "median": median(values),
                    "samples": values,
                }
            )
    _print_case(case, backend, outcomes, report.fmt)
    print(f"  ({time.perf_counter() - began:.0f} s)", flush=True)


def _write_profiles(where: Path, prefix: str) -> None:
    """One text profile per timed block: the call tree, then functions by their own time."""
    where.mkdir(parents=True, exist_ok=True)
    for name, profiler in take_profiles().items():
        if profiler.last_session is None:
            continue
        path = where / f"{prefix}-{name}.txt"
        tree = profiler.output_text(unicode=True, time="percent_of_total", show_all=False)
        flat = profiler.output_text(unicode=True, flat=True, time="percent_of_total")
        table = _project_functions(profiler.last_session)
        path.write_text(
            f"{table}\n\nCall tree (zarr's event loop thread):\n{tree}\n\nBy own time:\n{flat}"
        )
        profiler.write_html(where / f"{prefix}-{name}.html")
        print(f"  profile: {path}", flush=True)


PROJECT_PACKAGES = ("icechunk_lib/", "icechunk_cli/")


def _project_functions(session: Any, top: int = 30) -> str:
    """The project's functions by share of the profiled time: inclusive, then their own."""
    root = session.root_frame(trim_stem=False)
    if root is None or not root.time:
        return "(no samples)"
    inclusive: dict[tuple[str, str], float] = {}
    own: dict[tuple[str, str], float] = {}

    def walk(frame: Any, active: frozenset[tuple[str, str]]) -> None:
        path = frame.file_path or ""
        key = None
        for package in PROJECT_PACKAGES:
            at = path.rfind(package)
            if at >= 0:
                key = (frame.function, f"{path[at:]}:{frame.line_no}")
                break
        if key is not None:
            own[key] = own.get(key, 0.0) + frame.total_self_time
            if key not in active:  # recursion counts once
                inclusive[key] = inclusive.get(key, 0.0) + frame.time
            active = active | {key}
        for child in frame.children:
            walk(child, active)

    walk(root, frozenset())
    lines = [
        f"Profiled time {root.time:.3f} s. Project functions by inclusive share (own share):",
        "",
    ]
    for key, seconds in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        share = seconds / root.time
        lines.append(f"{share:7.1%} ({own[key] / root.time:6.1%})  {key[0]}  {key[1]}")
    return "\n".join(lines)


def _print_case(case: Any, backend: str, outcomes: dict[str, Any], fmt: Any) -> None:
    for metric in case.metrics:
        cells = []
        for engine, outcome in outcomes.items():
            values = outcome.samples.get(metric.key)
            if values and (not metric.engines or engine in metric.engines):
                cells.append(f"{engine} {fmt(median(values), metric.unit)}")
        if cells:
            print(f"  {metric.label:<42} " + "  ".join(cells), flush=True)
