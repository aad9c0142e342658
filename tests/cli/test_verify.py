"""``ick verify``: the verdict, each problem listed, exit code 5 on damage, and --json."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import zarr

import icechunk_lib as ic
from icechunk_cli import errors

from .conftest import Ick, Sample
from .test_e2e import run


def _chunk_keys(root: Path) -> list[Path]:
    return sorted((root / "chunks").iterdir())


@pytest.fixture
def native(tmp_path: Path) -> Ick:
    """``ick`` on a repository whose array chunks are stored natively (above the inline size)."""
    import numpy as np
    import zarr

    path = tmp_path / "native"
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)))
    session = repo.writable_session("main")
    array = zarr.create_array(session.store, name="a", shape=(1000,), chunks=(250,), dtype="f8")
    array[:] = np.random.default_rng(7).random(1000)  # incompressible: above the inline size
    session.commit("four native chunks")
    return Ick(path)


def test_clean_repository_exits_0_and_says_what_it_checked(ick: Ick, sample: Sample) -> None:
    report = ic.Repository.open(ic.local_filesystem_storage(str(sample.path))).verify()
    out = ick.ok("verify").stdout
    assert out.startswith("ok: checked ")
    assert f"{report.snapshots} snapshots" in out and f"{report.chunks} chunks" in out
    assert "(chunk sizes)" in out
    assert "(chunk contents)" in ick.ok("verify", "--data").stdout


def test_json_document_lists_counts_and_no_problems(ick: Ick, native: Ick) -> None:
    doc = ick.json("verify", "--data")
    assert doc["ok"] is True and doc["data"] is True and doc["problems"] == []
    assert doc["checked"]["refs"] == 4  # main, experiment, v1.0, v1.1
    assert native.json("verify")["checked"] == {
        "refs": 1,
        "expiration_records": 0,
        "snapshots": 2,
        "transaction_logs": 1,
        "manifests": 1,
        "chunks": 4,
        "virtual_chunks": 0,
        "virtual_locations": 0,
    }


def test_expiration_records_are_counted_once_there_are_some(native: Ick) -> None:
    assert native.repo is not None
    assert "expiration records" not in native.ok("verify").stdout
    repo = ic.Repository.open(ic.local_filesystem_storage(str(native.repo)))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="later", shape=(2,), dtype="i1")
    session.commit("later")
    assert repo.expire_snapshots(dt.datetime.now(dt.UTC)).record_id is not None
    assert native.json("verify")["checked"]["expiration_records"] == 1
    assert "1 expiration records" in native.ok("verify").stdout


def test_a_deleted_chunk_is_listed_and_exits_5(native: Ick) -> None:
    assert native.repo is not None
    ick = native
    victim = _chunk_keys(native.repo)[0]
    victim.unlink()
    result = ick("verify")
    assert result.exit_code == errors.EXIT_INTEGRITY, result.stdout
    assert f"chunks/{victim.name}" in result.stdout and "missing" in result.stdout
    assert "1 problem(s) found" in result.stdout
    result = ick("verify", "--json")
    assert result.exit_code == errors.EXIT_INTEGRITY
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert [(p["kind"], p["key"], p["message"]) for p in doc["problems"]] == [
        ("chunk", f"chunks/{victim.name}", "missing")
    ]
    assert doc["problems"][0]["reached_from"].startswith("manifest ")


def test_changed_chunk_bytes_need_data(native: Ick) -> None:
    assert native.repo is not None
    ick = native
    victim = _chunk_keys(native.repo)[-1]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF  # same length, other content
    victim.write_bytes(bytes(data))
    ick.ok("verify")
    result = ick("verify", "--data", "--json")
    assert result.exit_code == errors.EXIT_INTEGRITY
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["key"] == f"chunks/{victim.name}"
    assert "checksum" in problem["message"]


def test_verify_writes_nothing(ick: Ick, sample: Sample) -> None:
    before = {p: p.read_bytes() for p in sample.path.rglob("*") if p.is_file()}
    ick.ok("verify", "--data")
    after = {p: p.read_bytes() for p in sample.path.rglob("*") if p.is_file()}
    assert after == before


def test_no_repository_is_not_found(tmp_path: Path, bare_ick: Ick) -> None:
    bare_ick.fails(errors.EXIT_NOT_FOUND, "verify", "-R", str(tmp_path / "nothing"))


def test_the_executable_reports_damage_with_exit_5(sample: Sample) -> None:
    (sample.path / "refs" / "tag" / "v1.0" / "ref").write_bytes(b"garbage")
    result = run("verify", "-R", str(sample.path))
    assert result.returncode == errors.EXIT_INTEGRITY, result.stderr
    assert "refs/tag/v1.0/ref" in result.stdout
    assert "Traceback" not in result.stderr
