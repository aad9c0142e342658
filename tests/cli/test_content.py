"""``ick ls`` and ``ick commit --from``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from icechunk_cli.commands.commit import parse_metadata
from icechunk_cli.commands.ls import split_ref_and_path

from .conftest import Ick, Sample

# --- ls ------------------------------------------------------------------------------------------


def test_ls_json_lists_children_with_node_info_fields(ick: Ick, sample: Sample) -> None:
    doc = ick.json("ls")
    assert doc["snapshot_id"] == sample.ids["day4"]
    assert doc["path"] == "/"
    assert [(n["path"], n["kind"]) for n in doc["nodes"]] == [
        ("/temps", "array"),
        ("/weather", "group"),
    ]
    temps = doc["nodes"][0]
    assert set(temps) == {
        "path",
        "kind",
        "shape",
        "dtype",
        "chunk_shape",
        "attributes",
        "chunks_written",
        "bytes_written",
        "native_chunks",
        "inline_chunks",
        "virtual_chunks",
        "virtual_bytes",
    }
    assert temps["shape"] == [10, 4, 4]
    assert temps["chunk_shape"] == [1, 4, 4]
    assert temps["dtype"] == "float32"
    assert temps["chunks_written"] is None
    assert temps["virtual_chunks"] is None  # counted only with -l
    assert doc["nodes"][1]["attributes"] == {"title": "weather"}


def test_ls_long_recursive_counts_chunks_and_bytes(ick: Ick) -> None:
    nodes = ick.json("ls", "-l", "-r")["nodes"]
    assert [n["path"] for n in nodes] == ["/temps", "/weather", "/weather/precip"]
    assert nodes[0]["chunks_written"] == 4
    assert nodes[2]["chunks_written"] == 3
    assert nodes[2]["bytes_written"] > 0
    assert nodes[0]["native_chunks"] + nodes[0]["inline_chunks"] == 4
    assert nodes[0]["virtual_chunks"] == nodes[0]["virtual_bytes"] == 0
    lines = ick.ok("ls", "-l", "-r").stdout.splitlines()
    assert lines[0].split() == ["path", "shape", "dtype", "chunks", "written", "bytes"]
    assert lines[1].split()[:5] == ["/temps", "10x4x4", "float32", "1x4x4", "4"]
    assert lines[2].split() == ["/weather/"]


def test_ls_of_a_ref_and_a_path(ick: Ick, sample: Sample) -> None:
    doc = ick.json("ls", "experiment", "weather")
    assert doc["path"] == "/weather"
    assert doc["snapshot_id"] == sample.ids["exp2"]
    assert [n["path"] for n in doc["nodes"]] == ["/weather/precip"]
    assert [n["path"] for n in ick.json("ls", "experiment")["nodes"]] == ["/weather"]
    assert [n["path"] for n in ick.json("ls", "/weather")["nodes"]] == ["/weather/precip"]
    # An array lists itself, as ls(1) lists a file.
    assert [n["path"] for n in ick.json("ls", "/temps", "-l")["nodes"]] == ["/temps"]
    ick.fails(3, "ls", "/nothing")
    ick.fails(3, "ls", "v1.0", "/weather/nothing")


def test_ls_terminal_layout(ick: Ick) -> None:
    out = ick.ok("ls", "-l", "-r", env={"ICK_TERMINAL": "1", "NO_COLOR": "1"}).stdout
    assert "10\N{MULTIPLICATION SIGN}4\N{MULTIPLICATION SIGN}4" in out
    assert "4/10" in out  # chunks written of the grid's total
    assert " B" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((None, None), (None, "/")),
        (("/a/b", None), (None, "/a/b")),
        (("v1", None), ("v1", "/")),
        (("v1", "a"), ("v1", "/a")),
        (("v1", "/a"), ("v1", "/a")),
    ],
)
def test_split_ref_and_path(
    args: tuple[str | None, str | None], expected: tuple[str | None, str]
) -> None:
    assert split_ref_and_path(*args) == expected


# --- commit --from -------------------------------------------------------------------------------


def write_store(path: Path) -> Any:
    """A plain Zarr v3 directory store with a group, two arrays and 12 chunks."""
    import numpy as np
    import zarr

    root = zarr.open_group(str(path), mode="w", attributes={"source": "model"})
    temps = root.create_array("temps", shape=(8, 4), chunks=(1, 4), dtype="f8", fill_value=0)
    temps[:] = np.arange(32, dtype="f8").reshape(8, 4)
    sub = root.create_group("sub")
    sub.create_array("counts", shape=(40,), chunks=(10,), dtype="i8")[:] = np.arange(40)
    return root


def test_commit_from_a_store_then_only_changed_chunks(ick: Ick, tmp_path: Path) -> None:
    source = tmp_path / "source.zarr"
    root = write_store(source)
    doc = ick.json(
        "commit", "-m", "Import", "--from", str(source), "--path", "/model",
        "--metadata", "who=ana", "--metadata", "run=7",
    )  # fmt: skip
    assert doc["committed"] is True
    stats = doc["stats"]
    assert stats["arrays_created"] == 2
    assert stats["groups_created"] >= 2
    assert stats["chunks_written"] == 12
    assert stats["chunks_unchanged"] == 0
    assert set(stats) >= {
        "groups_created",
        "groups_updated",
        "groups_deleted",
        "arrays_created",
        "arrays_updated",
        "arrays_deleted",
        "chunks_written",
        "chunks_unchanged",
        "chunks_deleted",
        "bytes_written",
    }
    shown = ick.json("show")["snapshot"]
    assert shown["id"] == doc["snapshot_id"]
    assert shown["parent_id"] == doc["previous_id"]
    assert shown["metadata"] == {"who": "ana", "run": "7"}
    paths = [n["path"] for n in ick.json("ls", "/model", "-r")["nodes"]]
    assert paths == ["/model/sub", "/model/sub/counts", "/model/temps"]

    root["temps"][3] = -1.0  # one chunk changes
    again = ick.json("commit", "-m", "Update", "--from", str(source), "--path", "/model")
    assert again["committed"] is True
    assert again["stats"]["chunks_written"] == 1
    assert again["stats"]["chunks_unchanged"] == 11
    diff = ick.json("diff", "main")
    assert diff["chunks"] == [{"path": "/model/temps", "count": 1, "coords": [[3, 0]]}]

    same = ick.ok("commit", "-m", "Again", "--from", str(source), "--path", "/model")
    assert same.stdout.startswith("Nothing to commit: main already matches ")
    nothing = ick.json("commit", "-m", "Again", "--from", str(source), "--path", "/model")
    assert nothing["committed"] is False
    assert nothing["snapshot_id"] is None
    assert nothing["previous_id"] == again["snapshot_id"]


def test_commit_plain_output_and_a_branch(ick: Ick, tmp_path: Path) -> None:
    source = tmp_path / "s.zarr"
    write_store(source)
    out = ick.ok(
        "commit", "-m", "Import", "--from", str(source), "-b", "experiment", "--yes"
    ).stdout
    lines = out.splitlines()
    assert lines[0].startswith("Committed ") and " to experiment (parent " in lines[0]
    assert ["chunks", "written", "12"] in [line.split() for line in lines]
    tip = ick.json("log", "experiment", "-n", "1")["snapshots"][0]
    assert tip["message"] == "Import"
    # the import replaced experiment's tree by the source's: /weather is gone
    assert [n["path"] for n in ick.json("ls", "experiment")["nodes"]] == ["/sub", "/temps"]


def test_commit_errors(ick: Ick, tmp_path: Path) -> None:
    ick.fails(3, "commit", "-m", "x", "--from", str(tmp_path / "missing"))
    source = tmp_path / "s.zarr"
    write_store(source)
    ick.fails(3, "commit", "-m", "x", "--from", str(source), "-b", "nope")
    ick.fails(2, "commit", "-m", "x", "--from", str(source), "--metadata", "novalue")
    ick.fails(2, "commit", "--from", str(source))  # no message


def test_parse_metadata() -> None:
    assert parse_metadata(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}


def test_commit_progress_goes_to_stderr_on_a_terminal_only(ick: Ick, tmp_path: Path) -> None:
    source = tmp_path / "s.zarr"
    write_store(source)
    shown = ick.ok("commit", "-m", "a", "--from", str(source), "-y", env={"ICK_TERMINAL": "1"})
    assert "scan" in shown.stderr and "chunks" in shown.stderr
    assert "scan" not in shown.stdout
    ick.ok("branch", "create", "other", "v1.0")
    quiet = ick.ok("commit", "-m", "b", "--from", str(source), "-b", "other", "-y")
    assert quiet.stderr == ""


# --- ls: data types and narrow terminals (issue 8) -----------------------------------------------


@pytest.fixture
def odd_dtypes(tmp_path: Path) -> Path:
    """A repository with structured, bytes, text, datetime64 arrays and a deep long path."""
    import warnings

    import numpy as np
    import zarr

    import icechunk_lib as ic

    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "odd"))
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns that some of these are not in the spec
        root.create_array(
            "records", shape=(4,), chunks=(2,), dtype=np.dtype([("a", "<i4"), ("b", "<f8")])
        )
        root.create_array("raw", shape=(4,), chunks=(2,), dtype="S5")
        root.create_array("text", shape=(4,), chunks=(2,), dtype="U7")
        root.create_array("when", shape=(4,), chunks=(2,), dtype="datetime64[ns]")
        root.create_array("every", shape=(4,), chunks=(2,), dtype="timedelta64[10s]")
        root.create_array(
            "measurements/station_alpha/sensor_readings_temperature",
            shape=(1000, 2000),
            chunks=(100, 100),
            dtype="f4",
        )
    session.commit("odd dtypes")
    return tmp_path / "odd"


EXPECTED_DTYPES = {
    "/records": "struct{a:int32,b:float64}",
    "/raw": "bytes[5]",
    "/text": "str[7]",
    "/when": "datetime64[ns]",
    "/every": "timedelta64[10s]",
}


def test_ls_prints_readable_dtypes(odd_dtypes: Path) -> None:
    ick = Ick(odd_dtypes)
    rows = {line.split()[0]: line.split() for line in ick.ok("ls", "-l").stdout.splitlines()[1:]}
    for path, name in EXPECTED_DTYPES.items():
        assert rows[path][2] == name, rows[path]
        assert len(rows[path]) == 6  # no spaces inside the dtype column
    doc = ick.json("ls")  # JSON keeps the library's exact data_type
    records = next(n for n in doc["nodes"] if n["path"] == "/records")
    assert json.loads(records["dtype"])["name"] == "structured"


@pytest.mark.parametrize("columns", [80, 40])
def test_ls_long_keeps_paths_readable_on_narrow_terminals(odd_dtypes: Path, columns: int) -> None:
    ick = Ick(odd_dtypes)
    env = {"ICK_TERMINAL": "1", "NO_COLOR": "1", "COLUMNS": str(columns)}
    out = ick.ok("ls", "-l", "-r", env=env).stdout
    lines = out.splitlines()
    assert all(len(line) <= columns for line in lines), out
    deep = next(line for line in lines if "1000\N{MULTIPLICATION SIGN}2000" in line)
    assert deep.startswith("/measurements/s")  # the path keeps 15 characters and an ellipsis
    for path in EXPECTED_DTYPES:
        assert any(line.startswith(path + " ") for line in lines), (path, out)
    if columns == 80:  # the columns fit; path and dtype share what is left
        for name in EXPECTED_DTYPES.values():
            assert name[:14] in out
        assert "1000\N{MULTIPLICATION SIGN}2000" in out and "0/200" in out
