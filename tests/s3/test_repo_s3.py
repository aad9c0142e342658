"""Repository behaviour on real S3-compatible servers, as on a local disk: round trips,
time travel, branches and tags, errors, pickling (in this process and in a real subprocess
with credentials from the environment), xarray."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import s3_servers
import zarr
from s3_servers import S3Server, StorageFactory

import icechunk_lib as ic


def _commit_array(repo: ic.Repository, value: int, message: str, branch: str = "main") -> str:
    session = repo.writable_session(branch)
    zarr.open_array(session.store, path="g/a", mode="r+")[:] = value
    return session.commit(message)


def _read(repo: ic.Repository, **where: object) -> np.ndarray:  # type: ignore[type-arg]
    session = repo.readonly_session(**where)  # type: ignore[arg-type]
    return zarr.open_array(session.store, path="g/a", mode="r")[:]  # type: ignore[return-value]


def _with_array(storage: ic.Storage) -> ic.Repository:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    group = root.create_group("g", attributes={"kind": "group"})
    # Native chunks (1600 bytes each) and an inline array.
    arr = group.create_array("a", shape=(4, 200), chunks=(1, 200), dtype="f8", compressors=None)
    arr[:] = 0
    root.create_array("small", shape=(6,), chunks=(2,), dtype="i2")[:] = np.arange(6)
    session.commit("setup")
    return repo


def test_round_trip_and_time_travel(s3: ic.Storage, new_s3: StorageFactory) -> None:
    repo = _with_array(s3)
    first = _commit_array(repo, 1, "one")
    repo.create_tag("v1", first)
    time.sleep(0.01)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    second = _commit_array(repo, 2, "two")

    reopened = ic.Repository.open(new_s3(s3.prefix))  # type: ignore[attr-defined]
    assert reopened.lookup_branch("main") == second
    np.testing.assert_array_equal(_read(reopened), np.full((4, 200), 2.0))
    np.testing.assert_array_equal(_read(reopened, snapshot_id=first), np.full((4, 200), 1.0))
    np.testing.assert_array_equal(_read(reopened, tag="v1"), np.full((4, 200), 1.0))
    np.testing.assert_array_equal(
        _read(reopened, branch="main", as_of=between), np.full((4, 200), 1.0)
    )
    root = zarr.open_group(reopened.readonly_session("main").store, mode="r")
    assert root["g"].attrs["kind"] == "group"
    np.testing.assert_array_equal(root["small"][:], np.arange(6))  # type: ignore[index]
    assert [e.message for e in reopened.ancestry(branch="main")] == [
        "two",
        "one",
        "setup",
        "Repository initialized",
    ]
    diff = reopened.diff(from_snapshot_id=first, to_snapshot_id=second)
    assert set(diff.updated_chunks) == {"/g/a"}


def test_branches_and_tags(s3: ic.Storage) -> None:
    repo = _with_array(s3)
    base = repo.lookup_branch("main")
    repo.create_branch("dev", base)
    on_dev = _commit_array(repo, 5, "dev work", branch="dev")
    assert repo.list_branches() == {"main", "dev"}
    np.testing.assert_array_equal(_read(repo, branch="main"), np.zeros((4, 200)))
    repo.reset_branch("main", on_dev)
    assert repo.lookup_branch("main") == on_dev
    with pytest.raises(ic.ConflictError):
        repo.reset_branch("main", base, from_snapshot_id=base)
    repo.delete_branch("dev")
    assert repo.list_branches() == {"main"}
    with pytest.raises(ic.BranchAlreadyExistsError):
        repo.create_branch("main", base)

    repo.create_tag("t", base)
    with pytest.raises(ic.TagAlreadyExistsError):
        repo.create_tag("t", on_dev)
    assert repo.lookup_tag("t") == base
    repo.delete_tag("t")
    assert repo.list_tags() == set()
    with pytest.raises(ic.TagAlreadyExistsError):
        repo.create_tag("t", on_dev)  # names of deleted tags are never reused


def test_a_tag_is_created_once_by_racing_creators(s3: ic.Storage, new_s3: StorageFactory) -> None:
    repo = _with_array(s3)
    tip = repo.lookup_branch("main")
    racers = [ic.Repository.open(new_s3(s3.prefix)) for _ in range(6)]  # type: ignore[attr-defined]
    barrier = threading.Barrier(len(racers))

    def create(i: int) -> bool:
        barrier.wait()
        try:
            racers[i].create_tag("release", tip)
        except ic.TagAlreadyExistsError:
            return False
        return True

    with ThreadPoolExecutor(len(racers)) as pool:
        won = list(pool.map(create, range(len(racers))))
    assert won.count(True) == 1
    assert repo.lookup_tag("release") == tip


def test_errors_are_the_local_ones(s3: ic.Storage, new_s3: StorageFactory) -> None:
    with pytest.raises(ic.RepositoryNotFoundError) as missing:
        ic.Repository.open(s3)
    assert s3.url in str(missing.value)
    repo = _with_array(s3)
    with pytest.raises(ic.RepositoryAlreadyExistsError):
        ic.Repository.create(new_s3(s3.prefix))  # type: ignore[attr-defined]
    with pytest.raises(ic.BranchNotFoundError):
        repo.writable_session("nope")
    with pytest.raises(ic.TagNotFoundError):
        repo.readonly_session(tag="nope")
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.readonly_session(snapshot_id="0" * 20)
    with pytest.raises(ic.InvalidNameError):
        repo.create_branch("../escape", repo.lookup_branch("main"))
    session = repo.writable_session("main")
    with pytest.raises(ValueError, match=r"'\.\.' segments"):
        zarr.open_group(session.store, mode="r+").create_array("../out", shape=(1,), dtype="i1")
    text = " ".join(str(e) for e in (missing.value,))
    assert s3_servers.SECRET_KEY not in text + repr(repo) + repr(s3)


def test_pickled_repository_and_session_in_this_process(s3: ic.Storage) -> None:
    repo = _with_array(s3)
    data = pickle.dumps(repo)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="g/a", mode="r+")[0] = 7
    session_data = pickle.dumps(session)
    assert s3_servers.SECRET_KEY.encode() not in data + session_data

    back = pickle.loads(session_data)
    new_id = back.commit("from a pickle")
    again = pickle.loads(data)
    assert again.lookup_branch("main") == new_id
    np.testing.assert_array_equal(_read(again)[0], np.full(200, 7.0))


CHILD = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np, zarr
    repo, session = pickle.loads(sys.stdin.buffer.read())
    before = zarr.open_array(repo.readonly_session("main").store, path="g/a", mode="r")[:]
    zarr.open_array(session.store, path="g/a", mode="r+")[1] = before[0, 0] + 40
    print(session.commit("from a child process"))
    """
)


