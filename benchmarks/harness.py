"""Timing, memory and scheduling helpers shared by every case.

Each case is a generator per (engine, backend) that does its own setup and warm-up, then
yields one *round* of measurements at a time. The runner alternates between the engines'
generators round by round, so noise from other work on a shared machine is spread over all
engines instead of landing on whichever happened to run at the wrong moment.
"""

from __future__ import annotations

import ctypes
import gc
import os
import shutil
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Case",
    "Context",
    "Metric",
    "PeakMemory",
    "Round",
    "Samples",
    "enable_profiling",
    "interleave",
    "median",
    "profiled",
    "stopwatch",
    "take_profiles",
]

Round = dict[str, float]
"""One round of one engine: metric key -> value in the metric's unit."""

Samples = dict[str, list[float]]
"""Metric key -> every value measured, in order."""


@dataclass(frozen=True)
class Metric:
    """One reported number of a case."""

    key: str
    label: str
    unit: str
    """``us/op``, ``ms``, ``s``, ``MB``, ``bytes``, ``count`` or ``requests`` (HTTP requests)."""
    engines: tuple[str, ...] | None = None
    """The engines that report it (None: every engine of the case)."""
    backends: tuple[str, ...] | None = None
    """The backends it is measured on (None: every backend of the case)."""
    plot: bool = True
    """Whether the plot shows it (auxiliary numbers such as bytes read stay in the table)."""


@dataclass(frozen=True)
class Context:
    """Where a run keeps its files and how much work it does."""

    out: Path
    quick: bool
    repeat: int
    python: str = sys.executable
    root: Path = Path(__file__).resolve().parent.parent

    @property
    def scratch(self) -> Path:
        """Temporary data of the current run (deleted at the end)."""
        return self.out / "tmp"

    @property
    def cache(self) -> Path:
        """Expensive fixtures (the 1M-chunk array, the 10,000-commit history) kept across runs."""
        return self.out / "cache"

    def tempdir(self, name: str) -> Path:
        """A fresh, empty directory under the scratch area."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = self.scratch / name
        remove(path)
        path.mkdir(parents=True)
        return path

    def process_env(self) -> dict[str, str]:
        """Environment of measured subprocesses: bytecode cached, as for an installed package.

        Installed packages (zarr, Icechunk) ship compiled bytecode while the project runs from
        its source tree; with ``PYTHONDONTWRITEBYTECODE`` set, every ``ick`` process would
        compile its modules again. The cache goes under ``OUT/cache``, not the source tree.
        """
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(self.cache / "pycache")
        env.setdefault("ICECHUNK_LOG", "error")
        return env

    def rounds(self, cap: int | None = None) -> int:
        """How many measured rounds a case runs: ``--repeat``, at most ``cap`` for heavy work."""
        return max(1, min(self.repeat, cap) if cap else self.repeat)


@dataclass(frozen=True)
class Case:
    """A benchmark case: what it measures and the generator that measures it."""

    id: str
    title: str
    summary: str
    metrics: tuple[Metric, ...]
    run: Callable[[Context, str, str], Iterator[Round]]
    """``run(ctx, engine, backend)`` sets up, then yields one ``Round`` per measured round."""
    engines: tuple[str, ...] = ("ick", "icechunk", "zarr")
    backends: tuple[str, ...] = ("memory", "local")
    notes: tuple[str, ...] = ()
    on_demand: bool = False
    """Left out of ``--cases all``: runs only when named (too slow for every run)."""

    def metric(self, key: str) -> Metric:
        return next(m for m in self.metrics if m.key == key)


@dataclass
class EngineOutcome:
    """What one engine produced in one case on one backend."""

    samples: Samples = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def remove(path: Path) -> None:
    """Delete a file or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class profiled:  # lower case: used like a function
    """Sample a block with pyinstrument when profiling is on (``run.py --profile``).

    Blocks of the same ``name`` add up to one profile. Without profiling this does nothing.
    """

    def __init__(self, name: str | None) -> None:
        self._profiler = _profiler(name)

    def __enter__(self) -> profiled:
        if self._profiler is not None:
            _on_engine_thread(self._profiler.start)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._profiler is not None:
            _on_engine_thread(self._profiler.stop)


