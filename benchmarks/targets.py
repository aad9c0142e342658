"""The issue's targets, checked against one run's medians (ratios measured in the same run).

Each rule turns the results into ``Verdict`` rows: what was compared, the measured figure and
whether the target is met (None when a number is missing, e.g. an engine failed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Lookup", "Verdict", "evaluate"]

Lookup = Callable[[str, str, str, str], float | None]
"""``value(case, metric, backend, engine)``: the median, or None if not measured."""

BACKENDS = ("memory", "local")


@dataclass(frozen=True)
class Verdict:
    case: str
    target: str
    backend: str
    subject: str
    measured: str
    met: bool | None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _all(*checks: bool | None) -> bool | None:
    if any(c is None for c in checks):
        return None
    return all(bool(c) for c in checks)


def _fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def _versus_icechunk(
    case: str,
    target: str,
    backend: str,
    subject: str,
    ick: float | None,
    ic: float | None,
    unit: str,
) -> Verdict:
    """A "no slower than Icechunk" verdict from the two medians."""
    r = _ratio(ick, ic)
    return Verdict(
        case,
        target,
        backend,
        subject,
        f"{_fmt(ick, unit)} vs {_fmt(ic, unit)} ({_fmt_ratio(r)})",
        None if r is None else r <= 1.0,
    )


def _store_overhead(v: Lookup) -> Iterator[Verdict]:
    for backend in BACKENDS:
        for op in ("set", "get", "exists"):
            for mode in ("seq", "gather"):
                key = f"{op}_{mode}"
                ick = v("1", key, backend, "ick")
                vs_zarr = _ratio(ick, v("1", key, backend, "zarr"))
                vs_ic = _ratio(ick, v("1", key, backend, "icechunk"))
                yield Verdict(
                    "1",
                    "per op <= 2x zarr plain store and <= 1/3 of Icechunk",
                    backend,
                    f"{op}, {'sequential' if mode == 'seq' else 'gathered'}",
                    f"{_fmt_ratio(vs_zarr)} zarr, {_fmt_ratio(vs_ic)} Icechunk",
                    _all(
                        None if vs_zarr is None else vs_zarr <= 2.0,
                        None if vs_ic is None else vs_ic <= 1 / 3,
                    ),
                )


def _whole_arrays(v: Lookup) -> Iterator[Verdict]:
    for backend in BACKENDS:
        yield from _whole_array_verdicts(
            v, backend, "within 10% of zarr plain store, faster than Icechunk", "zarr", strict=True
        )


def _whole_array_verdicts(
    v: Lookup, backend: str, target: str, floor: str, *, strict: bool
) -> Iterator[Verdict]:
    """Case 2's write and read of small and large chunks on ``backend``: within 10% of
    zarr's plain store (called ``floor`` in the verdict) and faster than Icechunk
    (``strict``) or no slower."""
    for size in ("small", "large"):
        for op in ("write", "read"):
            key = f"{size}_{op}"
            ick = v("2", key, backend, "ick")
            vs_zarr = _ratio(ick, v("2", key, backend, "zarr"))
            vs_ic = _ratio(ick, v("2", key, backend, "icechunk"))
            label = "1000x1000 f8, 10x10 chunks" if size == "small" else "4000x4000 f4"
            ic_ok = None if vs_ic is None else (vs_ic < 1.0 if strict else vs_ic <= 1.0)
            yield Verdict(
                "2",
                target,
                backend,
                f"{op} {label}",
                f"{_fmt_ratio(vs_zarr)} {floor}, {_fmt_ratio(vs_ic)} Icechunk",
                _all(None if vs_zarr is None else vs_zarr <= 1.10, ic_ok),
            )


COMMIT_SIZES = (("1k", 1_000, 4.0), ("10k", 10_000, 16.0), ("100k", 100_000, 104.0))


def _commit_cost(v: Lookup) -> Iterator[Verdict]:
    for backend in BACKENDS:
        for layout, layout_label in (("one", "one array"), ("spread", "100 arrays")):
            for size, _, ref in COMMIT_SIZES:
                key = f"commit_{size}_{layout}"
                ick = v("3", key, backend, "ick")
                ic = v("3", key, backend, "icechunk")
                if ick is None and ic is None:
                    continue
                yield _versus_icechunk(
                    "3",
                    f"commit no slower than Icechunk (ref. {ref:g} ms on local)",
                    backend,
                    f"{size} chunks, {layout_label}",
                    ick,
                    ic,
                    "ms",
                )
            t10 = v("3", f"commit_10k_{layout}", backend, "ick")
            t100 = v("3", f"commit_100k_{layout}", backend, "ick")
            if t10 is not None and t100 is not None:
                slope = math.log(t100 / t10) / math.log(10)
                yield Verdict(
                    "3",
                    "commit time linear or better (log-log slope 10k->100k <= 1.1)",
                    backend,
                    layout_label,
                    f"slope {slope:.2f}",
                    slope <= 1.1,
                )
            m10 = v("3", f"mem_10k_{layout}", backend, "ick")
            m100 = v("3", f"mem_100k_{layout}", backend, "ick")
            if m10 is not None and m100 is not None:
                per10 = m10 / 10_000 * 1024 * 1024
                per100 = m100 / 100_000 * 1024 * 1024
                yield Verdict(
                    "3",
                    "commit memory proportional to the change (per chunk at 100k <= 1.5x 10k)",
                    backend,
                    layout_label,
                    f"{per10:.0f} -> {per100:.0f} bytes/chunk",
                    per100 <= 1.5 * max(per10, 1.0),
                )
        small = v("3", "mem_1k_one", backend, "ick")
        in_large = v("3", "mem_1k_of_100k", backend, "ick")
        if small is not None and in_large is not None:
            yield Verdict(
                "3",
                "commit memory follows the change, not the array (1k of 100k <= 2x 1k + 1 MB)",
                backend,
                "1k chunks changed in a 100k-chunk array",
                f"{in_large:.1f} MB vs {small:.1f} MB for 1k in a new array",
                in_large <= 2 * small + 1.0,
            )


def _large_array(v: Lookup) -> Iterator[Verdict]:
    backend = "local"
    yield _versus_icechunk(
        "4",
        "cold open + first chunk no slower than Icechunk (ref. 0.105 s)",
        backend,
        "1,000,000-chunk array, new process",
        v("4", "cold_first", backend, "ick"),
        v("4", "cold_first", backend, "icechunk"),
        "s",
    )
    read = v("4", "bytes_first", backend, "ick")
    budget = v("4", "read_budget", backend, "ick")
    yield Verdict(
        "4",
        "cold open + first chunk reads at most one manifest's bytes",
        backend,
        "bytes read (snapshot, refs and config allowed on top)",
        f"{_fmt(read, 'bytes')} read, budget {_fmt(budget, 'bytes')}",
        None if read is None or budget is None else read <= budget,
    )


def _many_arrays(v: Lookup) -> Iterator[Verdict]:
    for backend in BACKENDS:
        for key, what, ref in (
            ("commit", "commit of 5,000 new arrays", " (ref. 15 ms)"),
            ("list_root", "list_dir of the root", ""),
        ):
            ick = v("5", key, backend, "ick")
            ic = v("5", key, backend, "icechunk")
            yield _versus_icechunk(
                "5", f"no slower than Icechunk{ref}", backend, what, ick, ic, "ms"
            )


def _history(v: Lookup) -> Iterator[Verdict]:
    for backend in BACKENDS:
        for key, what, unit, ref in (
            ("commit_one", "commit of one changed chunk", "ms", "3.8 ms"),
            ("ancestry_1000", "ancestry, 1,000 entries", "s", "0.12 s"),
        ):
            ick = v("6", key, backend, "ick")
            ic = v("6", key, backend, "icechunk")
            yield _versus_icechunk(
                "6", f"no slower than Icechunk (ref. {ref})", backend, what, ick, ic, unit
            )
    for key, what, limit in (
        ("log_process", "`ick log -n 1000`, whole process", 0.5),
        ("help_process", "`ick --help`, whole process", 0.3),
    ):
        ick = v("6", key, "local", "ick")
        yield Verdict(
            "6",
            f"under {limit} s",
            "local",
            what,
            _fmt(ick, "s"),
            None if ick is None else ick < limit,
        )


def _maintenance(v: Lookup) -> Iterator[Verdict]:
    for key, what, unit in (
        ("expire", "expire snapshots", "s"),
        ("expire_mb", "expire, peak memory", "MB"),
        ("gc_first", "gc after the expiry", "s"),
        ("gc_first_mb", "gc after the expiry, peak memory", "MB"),
        ("gc_second", "gc after 10 small commits", "s"),
        ("gc_second_mb", "gc after 10 small commits, peak memory", "MB"),
    ):
        ick = v("8", key, "local", "ick")
        ic = v("8", key, "local", "icechunk")
        yield _versus_icechunk("8", "ahead of Icechunk", "local", what, ick, ic, unit)
    first = v("8", "gc_first", "local", "ick")
    second = v("8", "gc_second", "local", "ick")
    ratio = _ratio(first, second)
    yield Verdict(
        "8",
        "second gc at least 10x cheaper than the first",
        "local",
        "ick, gc after 10 small commits vs gc after the expiry",
        f"{_fmt(second, 's')} vs {_fmt(first, 's')} ({_fmt_ratio(ratio)} cheaper)",
        None if ratio is None else ratio >= 10,
    )


def _object_storage(v: Lookup) -> Iterator[Verdict]:
    """Issue 11's targets on S3 (SeaweedFS): the plain floor is zarr's ``FsspecStore``."""
    backend = "s3"
    yield from _whole_array_verdicts(
        v,
        backend,
        "within 10% of zarr's FsspecStore, no slower than Icechunk",
        "FsspecStore",
        strict=False,
    )
    for layout, layout_label in (("one", "one array"), ("spread", "100 arrays")):
        for size, _, _ in COMMIT_SIZES:
            key = f"commit_{size}_{layout}"
            ick, ic = v("3", key, backend, "ick"), v("3", key, backend, "icechunk")
            if ick is None and ic is None:
                continue
            yield _versus_icechunk(
                "3",
                "commit no slower than Icechunk",
                backend,
                f"{size} chunks, {layout_label}",
                ick,
                ic,
                "ms",
            )
    for case, key, what, unit in (
        ("5", "commit", "commit of 5,000 new arrays", "ms"),
        ("6", "commit_one", "commit of one changed chunk", "ms"),
        ("6", "ancestry_1000", "ancestry, 1,000 entries", "s"),
    ):
        ick, ic = v(case, key, backend, "ick"), v(case, key, backend, "icechunk")
        yield _versus_icechunk(case, "no slower than Icechunk", backend, what, ick, ic, unit)
    ick = v("6", "req_commit_total", backend, "ick")
    ic = v("6", "req_commit_total", backend, "icechunk")
    yield Verdict(
        "6",
        "no more requests per commit than Icechunk",
        backend,
        "commit of one changed chunk, HTTP requests",
        f"{_fmt(ick, 'requests')} vs {_fmt(ic, 'requests')}",
        None if ick is None or ic is None else ick <= ic,
    )


def _virtual(v: Lookup) -> Iterator[Verdict]:
    """Issue 12: ick ahead of Icechunk writing 1M virtual refs and reading 1,000 chunks."""
    for backend in BACKENDS:
        for key, what, unit in (
            ("set_refs", "set_virtual_refs, 1M refs", "s"),
            ("commit_refs", "commit of 1M virtual refs", "s"),
            ("read_1k", "read of 1,000 virtual chunks", "ms"),
        ):
            ick = v("9", key, backend, "ick")
            ic = v("9", key, backend, "icechunk")
            r = _ratio(ick, ic)
            yield Verdict(
                "9",
                "ahead of Icechunk",
                backend,
                what,
                f"{_fmt(ick, unit)} vs {_fmt(ic, unit)} ({_fmt_ratio(r)})",
                None if r is None else r < 1.0,
            )


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "bytes":
        return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.1f} kB"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "requests":
        return f"{value:g}"
    return f"{value:.3g} {unit}"


RULES = (
    _store_overhead,
    _whole_arrays,
    _commit_cost,
    _large_array,
    _many_arrays,
    _history,
    _maintenance,
    _object_storage,
    _virtual,
)


def evaluate(value: Lookup, ran: set[tuple[str, str]]) -> list[Verdict]:
    """Every target verdict for the (case, backend) pairs present in the results."""
    out: list[Verdict] = []
    for rule in RULES:
        for verdict in rule(value):
            if (verdict.case, verdict.backend) in ran:
                out.append(verdict)
    return out
