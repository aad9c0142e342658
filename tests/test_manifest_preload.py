"""Manifest preload at session open: which manifests are read, within the reference budget,
counted on real storage."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from faulty_storage import FaultyStorage
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.objects import MANIFESTS
from icechunk_lib.session import workspace_of

P = ic.ManifestPreloadCondition


def _repo(storage: ic.Storage) -> ic.Repository:
    """``/lat`` (10 chunks), ``/lon`` (30 chunks) and ``/data`` (200 chunks), each in its
    own manifest (``max_refs_per_manifest`` keeps them from sharing one)."""
    config = ic.RepositoryConfig(manifest=ic.ManifestConfig(max_refs_per_manifest=8))
    repo = ic.Repository.create(storage, config)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_array("lat", shape=(10,), chunks=(1,), dtype="i4")[:] = np.arange(1, 11)
    root.create_array("lon", shape=(30,), chunks=(1,), dtype="i4")[:] = np.arange(1, 31)
    root.create_array("data", shape=(200,), chunks=(1,), dtype="i4")[:] = np.arange(1, 201)
    session.commit("arrays")
    return repo


def _ordered(repo: ic.Repository, path: str) -> list[tuple[str, int]]:
    """(manifest key, references) of each piece of the array at ``path``, in order."""
    node = sync(workspace_of(repo.readonly_session("main")).nodes())[path]
    return [(MANIFESTS + m.manifest_id, m.count) for m in node.manifests]


def _pieces(repo: ic.Repository, path: str) -> set[str]:
    return {key for key, _ in _ordered(repo, path)}


def _opened(storage: ic.Storage, preload: ic.ManifestPreloadConfig, writable: bool) -> set[str]:
    """The manifests read while a session opens with ``preload``."""
    counting = FaultyStorage(storage)
    repo = ic.Repository.open(counting)
    repo.config.manifest.preload = preload
    counting.reset()
    if writable:
        repo.writable_session("main")
    else:
        repo.readonly_session("main")
    return {c.key for c in counting.calls if c.method == "get" and c.key.startswith(MANIFESTS)}


@pytest.mark.parametrize("writable", [False, True])
def test_matching_manifests_are_read_when_a_session_opens(
    storage: ic.Storage, writable: bool
) -> None:
    repo = _repo(storage)
    coords = _pieces(repo, "/lat") | _pieces(repo, "/lon")
    preload = ic.ManifestPreloadConfig(preload_if=P.name_matches("^(lat|lon)$"))
    assert _opened(storage, preload, writable) == coords
    by_size = ic.ManifestPreloadConfig(preload_if=P.num_refs(None, 9))
    small = _opened(storage, by_size, writable)
    assert small and small <= _pieces(repo, "/lat") | _pieces(repo, "/lon") | _pieces(repo, "/data")
    assert _opened(storage, ic.ManifestPreloadConfig(), writable) == set()
    assert _opened(storage, ic.ManifestPreloadConfig(preload_if=P.false()), writable) == set()


def test_the_budget_skips_manifests_that_would_exceed_it(storage: ic.Storage) -> None:
    repo = _repo(storage)
    data, lat, lon = (_ordered(repo, p) for p in ("/data", "/lat", "/lon"))
    assert [n for _, n in lat] == [8, 2] and [n for _, n in lon] == [8, 8, 8, 6]
    # Arrays in path order: two pieces of /data take 16 refs of the 20; every later piece
    # of 6 or 8 refs would exceed the budget and is skipped, /lat's 2-ref piece still fits.
    budget = ic.ManifestPreloadConfig(max_total_refs=20, preload_if=P.true())
    assert _opened(storage, budget, False) == {data[0][0], data[1][0], lat[1][0]}
    none = ic.ManifestPreloadConfig(max_total_refs=1, preload_if=P.true())
    assert _opened(storage, none, False) == set()


def test_a_preloaded_array_reads_without_fetching_a_manifest(storage: ic.Storage) -> None:
    _repo(storage)
    counting = FaultyStorage(storage)
    repo = ic.Repository.open(counting)
    repo.config.manifest.preload = ic.ManifestPreloadConfig(preload_if=P.name_matches("^lat$"))
    session = repo.readonly_session("main")
    counting.reset()
    np.testing.assert_array_equal(
        zarr.open_array(session.store, path="lat", mode="r")[:], np.arange(1, 11)
    )
    assert not [c for c in counting.calls if c.key.startswith(MANIFESTS)]
    zarr.open_array(session.store, path="data", mode="r")[0]
    assert [c for c in counting.calls if c.key.startswith(MANIFESTS)]


def test_a_missing_preloaded_manifest_is_reported_by_the_read_not_the_open(
    storage: ic.Storage,
) -> None:
    repo = _repo(storage)
    lost = _ordered(repo, "/lat")[0][0]
    sync(storage.delete(lost))
    repo = ic.Repository.open(storage)
    repo.config.manifest.preload = ic.ManifestPreloadConfig(preload_if=P.true())
    session = repo.readonly_session("main")  # opens
    with pytest.raises(ic.IntegrityError):
        zarr.open_array(session.store, path="lat", mode="r")[:]
