"""Case 5: a hierarchy of 5,000 arrays: write their metadata, commit, list the root, open one.

The hierarchy is 50 groups of 100 arrays under the root group. The ``zarr.json`` documents are
the ones zarr writes (made once, then set through the store), so the timings are the
engines' and not zarr's array-creation code. Listing and opening start from a freshly opened
repository (nothing cached), as a new reader would; the second listing shows the warm cost.
"""

from __future__ import annotations

from collections.abc import Iterator

import zarr
from zarr.abc.store import Store

from benchmarks.common import array_metadata, as_buffer, group_metadata, run, set_many
from benchmarks.engines import create_repo
from benchmarks.harness import Case, Context, Metric, Round, remove, stopwatch

PER_GROUP = 100


async def _names(store: Store, prefix: str) -> list[str]:
    return [name async for name in store.list_dir(prefix)]


def measure(ctx: Context, engine: str, backend: str) -> Iterator[Round]:
    groups = 10 if ctx.quick else 50
    group_doc = as_buffer(group_metadata())
    array_doc = as_buffer(array_metadata(shape=(1000,), chunks=(100,), dtype="f8"))
    group_items = [("zarr.json", group_doc)] + [
        (f"g{g:02d}/zarr.json", group_doc) for g in range(groups)
    ]
    array_items = [
        (f"g{g:02d}/a{a:03d}/zarr.json", array_doc) for g in range(groups) for a in range(PER_GROUP)
    ]
    target = f"g{groups // 3:02d}/a042"
    for rnd in range(ctx.rounds() + 1):  # round 0 warms up
        path = ctx.tempdir(f"c5-{engine}-{backend}-{rnd}")
        try:
            values: Round = {}
            repo = create_repo(engine, backend, path / "repo")
            store = repo.writable()
            with stopwatch(profile="write_meta") as t:
                run(set_many(store, group_items))
                run(set_many(store, array_items))
            values["write_meta"] = t.seconds * 1e3
            with stopwatch(profile="commit") as t:
                repo.commit("5,000 arrays")
            if repo.versioned:
                values["commit"] = t.seconds * 1e3

            fresh = repo.reopen()
            with stopwatch(profile="list_root") as t:
                names = run(_names(fresh.readonly(), ""))
            values["list_root"] = t.seconds * 1e3
            if len(names) != groups + 1:
                raise AssertionError(f"list_dir of the root gave {len(names)} names")
            reader = fresh.readonly()
            run(_names(reader, ""))
            with stopwatch(collect=False, profile="list_root_warm") as t:
                run(_names(reader, ""))
            values["list_root_warm"] = t.seconds * 1e3
            with stopwatch(profile="list_group") as t:
                names = run(_names(reader, "g01"))
            values["list_group"] = t.seconds * 1e3
            if len(names) != PER_GROUP + 1:
                raise AssertionError(f"list_dir of a group gave {len(names)} names")

            fresh = repo.reopen()
            with stopwatch(profile="open_one") as t:
                array = zarr.open_array(fresh.readonly(), path=target, mode="r")
            values["open_one"] = t.seconds * 1e3
            if array.shape != (1000,):
                raise AssertionError("opened the wrong array")
            if rnd:
                yield values
        finally:
            remove(path)


CASE = Case(
    id="5",
    title="Many arrays",
    summary=(
        "A hierarchy of 5,000 arrays (50 groups of 100): set their `zarr.json` documents, "
        "commit, `list_dir` of the root (cold and warm) and of one group, open one array "
        "(cold: a freshly opened repository)."
    ),
    metrics=(
        Metric("write_meta", "set 5,051 zarr.json", "ms"),
        Metric("commit", "commit", "ms", engines=("ick", "icechunk")),
        Metric("list_root", "list_dir of the root, cold", "ms"),
        Metric("list_root_warm", "list_dir of the root, warm", "ms"),
        Metric("list_group", "list_dir of a group of 100, warm", "ms"),
        Metric("open_one", "open one array, cold", "ms"),
    ),
    run=measure,
    backends=("memory", "local", "s3"),
    notes=("`--quick` uses 10 groups (1,000 arrays).",),
)
