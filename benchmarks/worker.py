"""Measurements that need a new process: ``python -m benchmarks.worker <task> ...``.

Prints one JSON object on stdout. The parent times the whole process from outside; the
numbers here are taken inside it, after the engine and zarr are imported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["bytes_read", "random_coords"]


def bytes_read() -> int | None:
    """Bytes this process has read through system calls so far (Linux ``rchar``)."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def random_coords(shape: tuple[int, int], count: int, seed: int) -> list[tuple[int, int]]:
    """``count`` distinct chunk coordinates of a 2-D grid, the same for every engine."""
    import numpy as np

    rng = np.random.default_rng(seed)
    flat = rng.choice(shape[0] * shape[1], size=count, replace=False)
    return [(int(i) // shape[1], int(i) % shape[1]) for i in flat]


def _warm_zarr() -> None:
    """Load zarr's codec registry and pipeline on a throwaway array, outside the timings."""
    import zarr
    from zarr.storage import MemoryStore

    array = zarr.create_array(
        MemoryStore(), name="w", shape=(2, 2), chunks=(1, 1), dtype="f8", compressors=None
    )
    array[:] = 1.0
    _ = array[0, 0], array.vindex[[0, 1], [0, 1]]


def cold_read(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import zarr

    from benchmarks.engines import import_engine, open_repo

    import_engine(args.engine)
    _warm_zarr()
    shape = (args.rows, args.cols)
    first = tuple(int(x) for x in args.first.split(","))
    coords = random_coords(shape, args.count, args.seed)

    before = bytes_read()
    start = time.perf_counter()
    repo = open_repo(args.engine, Path(args.path))
    array = zarr.open_array(repo.readonly(), path="big", mode="r")
    value = array[first]
    cold = time.perf_counter() - start
    after = bytes_read()

    rows = np.array([c[0] for c in coords])
    cols = np.array([c[1] for c in coords])
    start = time.perf_counter()
    values = array.vindex[rows, cols]
    many = time.perf_counter() - start

    if value != first[0] * shape[1] + first[1] or not np.array_equal(
        values, rows * shape[1] + cols
    ):
        raise SystemExit(f"{args.engine}: read wrong values")
    result: dict[str, Any] = {"cold_first": cold, "random": many}
    if before is not None and after is not None:
        result["bytes_first"] = after - before
    return result


def ancestry(args: argparse.Namespace) -> dict[str, Any]:
    """Open a repository and print ``-n`` history entries, like ``ick log --oneline``.

    The entries go to stdout before the JSON line, which is the last line.
    """
    from itertools import islice

    from benchmarks.engines import import_engine

    module = import_engine(args.engine)
    assert module is not None
    repo = module.Repository.open(module.local_filesystem_storage(args.path))
    lines = [
        f"{info.id} {info.written_at.isoformat()} {info.message}"
        for info in islice(repo.ancestry(branch="main"), args.n)
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return {"entries": len(lines)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    tasks = parser.add_subparsers(dest="task", required=True)
    cold = tasks.add_parser("cold-read", help="open a repository, read one chunk, then many")
    cold.add_argument("--engine", required=True)
    cold.add_argument("--path", required=True)
    cold.add_argument("--rows", type=int, required=True)
    cold.add_argument("--cols", type=int, required=True)
    cold.add_argument("--first", required=True, help="coordinates of the first chunk: i,j")
    cold.add_argument("--count", type=int, default=1000)
    cold.add_argument("--seed", type=int, default=42)
    hist = tasks.add_parser("ancestry", help="print the first N history entries")
    hist.add_argument("--engine", required=True)
    hist.add_argument("--path", required=True)
    hist.add_argument("-n", type=int, default=1000)
    args = parser.parse_args()
    task = cold_read if args.task == "cold-read" else ancestry
    print(json.dumps(task(args)))


if __name__ == "__main__":
    main()
