"""``ick import-refs``: a reference set committed as one commit, its output in both modes, and
refusals (undeclared containers, malformed sets, missing files) that leave the branch alone.
The end-to-end test runs the real ``ick`` on kerchunk's references to an h5py file."""

from __future__ import annotations

import base64
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.format.manifest import VIRTUAL
from icechunk_lib.session import workspace_of

from .conftest import Ick, Sample
from .test_e2e import ICK, run


def declare(repo_path: Path, prefix: str, directory: Path) -> None:
    """Declare a local virtual chunk container in the repository's config."""
    repo = ic.Repository.open(ic.local_filesystem_storage(str(repo_path)))
    repo.config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(str(directory)))
    )
    repo.save_config()


def refs_file(directory: Path, url: str) -> Path:
    inline = np.arange(4, dtype="<i2").tobytes()
    doc = {
        "version": 1,
        "refs": {
            ".zgroup": '{"zarr_format": 2}',
            "v/.zarray": json.dumps(
                {
                    "zarr_format": 2,
                    "shape": [8],
                    "chunks": [4],
                    "dtype": "<i2",
                    "fill_value": 0,
                    "order": "C",
                    "filters": None,
                    "compressor": None,
                }
            ),
            "v/.zattrs": '{"_ARRAY_DIMENSIONS": ["t"]}',
            "v/0": [url, 16, 8],
            "v/1": "base64:" + base64.b64encode(inline).decode(),
        },
    }
    path = directory / "refs.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def data(sample: Sample, tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    declare(sample.path, f"file://{directory}/", directory)
    return directory


def virtual_refs(repo_path: Path, branch: str, path: str) -> dict[tuple[int, ...], Any]:
    repo = ic.Repository.open(ic.local_filesystem_storage(str(repo_path)))
    session = repo.readonly_session(branch)
    ws = workspace_of(session)

    async def go() -> dict[tuple[int, ...], Any]:
        node = (await ws.nodes())[path]
        return {
            c: (r.location, r.offset, r.length)
            async for c, r in ws.iter_chunks(node)
            if r.kind == VIRTUAL
        }

    return ic._sync.run(go())


def test_import_refs_commits_the_set_as_one_commit(ick: Ick, sample: Sample, data: Path) -> None:
    before = ick.json("log")["snapshots"]
    refs = refs_file(data, "file.nc")  # relative: next to the reference file
    result = ick.ok("import-refs", str(refs), "-m", "Import refs", "--group", "/virt")
    assert result.stdout.startswith("Committed ")
    assert " to main (parent " in result.stdout
    table = result.stdout.splitlines()[1:]
    assert table[0].split() == ["what", "count"]
    assert {tuple(line.rsplit(None, 1)) for line in table[1:]} == {
        ("arrays", "1"),
        ("groups", "1"),
        ("virtual chunks", "1"),
        ("inline chunks", "1"),
        ("objects", "1"),
    }
    after = ick.json("log")["snapshots"]
    assert len(after) == len(before) + 1 and after[0]["message"] == "Import refs"
    changes = ick.json("show", "main")["changes"]
    assert changes["groups"] == {"added": ["/virt"], "deleted": [], "updated": []}
    assert changes["arrays"]["added"] == ["/virt/v"]
    assert virtual_refs(sample.path, "main", "/virt/v") == {(0,): (f"file://{data}/file.nc", 16, 8)}


def test_json_output_branch_and_metadata(ick: Ick, sample: Sample, data: Path) -> None:
    refs = refs_file(data, str(data / "file.nc"))
    doc = ick.json(
        "import-refs",
        str(refs),
        "-m",
        "x",
        "-b",
        "experiment",
        "--path",
        "g",
        "--metadata",
        "source=kerchunk",
    )
    assert doc["branch"] == "experiment" and doc["committed"] is True
    assert doc["stats"] == {
        "arrays": 1,
        "groups": 1,
        "virtual_chunks": 1,
        "inline_chunks": 1,
        "objects": 1,
    }
    assert doc["arrays"] == ["/g/v"]
    shown = ick.json("show", doc["snapshot_id"])["snapshot"]
    assert shown["metadata"] == {"source": "kerchunk"}
    assert shown["parent_id"] == doc["previous_id"]


