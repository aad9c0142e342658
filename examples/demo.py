"""A tour of ick on a local repository: commits, tags, branches, time travel and diffs.

Usage::

    python examples/demo.py [PATH]      # PATH defaults to ./demo-repo and must not exist yet

The demo writes a small synthetic climate dataset with xarray, revises it, experiments on a
branch, and then reads old versions back by tag and by timestamp.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from rich.console import Console
from rich.table import Table

import icechunk_lib as ic

console = Console()

LAT = np.linspace(-88.0, 88.0, 45)
LON = np.linspace(0.0, 356.0, 90)


def make_dataset(start: str, days: int, seed: int) -> xr.Dataset:
    """Daily temperature (K) and precipitation (mm/day) on a 4-degree grid."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, periods=days, freq="D")
    shape = (days, LAT.size, LON.size)
    seasonal = 5.0 * np.sin(2 * np.pi * times.day_of_year.to_numpy() / 365.0)[:, None, None]
    latitude = 30.0 * np.cos(np.deg2rad(LAT))[None, :, None]
    temperature = 258.0 + latitude + seasonal + rng.normal(0.0, 1.5, shape)
    precipitation = rng.gamma(0.6, 4.0, shape)
    ds = xr.Dataset(
        {
            "temperature": (
                ("time", "lat", "lon"),
                temperature.astype("float32"),
                {"units": "K", "long_name": "near-surface air temperature"},
            ),
            "precipitation": (
                ("time", "lat", "lon"),
                precipitation.astype("float32"),
                {"units": "mm/day", "long_name": "daily precipitation"},
            ),
        },
        coords={
            "time": times,
            "lat": ("lat", LAT, {"units": "degrees_north"}),
            "lon": ("lon", LON, {"units": "degrees_east"}),
        },
        attrs={"title": "ick demo climate dataset", "source": "synthetic"},
    )
    # Ten days per chunk: each chunk is a separate object under chunks/ in the repository.
    encoding = {name: {"chunks": (10, LAT.size, LON.size)} for name in ds.data_vars}
    for name, enc in encoding.items():
        ds[name].encoding.update(enc)
    return ds


