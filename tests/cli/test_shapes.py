"""``ick show``, ``ick diff`` and ``ick ls -l`` on arrays of unusual shapes, in both output modes.

0-d arrays (whose one chunk has no coordinates), empty arrays, shape (1,), eight dimensions
and a chunk larger than the array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zarr

import icechunk_lib as ic

from .conftest import Ick
from .test_e2e import run

# name -> (shape, chunks)
ARRAYS = {
    "x": ((), ()),
    "empty": ((0,), (4,)),
    "empty2": ((3, 0), (2, 2)),
    "one": ((1,), (1,)),
    "big": ((3,), (10,)),
    "many": ((2,) * 8, (1,) * 8),
}
EDITED = ["/big", "/many", "/one", "/x"]


@pytest.fixture
def shapes(tmp_path: Path) -> tuple[Ick, list[str]]:
    """A repository whose first commit creates each array and whose second edits one chunk
    of every array that has chunks."""
    path = tmp_path / "shapes"
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    for name, (shape, chunks) in ARRAYS.items():
        root.create_array(name, shape=shape, chunks=chunks, dtype="i2", fill_value=0)[...] = 1
    first = session.commit("create")
    session = repo.writable_session("main")
    for path_ in EDITED:
        arr = zarr.open_array(session.store, path=path_[1:])
        arr[(0,) * arr.ndim] = 2
    second = session.commit("edit")
    return Ick(path), [first, second]


def _coords(doc: dict[str, Any]) -> dict[str, list[list[int]]]:
    return {c["path"]: c["coords"] for c in doc["chunks"]}


def test_show_and_diff_json(shapes: tuple[Ick, list[str]]) -> None:
    ick, (first, second) = shapes
    expected = {p: [[0] * len(ARRAYS[p[1:]][0])] for p in EDITED}
    assert expected["/x"] == [[]]
    shown = ick.json("show", second)
    assert _coords(shown["changes"]) == expected
    for a, b in ((first, second), (second, first)):
        doc = ick.json("diff", a, b)
        assert _coords(doc) == expected
        assert doc["stat"]["chunks_changed"] == len(EDITED)
    created = _coords(ick.json("show", first)["changes"])
    assert created["/x"] == [[]]
    assert len(created["/many"]) == 2**8
    assert "/empty" not in created and "/empty2" not in created


def test_show_and_diff_rich(shapes: tuple[Ick, list[str]]) -> None:
    ick, (first, second) = shapes
    for args in (("show", second), ("diff", first, second), ("diff", second, first)):
        out = ick.ok(*args).stdout
        assert "4 chunks changed in 4 arrays" in out
        for path in EDITED:
            assert any(line.split()[2:] == [path, "1"] for line in out.splitlines()), out
    stat = ick.ok("diff", "--stat", first, second).stdout
    assert any(line.split() == ["/x", "1"] for line in stat.splitlines()), stat


def test_ls_long(shapes: tuple[Ick, list[str]]) -> None:
    ick, _ = shapes
    nodes = {n["path"]: n for n in ick.json("ls", "-l")["nodes"]}
    for name, (shape, chunks) in ARRAYS.items():
        node = nodes["/" + name]
        assert (node["shape"], node["chunk_shape"]) == (list(shape), list(chunks))
        expected = 0 if 0 in shape else (2**8 if name == "many" else 1)
        assert node["chunks_written"] == expected, name
    rows = {line.split()[0]: line.split() for line in ick.ok("ls", "-l").stdout.splitlines()}
    assert rows["/x"][1:3] == ["()", "int16"]
    assert rows["/empty2"][1] == "3x0"
    assert rows["/many"][-2] == "256"


def test_executable_shows_a_scalar_change(shapes: tuple[Ick, list[str]]) -> None:
    ick, (_, second) = shapes
    result = run("show", "--json", second, "-R", str(ick.repo))
    assert result.returncode == 0, result.stderr
    assert "/x" in result.stdout
    result = run("diff", "main~1", "main", "-R", str(ick.repo))
    assert result.returncode == 0, result.stderr
    assert "4 chunks changed" in result.stdout


def test_terminal_layout(shapes: tuple[Ick, list[str]]) -> None:
    ick, (first, second) = shapes
    rich = {"ICK_TERMINAL": "1", "NO_COLOR": "1"}
    for args in (("show", second), ("diff", first, second), ("diff", second, first)):
        out = ick.ok(*args, env=rich).stdout
        assert "4 chunks changed in 4 arrays" in out
        assert any(line.split()[2:] == ["/x", "1"] for line in out.splitlines()), out
    listing = ick.ok("ls", "-l", env=rich).stdout
    row = next(line.split() for line in listing.splitlines() if line.startswith("/x "))
    assert row[1:5] == ["()", "int16", "()", "1/1"], row
