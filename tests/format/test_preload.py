"""Manifest preload settings: Icechunk 1.1's constructors, validation and matching."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechunk_lib import (
    ConfigError,
    ManifestConfig,
    ManifestPreloadCondition,
    ManifestPreloadConfig,
    RepositoryConfig,
)
from icechunk_lib.format import decode_config, encode_config, preload_matches

P = ManifestPreloadCondition

counts = st.none() | st.integers(0, 2**32 - 1)
leaves = st.one_of(
    st.builds(P.name_matches, st.sampled_from(["^time$", "lat", ""])),
    st.builds(P.path_matches, st.sampled_from(["^/coords/", "x"])),
    st.builds(P.num_refs, counts, counts),
    st.just(P.true()),
    st.just(P.false()),
)
preload_conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(P.and_conditions, st.lists(inner, max_size=3)),
        st.builds(P.or_conditions, st.lists(inner, max_size=3)),
    ),
    max_leaves=6,
)


@given(max_total_refs=counts, condition=st.none() | preload_conditions)
def test_preload_round_trips_through_the_repository_config(
    max_total_refs: int | None, condition: ManifestPreloadCondition | None
) -> None:
    preload = ManifestPreloadConfig(max_total_refs=max_total_refs, preload_if=condition)
    config = RepositoryConfig(manifest=ManifestConfig(preload=preload)).validate()
    decoded = decode_config(encode_config(config), path="config")
    assert decoded == config and decoded.manifest.preload == preload
    assert encode_config(decoded) == encode_config(config)


@pytest.mark.parametrize(
    ("condition", "path", "num_refs", "matches"),
    [
        (P.name_matches("^time$"), "/coords/time", 10, True),
        (P.name_matches("time"), "/coords/runtime", 10, True),  # searched, not anchored
        (P.name_matches("coords"), "/coords/time", 10, False),  # the name only
        (P.path_matches("^/coords/"), "/coords/time", 10, True),
        (P.num_refs(None, 1000), "/x", 999, True),
        (P.num_refs(None, 1000), "/x", 1000, False),  # to_refs is exclusive
        (P.num_refs(5, None), "/x", 5, True),  # from_refs is inclusive
        (P.num_refs(5, None), "/x", 4, False),
        (P.true(), "/x", 0, True),
        (P.false(), "/x", 0, False),
        (P.name_matches("lat") & P.num_refs(None, 10), "/lat", 50, False),
        (P.name_matches("lat") | P.num_refs(None, 10), "/lat", 50, True),
        (P.and_conditions([]), "/x", 1, True),
        (P.or_conditions([]), "/x", 1, False),
    ],
)
def test_preload_conditions(
    condition: ManifestPreloadCondition, path: str, num_refs: int, matches: bool
) -> None:
    config = ManifestPreloadConfig(max_total_refs=100, preload_if=condition)
    assert preload_matches(config, path, num_refs) is matches


def test_without_a_condition_nothing_is_preloaded() -> None:
    assert not preload_matches(None, "/time", 1)
    assert not preload_matches(ManifestPreloadConfig(max_total_refs=10), "/time", 1)


def test_equal_and_printed_by_value() -> None:
    assert P.name_matches("t") | P.true() == P.or_conditions([P.name_matches("t"), P.true()])
    assert repr(P.num_refs(None, 10) & P.false()) == "And(NumRefs(None, 10), False)"
    assert ManifestPreloadConfig(5, P.true()) == ManifestPreloadConfig(5, P.true())


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: P.name_matches("("), "ManifestPreloadCondition.name_matches: invalid regex"),
        (lambda: P.path_matches(None), "path_matches takes a regex as a string"),
        (lambda: P.num_refs(-1, None), "num_refs from_refs takes a count"),
        (lambda: P.num_refs(None, "10"), "num_refs to_refs takes a count"),
        (lambda: P.or_conditions([P.true(), 1]), "or_conditions takes ManifestPreloadCondition"),
        (lambda: ManifestPreloadConfig(max_total_refs=-5), "max_total_refs takes a count"),
        (lambda: ManifestPreloadConfig(preload_if="time"), "preload_if takes a Manifest"),
        (lambda: P(), "ManifestPreloadCondition() is not a condition; use Manifest"),
    ],
)
def test_bad_preload_settings_name_the_part(build: Any, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build()
    assert words in str(exc.value)