def test_pickles_travel_to_a_subprocess_with_credentials_from_the_environment(
    s3_server: S3Server, new_s3: StorageFactory
) -> None:
    """Keys passed in code do not travel; the child resolves them from its environment."""
    storage = new_s3()
    repo = _with_array(storage)
    payload = pickle.dumps((repo, repo.writable_session("main")))
    assert s3_servers.SECRET_KEY.encode() not in payload
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3_servers.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": s3_servers.SECRET_KEY,
        "AWS_DEFAULT_REGION": s3_servers.REGION,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=payload,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    new_id = done.stdout.decode().split()[-1]
    assert repo.lookup_branch("main") == new_id
    np.testing.assert_array_equal(_read(repo)[1], np.full(200, 40.0))
    assert s3_servers.SECRET_KEY not in done.stdout.decode() + done.stderr.decode()


def test_xarray_round_trip(s3: ic.Storage) -> None:
    xr = pytest.importorskip("xarray")
    repo = ic.Repository.create(s3)
    ds = xr.Dataset(
        {"t": (("time", "x"), np.arange(24.0).reshape(6, 4), {"units": "K"})},
        coords={"time": np.arange(6), "x": np.arange(4)},
        attrs={"title": "on S3"},
    )
    session = repo.writable_session("main")
    ds.to_zarr(session.store, consolidated=False)
    first = session.commit("dataset")
    session = repo.writable_session("main")
    extra = ds.isel(time=[0]).assign_coords(time=[6])
    extra.to_zarr(session.store, append_dim="time", consolidated=False)
    session.commit("append")
    got = xr.open_zarr(repo.readonly_session("main").store, consolidated=False)
    xr.testing.assert_identical(got.load(), xr.concat([ds, extra], dim="time"))
    old = xr.open_zarr(repo.readonly_session(snapshot_id=first).store, consolidated=False)
    xr.testing.assert_identical(old.load(), ds)