def open_dataset(session: ic.Session) -> xr.Dataset:
    return xr.open_zarr(session.store, consolidated=False, chunks=None)


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def history_table(repo: ic.Repository, branch: str) -> Table:
    table = Table(title=f"history of {branch!r}", title_justify="left")
    table.add_column("snapshot id", style="yellow", no_wrap=True)
    table.add_column("written at (UTC)", no_wrap=True)
    table.add_column("message")
    for info in repo.ancestry(branch=branch):
        when = info.written_at.strftime("%Y-%m-%d %H:%M:%S.%f")
        table.add_row(info.id, when, info.message)
    return table


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        # An option is never a path: -h/--help shows how to run it; anything else is a mistake.
        print(__doc__.strip())
        return 0 if argv[1:] in (["-h"], ["--help"]) else 2
    path = Path(argv[1] if len(argv) > 1 else "demo-repo")
    started = time.perf_counter()

    step("1. Create a repository")
    storage = ic.local_filesystem_storage(path)
    try:
        repo = ic.Repository.create(storage)
    except ic.RepositoryAlreadyExistsError as exc:
        console.print(f"[red]{exc}[/red]\nRemove it first (make demo does) or pass another path.")
        return 1
    console.print(f"created {repo!r}; branches: {sorted(repo.list_branches())}")

    step("2. First commit: January and February")
    session = repo.writable_session("main")
    jan_feb = make_dataset("2024-01-01", 60, seed=1)
    jan_feb.to_zarr(session.store, consolidated=False)
    console.print("uncommitted changes:", session.status(), sep="\n")
    first = session.commit("Add January-February 2024", {"author": "demo", "days": 60})
    console.print(f"committed [yellow]{first}[/yellow]; the session is now read-only")
    repo.create_tag("v1.0", first)
    console.print("tagged it [green]v1.0[/green]")

    # A moment between the two commits, for reading main "as of" that time later on.
    moment = dt.datetime.now(dt.UTC)

    step("3. Second commit: append March and correct a sensor bias")
    session = repo.writable_session("main")
    make_dataset("2024-03-01", 31, seed=2).to_zarr(
        session.store, append_dim="time", consolidated=False
    )
    temperature = zarr.open_array(session.store, path="temperature")
    temperature[:7] = temperature[:7] + np.float32(0.5)
    second = session.commit("Append March; +0.5 K correction for Jan 1-7", {"author": "demo"})
    console.print(f"committed [yellow]{second}[/yellow]")

    step("4. A branch for an experiment")
    repo.create_branch("experiment", repo.lookup_branch("main"))
    session = repo.writable_session("experiment")
    precipitation = zarr.open_array(session.store, path="precipitation")
    precipitation[:] = precipitation[:] * np.float32(1.1)
    precipitation.attrs["bias_correction"] = "x1.1"
    experiment = session.commit("Scale precipitation by 1.1")
    console.print(f"committed [yellow]{experiment}[/yellow] on 'experiment'; main is untouched")

    step("5. Two writers at once: the loser rebases and retries")
    writer_a = repo.writable_session("main")
    writer_b = repo.writable_session("main")
    zarr.open_group(writer_a.store).attrs["reviewed_by"] = "alice"
    zarr.open_array(writer_b.store, path="precipitation")[-1] = 0.0
    writer_a.commit("Record the reviewer")
    try:
        writer_b.commit("Zero the precipitation of Mar 31")
    except ic.ConflictError as exc:
        console.print(f"[magenta]ConflictError[/magenta]: {exc}")
        writer_b.rebase(ic.ConflictDetector())  # the changes are independent: no conflict
        writer_b.commit("Zero the precipitation of Mar 31")
        console.print("rebased onto the new tip and committed")

    step("6. Time travel")
    at_tag = open_dataset(repo.readonly_session(tag="v1.0"))
    at_moment_session = repo.readonly_session("main", as_of=moment)
    at_moment = open_dataset(at_moment_session)
    today = open_dataset(repo.readonly_session("main"))
    point = {"time": "2024-01-01", "lat": LAT[22], "lon": LON[0]}
    table = Table(title="temperature on 2024-01-01 at the equator, 0E", title_justify="left")
    table.add_column("version")
    table.add_column("snapshot id", style="yellow")
    table.add_column("days")
    table.add_column("temperature (K)", justify="right")
    for label, snap, ds in (
        ("tag v1.0", first, at_tag),
        (f"main as of {moment:%H:%M:%S.%f}", at_moment_session.snapshot_id, at_moment),
        ("main now", repo.lookup_branch("main"), today),
    ):
        value = float(ds["temperature"].sel(point).values)
        table.add_row(label, snap, str(ds.sizes["time"]), f"{value:.3f}")
    console.print(table)
    assert at_moment_session.snapshot_id == first
    assert at_tag.sizes["time"] == 60 and today.sizes["time"] == 91

    step("7. Diffs")
    console.print("[bold]v1.0 -> main[/bold]")
    console.print(repo.diff(from_tag="v1.0", to_branch="main"))
    console.print("[bold]main -> experiment[/bold]")
    console.print(repo.diff(from_branch="main", to_branch="experiment"))

    step("8. History")
    console.print(history_table(repo, "main"))
    console.print(history_table(repo, "experiment"))
    console.print(f"tags: {sorted(repo.list_tags())}  branches: {sorted(repo.list_branches())}")

    step("9. On disk")
    for folder in ("refs", "snapshots", "manifests", "transactions", "chunks"):
        count = sum(1 for p in (path / folder).rglob("*") if p.is_file())
        console.print(f"{folder + '/':<14} {count:>3} objects")
    console.print(f"\ndone in {time.perf_counter() - started:.1f}s; explore {path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