class stopwatch:  # lower case: used like a function, ``with stopwatch() as t: ...``
    """Wall-clock time of a block, after a garbage collection so earlier garbage is not billed.

    With profiling on (``run.py --profile``), a block given a ``profile`` name is also
    sampled by pyinstrument; blocks of the same name add up to one profile.
    """

    seconds: float

    def __init__(self, collect: bool = True, profile: str | None = None) -> None:
        self._collect = collect
        self._profile = profile

    def __enter__(self) -> stopwatch:
        if self._collect:
            gc.collect()
        self._profiled = profiled(self._profile).__enter__()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self._profiled.__exit__()


_profiles: dict[str, Any] | None = None


def enable_profiling() -> None:
    """Make named ``stopwatch`` blocks collect pyinstrument profiles from now on."""
    global _profiles
    _profiles = {}


def take_profiles() -> dict[str, Any]:
    """The profiles collected since the last call, by name (pyinstrument ``Profiler`` s)."""
    global _profiles
    taken, _profiles = (_profiles or {}), ({} if _profiles is not None else None)
    return taken


def _profiler(name: str | None) -> Any:
    if _profiles is None or name is None:
        return None
    if name not in _profiles:
        from pyinstrument import Profiler

        # Sampling the thread, not a task: the engines run on zarr's event loop thread and
        # the interesting time is spread over many tasks.
        _profiles[name] = Profiler(interval=0.0002, async_mode="disabled")
    return _profiles[name]


def _on_engine_thread(call: Callable[[], object]) -> None:
    """Run ``call`` on zarr's event loop thread, where ick (and zarr) do their work.

    pyinstrument samples the thread that starts it; blocking calls of ick and zarr hand
    their work to that loop, so that is the thread to sample.
    """
    from zarr.core.sync import sync

    async def in_loop() -> None:
        call()

    sync(in_loop())


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` value 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _trim() -> None:
    """Hand freed heap pages back to the kernel (glibc), so new allocations show in the RSS."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None


class PeakMemory:
    """Peak resident memory a block adds on top of what the process held when it started.

    Uses the kernel's high-water mark, so memory allocated by native code (Icechunk's Rust
    core, numpy) counts like Python objects do. Free heap memory is returned to the kernel
    first (``malloc_trim``), so the block cannot hide its allocations in pages freed earlier.
    ``megabytes`` is None where the mark cannot be reset (not Linux).
    """

    megabytes: float | None

    def __enter__(self) -> PeakMemory:
        gc.collect()
        _trim()
        self._base = _status_kb("VmRSS")
        self._ok = self._base is not None and _reset_peak()
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_kb("VmHWM") if self._ok else None
        if peak is None or self._base is None:
            self.megabytes = None
        else:
            self.megabytes = max(peak - self._base, 0) / 1024


def interleave(
    runs: dict[str, Callable[[], Iterator[Round]]], log: Callable[[str], None]
) -> dict[str, EngineOutcome]:
    """Advance each engine's generator one round at a time, in turn, until all are done.

    An engine that raises is recorded with its error and dropped; the others go on.
    """
    outcomes = {name: EngineOutcome() for name in runs}
    active: dict[str, Iterator[Round]] = {}
    for name, start in runs.items():
        try:
            active[name] = start()
        except Exception as exc:  # a failing setup must not stop the other engines
            outcomes[name].error = _describe(exc)
    while active:
        for name in list(active):
            gen = active[name]
            began = time.perf_counter()
            try:
                values = next(gen)
            except StopIteration:
                del active[name]
                continue
            except Exception as exc:
                outcomes[name].error = _describe(exc)
                log(f"    {name}: FAILED: {outcomes[name].error}")
                del active[name]
                continue
            finally:
                outcomes[name].seconds += time.perf_counter() - began
            for key, value in values.items():
                outcomes[name].samples.setdefault(key, []).append(float(value))
    return outcomes


def _describe(exc: BaseException) -> str:
    if os.environ.get("BENCH_DEBUG"):
        traceback.print_exception(exc)
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def environment_note() -> dict[str, Any]:
    """Load average now: a hint of how busy the (shared) machine was."""
    try:
        return {"loadavg": list(os.getloadavg())}
    except OSError:
        return {}
