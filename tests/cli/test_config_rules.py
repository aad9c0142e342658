"""``ick config`` on a repository whose config holds manifest splitting and preload rules."""

from __future__ import annotations

import json
from pathlib import Path

import icechunk_lib as ic

from .conftest import Ick

S = ic.ManifestSplitCondition
D = ic.ManifestSplitDimCondition


def _config() -> ic.RepositoryConfig:
    splitting = ic.ManifestSplittingConfig.from_dict(
        {
            S.name_matches("temperature"): {D.DimensionName("time"): 24},
            S.AnyArray(): {D.Axis(0): 100},
        }
    )
    preload = ic.ManifestPreloadConfig(max_total_refs=5000)
    return ic.RepositoryConfig(manifest=ic.ManifestConfig(splitting=splitting, preload=preload))


def test_ick_config_shows_the_rules_and_keeps_them_on_set(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    storage = ic.local_filesystem_storage(path)
    ic.Repository.create(storage, config=_config())
    ick = Ick(path)
    shown = ick.ok("config", "show").stdout
    assert "manifest.splitting.split_sizes" in shown and "temperature" in shown
    settings = ick.json("config", "show")["config"]
    rules = settings["manifest"]["splitting"]["split_sizes"]
    assert rules[1] == [{"kind": "any_array"}, [[{"kind": "axis", "axis": 0}, 100]]]
    assert settings["manifest"]["preload"]["max_total_refs"] == 5000
    ick.ok("config", "set", "compression.level", "5")
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None and fetched.manifest == _config().manifest
    result = ick.fails(2, "config", "set", "manifest.splitting.split_sizes.kind", "x")
    assert "manifest.splitting.split_sizes.kind is not set from text" in result.stderr
    result = ick.fails(2, "config", "set", "manifest.splitting", "[1")
    assert "manifest.splitting takes JSON" in result.stderr


def test_ick_config_set_takes_rules_as_json(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    storage = ic.local_filesystem_storage(path)
    ic.Repository.create(storage)
    ick = Ick(path)
    rules = json.dumps(
        [
            [
                {"kind": "name_matches", "regex": "temperature"},
                [[{"kind": "dimension_name", "regex": "time"}, 24]],
            ],
            [{"kind": "any_array"}, [[{"kind": "axis", "axis": 0}, 100]]],
        ]
    )
    shown = ick.json("config", "set", "manifest.splitting.split_sizes", rules)
    assert shown["previous"] is None and shown["value"][1][0] == {"kind": "any_array"}
    ick.ok("config", "set", "manifest.preload", '{"max_total_refs": 5000, "preload_if": null}')
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None and fetched.manifest.splitting == _config().manifest.splitting
    assert fetched.manifest.preload == _config().manifest.preload
    ick.ok("config", "set", "manifest.splitting", "null")
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None and fetched.manifest.splitting is None


def test_ick_rewrite_manifests_applies_the_layout_as_a_commit(tmp_path: Path) -> None:
    import numpy as np
    import zarr

    path = tmp_path / "repo"
    storage = ic.local_filesystem_storage(path)
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    arr = zarr.group(session.store).create_array(
        "temperature", shape=(8, 6), chunks=(1, 1), dtype="i4"
    )
    arr[:] = np.arange(1, 49).reshape(8, 6)
    before = session.commit("data")
    ick = Ick(path)
    rules = (
        '[[{"kind": "name_matches", "regex": "temperature"}, [[{"kind": "axis", "axis": 0}, 3]]]]'
    )
    ick.ok("config", "set", "manifest.splitting.split_sizes", rules)
    done = ick.json("rewrite-manifests", "-b", "main", "-m", "split by 3 rows")
    assert done["branch"] == "main" and done["snapshot_id"] == repo.lookup_branch("main")
    info = repo.lookup_snapshot(done["snapshot_id"])
    assert info.parent_id == before and info.message == "split by 3 rows"
    assert not repo.diff(from_snapshot_id=before, to_snapshot_id=info.id).updated_chunks
    shown = ick.ok("rewrite-manifests").stdout
    assert "Rewrote manifests on main" in shown
    ick.fails(3, "rewrite-manifests", "-b", "nope")
    read = zarr.open_array(repo.readonly_session("main").store, path="temperature", mode="r")
    np.testing.assert_array_equal(read[:], np.arange(1, 49).reshape(8, 6))
