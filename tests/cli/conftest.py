"""Fixtures for the ``ick`` tests: a sample repository and a CliRunner bound to it.

The sample repository is built once per session with the library and zarr, then copied
for each test that uses it, so tests may change it freely::

    main:        init -- first (tag v1.0) -- day3 -- day4 (tag v1.1)
    experiment:                               day3 -- exp1 -- exp2
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from icechunk_cli.main import app

# Variables that would change what ick prints; every invocation starts without them.
CLEAN_ENV: dict[str, str | None] = {
    "ICK_REPO": None,
    "ICK_TERMINAL": None,
    "ICK_DEBUG": None,
    "NO_COLOR": None,
    "FORCE_COLOR": None,
    "COLUMNS": "80",
    "TERM": "xterm-256color",
}


@dataclass(frozen=True)
class Sample:
    """The sample repository of one test, with the ids of its snapshots."""

    path: Path
    ids: dict[str, str]


def build_sample(path: Path) -> dict[str, str]:
    import numpy as np
    import zarr

    import icechunk_lib as ic

    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    ids = {"init": repo.lookup_branch("main")}
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    temps = root.create_array("temps", shape=(10, 4, 4), chunks=(1, 4, 4), dtype="f4")
    temps[0] = 1.0
    temps[1] = 2.0
    weather = root.create_group("weather", attributes={"title": "weather"})
    precip = weather.create_array("precip", shape=(6,), chunks=(2,), dtype="i4", fill_value=0)
    precip[:] = np.arange(6)
    ids["first"] = session.commit("Add temps and weather", metadata={"author": "ana"})
    repo.create_tag("v1.0", ids["first"])

    def change(branch: str, message: str, edit: Callable[[Any], None]) -> str:
        with repo.transaction(branch, message=message) as store:
            edit(store)
        return repo.lookup_branch(branch)

    def set_day(day: int) -> Callable[[Any], None]:
        def edit(store: Any) -> None:
            zarr.open_array(store, path="temps")[day] = float(day)

        return edit

    def coarser(store: Any) -> None:
        zarr.open_array(store, path="weather/precip")[:2] = 9

    def drop(store: Any) -> None:
        del zarr.open_group(store)["temps"]

    ids["day3"] = change("main", "Add day 3", set_day(2))
    repo.create_branch("experiment", ids["day3"])
    ids["exp1"] = change("experiment", "Try a coarser precip", coarser)
    ids["day4"] = change("main", "Add day 4\n\nWith a longer body.", set_day(3))
    ids["exp2"] = change("experiment", "Drop temps", drop)
    repo.create_tag("v1.1", ids["day4"])
    return ids


@pytest.fixture(scope="session")
def _sample_template(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    path = tmp_path_factory.mktemp("template") / "repo"
    return Sample(path, build_sample(path))


@pytest.fixture
def sample(_sample_template: Sample, tmp_path: Path) -> Sample:
    """A fresh copy of the sample repository."""
    path = tmp_path / "repo"
    shutil.copytree(_sample_template.path, path)
    return Sample(path, dict(_sample_template.ids))


class Ick:
    """Runs ``ick`` in-process through typer's CliRunner, like a shell would."""

    def __init__(self, repo: Path | None) -> None:
        self.repo = repo
        self.runner = CliRunner()

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
        repo: bool = True,
    ) -> Result:
        argv = list(args)
        options = argv[: argv.index("--")] if "--" in argv else argv
        if repo and self.repo is not None and "-R" not in options and "--repo" not in options:
            argv = ["-R", str(self.repo), *argv]
        return self.runner.invoke(app, argv, env={**CLEAN_ENV, **(env or {})}, input=input)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """Run and require exit code 0."""
        result = self(*args, **kwargs)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run with --json, require success, and parse stdout (which must be one document)."""
        return json.loads(self.ok(*args, "--json", **kwargs).stdout)

    def fails(self, code: int, *args: str, **kwargs: Any) -> Result:
        """Run and require exit code ``code`` with a one-line error on stderr."""
        result = self(*args, **kwargs)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        if code not in (0, 2):
            assert result.stdout == ""
            assert result.stderr.startswith("ick: error: ")
            assert result.stderr.count("\n") == 1, result.stderr
            assert "Traceback" not in result.stderr
        return result


@pytest.fixture
def ick(sample: Sample) -> Ick:
    """``ick`` pointed at a fresh sample repository with -R."""
    return Ick(sample.path)


@pytest.fixture
def bare_ick() -> Ick:
    """``ick`` with no repository given."""
    return Ick(None)
