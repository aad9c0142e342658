"""Repository config: round trip, defaults for missing fields, range checks, damage."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechunk_lib.errors import ConfigError, CorruptObjectError
from icechunk_lib.format import (
    CachingConfig,
    CompressionConfig,
    ManifestConfig,
    ObjectKind,
    RepositoryConfig,
    decode_config,
    encode_config,
    encode_object,
)

PATH = "config in /data/repo"

valid_configs = st.builds(
    RepositoryConfig,
    inline_chunk_threshold_bytes=st.integers(0, 64 * 1024),
    get_partial_values_concurrency=st.integers(1, 1000),
    compression=st.builds(CompressionConfig, level=st.integers(1, 22)),
    caching=st.builds(
        CachingConfig,
        num_snapshots=st.integers(1, 10**6),
        num_bytes_manifests=st.integers(0, 2**40),
    ),
    manifest=st.builds(ManifestConfig, max_refs_per_manifest=st.integers(1, 10**9)),
)


@given(config=valid_configs)
def test_round_trip_of_valid_configs(config: RepositoryConfig) -> None:
    assert config.validate() is config
    assert decode_config(encode_config(config), path=PATH) == config


def test_default_is_valid() -> None:
    config = RepositoryConfig.default()
    assert config == RepositoryConfig()
    assert config.validate() is config


def test_missing_fields_take_defaults_and_unknown_fields_are_ignored() -> None:
    # An older writer omits new fields; a newer one may add fields this version ignores.
    data = encode_object(
        ObjectKind.CONFIG,
        {"inline_chunk_threshold_bytes": 7, "compression": {"level": 9}, "from_the_future": [1]},
        object_id=None,
        compression_level=None,
    )
    config = decode_config(data, path=PATH)
    assert config.inline_chunk_threshold_bytes == 7
    assert config.compression == CompressionConfig(level=9)
    assert config.manifest == ManifestConfig()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("inline_chunk_threshold_bytes", -1),
        ("inline_chunk_threshold_bytes", 64 * 1024 + 1),
        ("get_partial_values_concurrency", 0),
    ],
)
def test_out_of_range_values_name_the_field(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field):
        RepositoryConfig(**{field: value}).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (RepositoryConfig(compression=CompressionConfig(algorithm="lz4")), "'lz4'"),
        (RepositoryConfig(compression=CompressionConfig(level=0)), "level"),
        (RepositoryConfig(compression=CompressionConfig(level=23)), "level"),
        (RepositoryConfig(manifest=ManifestConfig(max_refs_per_manifest=0)), "max_refs"),
        (RepositoryConfig(caching=CachingConfig(num_snapshots=0)), "caching"),
        (RepositoryConfig(caching=CachingConfig(num_bytes_manifests=-1)), "caching"),
    ],
)
def test_nested_values_are_checked(config: RepositoryConfig, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        config.validate()


@pytest.mark.parametrize("key", ["caching.num_snapshots", "manifest.max_refs_per_manifest"])
@pytest.mark.parametrize("value", [str(2**63), str(2**64), "9" * 30])
def test_integers_beyond_int64_are_refused_not_overflowed(key: str, value: str) -> None:
    """They would fail to encode later (an OverflowError deep in msgpack): refuse them now."""
    with pytest.raises(ConfigError, match=f"{key} must be between 0 and {2**63 - 1}"):
        RepositoryConfig.default().with_value(key, value)
    assert RepositoryConfig.default().with_value(key, str(2**63 - 1)).validate()


@pytest.mark.parametrize(
    "payload",
    [{"inline_chunk_threshold_bytes": "big"}, {"compression": 3}, [1, 2], "config"],
)
def test_wrong_types_are_corrupt(payload: Any) -> None:
    data = encode_object(ObjectKind.CONFIG, payload, object_id=None, compression_level=None)
    with pytest.raises(CorruptObjectError) as exc:
        decode_config(data, path=PATH)
    assert exc.value.path == PATH


@given(config=valid_configs, data=st.data(), mask=st.integers(1, 255))
def test_damage_is_rejected(config: RepositoryConfig, data: st.DataObject, mask: int) -> None:
    encoded = bytearray(encode_config(config))
    if data.draw(st.booleans(), label="truncate"):
        encoded = encoded[: data.draw(st.integers(0, len(encoded) - 1), label="length")]
    else:
        encoded[data.draw(st.integers(0, len(encoded) - 1), label="index")] ^= mask
    with pytest.raises(CorruptObjectError) as exc:
        decode_config(bytes(encoded), path=PATH)
    assert exc.value.path == PATH and PATH in str(exc.value)
