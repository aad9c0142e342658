"""Manifest splitting and preload in the saved repository config, and what stays compatible.

The config is a map rewritten on every save: the new settings are optional, an unset one is
not written (so an unchanged config keeps the bytes earlier versions wrote), and earlier
readers skip them as unknown fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.format import ObjectKind, decode_config, decode_object, encode_config
from icechunk_lib.format._framing import encode_object

S = ic.ManifestSplitCondition
D = ic.ManifestSplitDimCondition
P = ic.ManifestPreloadCondition
GOLDEN = sorted((Path(__file__).parent / "data").glob("format2*/config"))


def _manifest_config() -> ic.ManifestConfig:
    return ic.ManifestConfig(
        max_refs_per_manifest=1000,
        splitting=ic.ManifestSplittingConfig.from_dict(
            {
                S.name_matches("temperature") | S.path_matches("^/ocean/"): {
                    D.DimensionName("time"): 24,
                    D.Any(): 4,
                },
                S.AnyArray(): {D.Axis(0): 100},
            }
        ),
        preload=ic.ManifestPreloadConfig(
            max_total_refs=5000, preload_if=P.name_matches("^(time|lat|lon)$")
        ),
    )


class _Format2Manifest(msgspec.Struct, kw_only=True):
    """``ManifestConfig`` as format 2 first shipped it (before splitting and preload)."""

    max_refs_per_manifest: int = 100_000


class _Format2Config(msgspec.Struct, kw_only=True):
    """``RepositoryConfig`` as format 2 first shipped it: what an earlier ick reads."""

    inline_chunk_threshold_bytes: int = 512
    get_partial_values_concurrency: int = 10
    compression: ic.CompressionConfig = msgspec.field(default_factory=ic.CompressionConfig)
    caching: ic.CachingConfig = msgspec.field(default_factory=ic.CachingConfig)
    manifest: _Format2Manifest = msgspec.field(default_factory=_Format2Manifest)


def test_save_and_fetch_keep_splitting_and_preload(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    repo.config.manifest = _manifest_config()
    repo.save_config()
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None and fetched.manifest == _manifest_config()
    reopened = ic.Repository.open(storage)
    assert reopened.config.manifest == _manifest_config()
    # This version records the settings; writing and reading are unchanged.
    session = reopened.writable_session("main")
    array = zarr.create_array(
        session.store, name="temperature", shape=(8,), chunks=(2,), dtype="i4"
    )
    array[:] = np.arange(8)
    session.commit("write under splitting rules")
    read = zarr.open_array(reopened.readonly_session("main").store, path="temperature", mode="r")
    assert read[:].tolist() == list(range(8))


def test_create_with_splitting_then_change_a_scalar_keeps_it(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(manifest=_manifest_config())
    repo = ic.Repository.create(storage, config=config)
    previous, new = repo.set_config_value("manifest.max_refs_per_manifest", "2000")
    assert (previous, new) == (1000, 2000)
    previous, new = repo.set_config_value("manifest.preload.max_total_refs", "10")
    assert (previous, new) == (5000, 10)
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None
    assert fetched.manifest.splitting == _manifest_config().splitting
    assert fetched.manifest.preload == ic.ManifestPreloadConfig(
        max_total_refs=10, preload_if=P.name_matches("^(time|lat|lon)$")
    )


@pytest.mark.parametrize("key", ["manifest.preload.preload_if.kind", "manifest.splitting.x"])
def test_settings_inside_rules_are_not_set_from_text(key: str) -> None:
    config = ic.RepositoryConfig(manifest=_manifest_config())
    for start in (config, ic.RepositoryConfig()):
        with pytest.raises(ic.ConfigError, match=f"{key} is not set from text"):
            start.with_value(key, "1")


def test_rules_and_conditions_are_set_as_json_in_the_form_config_show_prints() -> None:
    wanted = _manifest_config()
    shown = ic.RepositoryConfig(manifest=wanted).to_dict()["manifest"]
    config = ic.RepositoryConfig().with_value(
        "manifest.splitting.split_sizes", json.dumps(shown["splitting"]["split_sizes"])
    )
    assert config.manifest.splitting == wanted.splitting
    config = config.with_value(
        "manifest.preload.preload_if", json.dumps(shown["preload"]["preload_if"])
    )
    config = config.with_value("manifest.preload.max_total_refs", "5000")
    assert config.manifest.preload == wanted.preload
    whole = ic.RepositoryConfig().with_value("manifest.splitting", json.dumps(shown["splitting"]))
    assert whole.manifest.splitting == wanted.splitting
    assert config.with_value("manifest.splitting", "null").manifest.splitting is None
    assert config.with_value("manifest.preload", "null").manifest.preload is None


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("manifest.splitting", "[1", "takes JSON"),
        ("manifest.splitting", "1", "expected an object"),
        ("manifest.splitting.split_sizes", '[[{"kind": "nope"}, []]]', "nope"),
        (
            "manifest.splitting.split_sizes",
            '[[{"kind": "name_matches", "regex": "("}, []]]',
            "regex",
        ),
        (
            "manifest.splitting.split_sizes",
            '[[{"kind": "any_array"}, [[{"kind": "axis", "axis": 0}, 0]]]]',
            "whole number of chunks",
        ),
        ("manifest.preload.preload_if", '{"kind": "num_refs", "from_refs": -1}', "from_refs"),
    ],
)
def test_bad_json_rules_are_refused_naming_the_key(key: str, value: str, named: str) -> None:
    with pytest.raises(ic.ConfigError, match=key) as exc:
        ic.RepositoryConfig().with_value(key, value)
    assert named in str(exc.value)


def test_an_unset_setting_is_not_written() -> None:
    # Byte for byte what format 2 wrote before these settings existed.
    for config in (
        ic.RepositoryConfig(),
        ic.RepositoryConfig().with_value("compression.level", "7"),
    ):
        old = msgspec.convert(msgspec.to_builtins(config), _Format2Config)
        legacy = encode_object(ObjectKind.CONFIG, old, object_id=None, compression_level=None)
        assert encode_config(config) == legacy


def test_golden_configs_decode_to_the_same_values() -> None:
    assert GOLDEN
    for path in GOLDEN:
        data = path.read_bytes()
        config = decode_config(data, path=str(path))
        old = decode_object(data, ObjectKind.CONFIG, _Format2Config, object_id=None, path="c")
        assert (config.manifest.splitting, config.manifest.preload) == (None, None)
        assert config.storage is None and config.virtual_chunk_containers is None
        values = config.to_dict()
        del values["manifest"]["splitting"], values["manifest"]["preload"], values["storage"]
        del values["virtual_chunk_containers"]
        assert values == msgspec.to_builtins(old)
        again = decode_config(encode_config(config), path=str(path))
        assert again == config


def test_an_earlier_reader_skips_the_new_settings() -> None:
    config = ic.RepositoryConfig(manifest=_manifest_config())
    old = decode_object(
        encode_config(config), ObjectKind.CONFIG, _Format2Config, object_id=None, path="c"
    )
    assert old.manifest.max_refs_per_manifest == 1000


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ([{"kind": "bogus"}, []], "Invalid value 'bogus' - at `$.manifest.splitting"),
        ([{"kind": "name_matches", "regex": "("}, []], "name_matches: invalid regex '('"),
        ([{"kind": "any_array"}, [[{"kind": "axis", "axis": 0}, 0]]], "Axis(0) under AnyArray"),
        ([{"kind": "any_array"}, [[{"kind": "axis", "axis": -2}, 3]]], "got -2"),
    ],
)
def test_a_bad_saved_rule_is_a_corrupt_config_naming_it(rule: object, words: str) -> None:
    document = {"manifest": {"splitting": {"split_sizes": [rule]}}}
    data = encode_object(ObjectKind.CONFIG, document, object_id=None, compression_level=None)
    with pytest.raises(ic.CorruptObjectError) as exc:
        decode_config(data, path="config")
    assert words in str(exc.value) and exc.value.path == "config"
