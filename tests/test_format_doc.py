"""The minimal reader printed in docs/format.md reads what ick writes, and refuses what ick
refuses: the specification stays true to the code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import icechunk_lib as ic

DOC = Path(__file__).resolve().parents[1] / "docs" / "format.md"


def reader() -> dict[str, Any]:
    """The appendix's code, executed as a module."""
    text = DOC.read_text(encoding="utf-8")
    appendix = text[text.index("## Appendix: a minimal reader") :]
    (code,) = re.findall(r"```python\n(.*?)```", appendix, flags=re.DOTALL)
    namespace: dict[str, Any] = {"__name__": "minimal_reader"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, list[str]]:
    """A local repository with an array of native and inline chunks, committed twice."""
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(str(root)))
    ids = []
    for scale in (1, 2):
        session = repo.writable_session("main")
        group = zarr.open_group(session.store, mode="a")
        if "a" not in group:
            group.create_array("a", shape=(300,), chunks=(100,), dtype="int64", compressors=None)
        arr = group["a"]
        arr[:200] = np.arange(200) * scale  # two native chunks of 800 bytes
        arr[200:] = 0  # an all-zero chunk: zarr stores nothing, the fill value stands
        small = group.create_array(f"small{scale}", shape=(4,), dtype="int8", compressors=None)
        small[:] = scale  # 4 bytes: inline in the manifest
        ids.append(session.commit(f"version {scale}"))
    return root, ids


def test_the_minimal_reader_reads_what_ick_writes(written: tuple[Path, list[str]]) -> None:
    root, (first, second) = written
    r = reader()
    assert r["resolve"](root) == second
    history = [entry[0] for entry in r["history"](root, second)]
    assert history[:2] == [second, first] and len(history) == 3
    for snap, scale in ((first, 1), (second, 2)):
        for i in (0, 1):
            raw = r["read_chunk"](root, snap, "/a", (i,))
            expected = np.arange(100 * i, 100 * i + 100, dtype="<i8") * scale
            assert raw == expected.tobytes()
        assert r["read_chunk"](root, snap, "/a", (2,)) is None
    small = r["read_chunk"](root, second, "/small2", (0,))
    assert small is not None and np.frombuffer(small, "i1").tolist() == [2, 2, 2, 2]


def test_the_minimal_reader_refuses_a_file_under_the_wrong_name(
    written: tuple[Path, list[str]],
) -> None:
    root, (first, second) = written
    shutil.copyfile(root / "snapshots" / first, root / "snapshots" / second)
    with pytest.raises(ValueError, match=f"holds object {first}, not {second}"):
        reader()["read_chunk"](root, second, "/a", (0,))


def test_the_minimal_reader_reads_pieces_cut_by_region(tmp_path: Path) -> None:
    """Region pieces (a version 3 snapshot) beside a row-major piece kept from before."""
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(str(root)))
    session = repo.writable_session("main")
    arr = zarr.group(session.store).create_array(
        "t", shape=(6, 8), chunks=(1, 1), dtype="i1", compressors=None
    )
    arr[:] = np.arange(1, 49).reshape(6, 8)
    session.commit("row-major")
    S, D = ic.ManifestSplitCondition, ic.ManifestSplitDimCondition
    repo.config.manifest.splitting = ic.ManifestSplittingConfig.from_dict(
        {S.AnyArray(): {D.Axis(0): 2, D.Axis(1): 3}}
    )
    repo.save_config()
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="t")[5, 7] = -1
    sid = session.commit("one region")
    r = reader()
    expected = np.arange(1, 49).reshape(6, 8)
    expected[5, 7] = -1
    for i in range(6):
        for j in range(8):
            raw = r["read_chunk"](root, sid, "/t", (i, j))
            assert raw is not None and np.frombuffer(raw, "i1")[0] == expected[i, j]
    sid = repo.rewrite_manifests("all by region", branch="main")
    assert all(
        np.frombuffer(r["read_chunk"](root, sid, "/t", (i, j)), "i1")[0] == expected[i, j]
        for i in range(6)
        for j in range(8)
    )


@pytest.mark.parametrize("etag", ["", '"v1"'], ids=["version 2", "version 3"])
def test_the_minimal_reader_finds_virtual_rows_and_their_etag(tmp_path: Path, etag: str) -> None:
    """A virtual row, with an ETag (a version 3 manifest) or without, beside a native one."""
    root = tmp_path / "repo"
    config = ic.RepositoryConfig.default()
    prefix = "s3://archive/"
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(prefix, ic.s3_store()))
    repo = ic.Repository.create(ic.local_filesystem_storage(str(root)), config)
    session = repo.writable_session("main")
    arr = zarr.group(session.store).create_array(
        "v", shape=(2000,), chunks=(1000,), dtype="i1", compressors=None
    )
    arr[:1000] = 7
    session.store.set_virtual_ref(
        "v/c/1", prefix + "f.nc", offset=64, length=1000, checksum=etag or None
    )
    sid = session.commit("native and virtual")
    r = reader()
    assert r["read_chunk"](root, sid, "/v", (0,)) == bytes([7]) * 1000
    with pytest.raises(NotImplementedError) as exc:
        r["read_chunk"](root, sid, "/v", (1,))
    assert str(exc.value) == f"virtual chunk in {prefix}f.nc (ETag {etag!r}), bytes 64..1064"
