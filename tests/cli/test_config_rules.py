"""``ick config`` on a repository whose config holds manifest splitting and preload rules."""

from __future__ import annotations

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
    rules = '[[{"kind": "name_matches", "regex": "temperature"}, [[{"kind": "dimension_name", "regex": "time"}, 24]]], [{"kind": "any_array"}, [[{"kind": "axis", "axis": 0}, 100]]]]'
    shown = ick.json("config", "set", "manifest.splitting.split_sizes", rules)
    assert shown["previous"] is None and shown["value"][1][0] == {"kind": "any_array"}
    ick.ok("config", "set", "manifest.preload", '{"max_total_refs": 5000, "preload_if": null}')
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None and fetched.manifest.splitting == _config().manifest.splitting
    assert fetched.manifest.preload == _config().manifest.preload
    ick.ok("config", "set", "manifest.splitting", "null")
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None and fetched.manifest.splitting is None