def test_undeclared_containers_are_refused_with_how_to_declare(
    ick: Ick, data: Path, tmp_path: Path
) -> None:
    before = ick.json("branch", "list")
    refs = refs_file(data, "s3://elsewhere/nc/file.nc")
    result = ick.fails(3, "import-refs", str(refs), "-m", "x")
    assert "'s3://elsewhere/nc/'" in result.stderr
    assert "does not declare containers: declare them once in Python" in result.stderr
    error = json.loads(ick("import-refs", str(refs), "-m", "x", "--json").stderr)["error"]
    assert error["type"] == "UndeclaredContainersError"
    assert ick.json("branch", "list") == before


def test_malformed_and_missing_reference_files(ick: Ick, data: Path) -> None:
    before = ick.json("branch", "list")
    bad = data / "bad.json"
    bad.write_text(json.dumps({"a/.zarray": "{}", "a/0": ["x.nc", 1]}))
    result = ick.fails(2, "import-refs", str(bad), "-m", "x")
    assert "ick: error: cannot import" in result.stderr and "nothing was imported" in result.stderr
    error = json.loads(ick("import-refs", str(bad), "-m", "x", "--json").stderr)["error"]
    assert error["type"] == "InvalidReferencesError"
    result = ick.fails(3, "import-refs", str(data / "missing.json"), "-m", "x")
    assert "no such file or directory" in result.stderr
    assert ick.json("branch", "list") == before


def test_empty_arguments_are_usage_errors(ick: Ick, data: Path) -> None:
    refs = refs_file(data, "file.nc")
    assert ick("import-refs", "", "-m", "x").exit_code == 2
    assert ick("import-refs", str(refs), "-m", "x", "--group", "").exit_code == 2


@pytest.mark.skipif(not ICK.exists(), reason="the ick script is not installed")
@pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in:UserWarning")
@pytest.mark.parametrize("form", ["json", "parquet"])
def test_executable_imports_kerchunk_refs_of_an_hdf5_file(tmp_path: Path, form: str) -> None:
    from kerchunk.df import refs_to_dataframe
    from kerchunk.hdf import SingleHdf5ToZarr

    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "obs.h5"
    values = np.random.default_rng(3).normal(size=(6, 8)).astype("f4")
    with h5py.File(h5, "w") as f:
        f.create_dataset("obs", data=values, chunks=(3, 4), compression="gzip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refs = SingleHdf5ToZarr(str(h5), inline_threshold=0).translate()
        if form == "json":
            source = data / "refs.json"
            source.write_text(json.dumps(refs))
        else:
            source = data / "refs.parq"
            refs_to_dataframe(refs, str(source))
    repo = tmp_path / "repo"
    ic.Repository.create(ic.local_filesystem_storage(str(repo)))
    declare(repo, f"file://{data}/", data)

    done = run("-R", str(repo), "import-refs", str(source), "-m", "obs", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stats"]["virtual_chunks"] == 4
    with h5py.File(h5, "r") as f:
        dset = f["obs"]
        expected = {}
        for i in range(dset.id.get_num_chunks()):
            info = dset.id.get_chunk_info(i)
            index = tuple(o // c for o, c in zip(info.chunk_offset, dset.chunks, strict=True))
            expected[index] = (f"file://{h5}", info.byte_offset, info.size)
    assert virtual_refs(repo, "main", "/obs") == expected
    reader = ic.Repository.open(
        ic.local_filesystem_storage(str(repo)),
        authorize_virtual_chunk_access={f"file://{data}/": None},
    )
    stored = zarr.open_array(reader.readonly_session("main").store, path="obs", mode="r")
    np.testing.assert_array_equal(stored[...], values)

    failed = subprocess.run(
        [str(ICK), "-R", str(repo), "import-refs", str(data / "nope.json"), "-m", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 3 and "Traceback" not in failed.stderr
