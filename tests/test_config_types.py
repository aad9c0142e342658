"""A config holding a value of the wrong type is refused before it is saved: a saved one would
fail to decode, and every later open of the repository would fail with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import icechunk_lib as ic


def _bad_configs() -> list[tuple[str, ic.RepositoryConfig]]:
    return [
        ("str", ic.RepositoryConfig(inline_chunk_threshold_bytes="512")),  # type: ignore[arg-type]
        ("float", ic.RepositoryConfig(get_partial_values_concurrency=2.5)),  # type: ignore[arg-type]
        ("bool", ic.RepositoryConfig(get_partial_values_concurrency=True)),
        ("none", ic.RepositoryConfig(compression=None)),  # type: ignore[arg-type]
        ("nested", ic.RepositoryConfig(compression=ic.CompressionConfig(level="x"))),  # type: ignore[arg-type]
        ("object", ic.RepositoryConfig(caching=object())),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("name", [n for n, _ in _bad_configs()])
def test_create_with_a_mistyped_config_is_refused_and_writes_nothing(
    tmp_path: Path, name: str
) -> None:
    config = dict(_bad_configs())[name]
    with pytest.raises(ic.ConfigError):
        ic.Repository.create(ic.local_filesystem_storage(tmp_path / "r"), config)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("manifest.max_refs_per_manifest", True),
        ("get_partial_values_concurrency", 2.5),
        ("inline_chunk_threshold_bytes", "64"),
    ],
)
def test_saving_a_mistyped_setting_is_refused_and_the_repository_still_opens(
    tmp_path: Path, attribute: str, value: Any
) -> None:
    storage = ic.local_filesystem_storage(tmp_path / "r")
    repo = ic.Repository.create(storage)
    target: Any = repo.config
    *parents, leaf = attribute.split(".")
    for part in parents:
        target = getattr(target, part)
    setattr(target, leaf, value)
    with pytest.raises(ic.ConfigError):
        repo.save_config()
    assert ic.Repository.open(storage).config == ic.RepositoryConfig()


@pytest.mark.parametrize(("key", "value"), [(5, "5"), ("compression.level", 5), (None, None)])
def test_set_config_value_takes_text(tmp_path: Path, key: Any, value: Any) -> None:
    storage = ic.local_filesystem_storage(tmp_path / "r")
    repo = ic.Repository.create(storage)
    with pytest.raises(ic.ConfigError):
        repo.set_config_value(key, value)
    assert ic.Repository.open(storage).config == ic.RepositoryConfig()
