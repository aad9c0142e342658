"""Manifest splitting settings: Icechunk 1.1's constructors, validation, and split sizes.

The split-size examples were checked against Icechunk 1.1.21 by committing the same arrays
with the same rules and counting the manifests it wrote: regexes are searched, not anchored;
within a rule the first dimension condition matching an axis wins; a later rule only sizes
axes no earlier matching rule sized.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechunk_lib import (
    ConfigError,
    ManifestConfig,
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
    RepositoryConfig,
)
from icechunk_lib.format import decode_config, encode_config, split_edges, split_sizes_for

S = ManifestSplitCondition
D = ManifestSplitDimCondition

regexes = st.sampled_from(["temp", "^t$", "lat|lon", r"/grp/.*", "", "x[0-9]+"])
leaf_conditions = st.one_of(
    st.builds(S.name_matches, regexes),
    st.builds(S.path_matches, regexes),
    st.just(S.AnyArray()),
)
conditions = st.recursive(
    leaf_conditions,
    lambda inner: st.one_of(
        st.builds(S.and_conditions, st.lists(inner, max_size=3)),
        st.builds(S.or_conditions, st.lists(inner, max_size=3)),
    ),
    max_leaves=6,
)
dim_conditions = st.one_of(
    st.builds(D.Axis, st.integers(0, 31)),
    st.builds(D.DimensionName, regexes),
    st.just(D.Any()),
)
splitting_configs = st.builds(
    ManifestSplittingConfig.from_dict,
    st.dictionaries(
        conditions,
        st.dictionaries(dim_conditions, st.integers(1, 2**32 - 1), max_size=4),
        max_size=4,
    ),
)


# --- construction, as Icechunk's docs write it --------------------------------------------------


def test_from_dict_of_the_icechunk_docs() -> None:
    config = ManifestSplittingConfig.from_dict(
        {
            S.name_matches("temperature"): {D.Axis(0): 12},
            S.name_matches("salinity"): {D.DimensionName("longitude"): 3, D.Any(): 4},
            S.AnyArray(): {D.Any(): 100},
        }
    )
    assert config.split_sizes == (
        (S.NameMatches("temperature"), ((D.Axis(0), 12),)),
        (S.NameMatches("salinity"), ((D.DimensionName("longitude"), 3), (D.Any(), 4))),
        (S.AnyArray(), ((D.Any(), 100),)),
    )
    # Icechunk's constructor takes the same rules as nested sequences.
    as_lists = [(cond, list(dims)) for cond, dims in config.split_sizes]
    assert ManifestSplittingConfig(as_lists) == config  # type: ignore[arg-type]
    repo_config = RepositoryConfig(manifest=ManifestConfig(splitting=config))
    assert repo_config.validate().manifest.splitting is config


def test_conditions_compare_hash_and_print_by_value() -> None:
    assert S.name_matches("a") == S.NameMatches("a") != S.name_matches("b")
    assert D.Axis(0) == D.Axis(0) != D.Axis(1)
    assert D.Any() == D.Any() and S.AnyArray() == S.AnyArray()
    assert len({S.name_matches("a"), S.name_matches("a"), S.AnyArray()}) == 2
    assert S.name_matches("a") | S.AnyArray() == S.or_conditions(
        [S.name_matches("a"), S.AnyArray()]
    )
    assert S.name_matches("a") & S.AnyArray() == S.and_conditions(
        [S.name_matches("a"), S.AnyArray()]
    )
    assert repr(S.name_matches("t") & S.AnyArray()) == "And(NameMatches('t'), AnyArray)"
    assert repr(D.DimensionName("lon")) == "DimensionName('lon')"
    assert (repr(D.Axis(2)), repr(D.Any())) == ("Axis(2)", "Any")
    assert isinstance(S.path_matches("/a"), ManifestSplitCondition)
    assert isinstance(D.Axis(0), ManifestSplitDimCondition)


@given(config=splitting_configs)
def test_splitting_round_trips_through_the_repository_config(
    config: ManifestSplittingConfig,
) -> None:
    repo_config = RepositoryConfig(manifest=ManifestConfig(splitting=config)).validate()
    decoded = decode_config(encode_config(repo_config), path="config")
    assert decoded == repo_config
    assert decoded.manifest.splitting == config
    assert encode_config(decoded) == encode_config(repo_config)
    # `ick config` goes through the builtins form and back.
    assert msgspec.convert(repo_config.to_dict(), RepositoryConfig) == repo_config


# --- invalid input names the part at fault ------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: S.name_matches("("), "name_matches: invalid regex '('"),
        (lambda: S.path_matches("[a-"), "path_matches: invalid regex '[a-'"),
        (lambda: D.DimensionName("*x"), "DimensionName: invalid regex '*x'"),
        (lambda: S.name_matches(3), "name_matches takes a regex as a string, got 3"),
        (lambda: D.Axis(-1), "Axis takes an axis index from 0, got -1"),
        (lambda: D.Axis(1.5), "Axis takes an axis index from 0, got 1.5"),
        (lambda: S.and_conditions([S.AnyArray(), "x"]), "and_conditions takes Manifest"),
        (lambda: S.or_conditions(S.AnyArray()), "or_conditions takes a list"),
        (lambda: S.AnyArray() | D.Any(), "or_conditions takes ManifestSplitCondition values"),
        (lambda: S(), "ManifestSplitCondition() is not a condition; use Manifest"),
        (lambda: D(), "ManifestSplitDimCondition() is not a condition; use Manifest"),
    ],
)
def test_bad_conditions_name_the_part(build: Any, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build()
    assert words in str(exc.value)


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ({S.AnyArray(): {D.Any(): 0}}, "split size for Any under AnyArray must be a whole"),
        ({S.name_matches("t"): {D.Axis(1): -3}}, "for Axis(1) under NameMatches('t')"),
        ({S.AnyArray(): {D.Any(): 2**32}}, "from 1 to 4294967295, got 4294967296"),
        ({S.AnyArray(): {D.Any(): 2.5}}, "got 2.5"),
        ({S.AnyArray(): {D.Any(): True}}, "got True"),
        ({"temperature": {D.Any(): 1}}, "start with a ManifestSplitCondition, got 'temperature'"),
        ({S.AnyArray(): {"longitude": 3}}, "pairs, got ('longitude', 3)"),
        ({S.AnyArray(): {S.AnyArray(): 3}}, "pairs, got (AnyArray, 3)"),
        ({S.AnyArray(): [(D.Any(), 3)]}, "the sizes under AnyArray must be a dict"),
        ([(S.AnyArray(), {D.Any(): 3})], "takes a dict of"),
    ],
)
def test_bad_split_sizes_name_the_part(rules: Any, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        ManifestSplittingConfig.from_dict(rules)
    assert words in str(exc.value)


def test_a_bad_size_set_after_construction_is_refused_on_validate() -> None:
    config = RepositoryConfig(
        manifest=ManifestConfig(splitting=ManifestSplittingConfig.from_dict({S.AnyArray(): {}}))
    )
    assert config.manifest.splitting is not None
    config.manifest.splitting.split_sizes = ((S.AnyArray(), ((D.Axis(0), 0),)),)
    with pytest.raises(ConfigError, match=r"Axis\(0\) under AnyArray .* got 0"):
        config.validate()


# --- split sizes --------------------------------------------------------------------------------


def _sizes(rules: dict[Any, Any] | None, path: str = "/grp/temperature", **kw: Any) -> Any:
    config = None if rules is None else ManifestSplittingConfig.from_dict(rules)
    shape = kw.get("shape", (10, 4))
    return split_sizes_for(config, path, shape, kw.get("chunks", (1,) * len(shape)), kw.get("dims"))


def test_no_config_or_no_matching_rule_leaves_every_axis_whole() -> None:
    assert _sizes(None, shape=(10, 4), chunks=(3, 4)) == (4, 1)
    assert _sizes({S.name_matches("^emp"): {D.Any(): 2}}) == (10, 4)
    assert _sizes({S.AnyArray(): {D.Axis(0): 2}}, shape=(0, 5)) == (2, 5)
    assert _sizes({S.AnyArray(): {D.Axis(5): 2}}, shape=()) == ()


@pytest.mark.parametrize(
    ("condition", "path", "matches"),
    [
        (S.name_matches("temp"), "/grp/temperature", True),  # searched, not anchored
        (S.name_matches("temperature"), "/grp/temperature", True),
        (S.name_matches("^emp"), "/grp/temperature", False),
        (S.name_matches("grp"), "/grp/temperature", False),  # the name only, not the path
        (S.name_matches(".*"), "/", False),  # the root has no name
        (S.path_matches("grp/temp"), "/grp/temperature", True),
        (S.path_matches("^/grp/temperature$"), "/grp/temperature", True),
        (S.path_matches("^grp"), "/grp/temperature", False),  # paths are absolute
        (S.AnyArray(), "/x", True),
        (S.and_conditions([]), "/x", True),
        (S.or_conditions([]), "/x", False),
        (S.name_matches("x") & S.path_matches("^/a/"), "/b/x", False),
        (S.name_matches("x") | S.path_matches("^/a/"), "/b/x", True),
    ],
)
def test_array_conditions(condition: ManifestSplitCondition, path: str, matches: bool) -> None:
    assert condition.matches(path) is matches
    assert _sizes({condition: {D.Axis(0): 2}}, path=path) == ((2 if matches else 10), 4)


def test_dimensions_by_axis_name_and_any() -> None:
    dims = ("time", "lat", "lon")
    shape = (100, 50, 20)
    assert _sizes({S.AnyArray(): {D.Axis(1): 7}}, shape=shape, dims=dims) == (100, 7, 20)
    # Dimension-name regexes are searched too; unnamed dimensions match no name.
    assert _sizes({S.AnyArray(): {D.DimensionName("tim"): 5}}, shape=shape, dims=dims) == (
        5,
        50,
        20,
    )
    assert _sizes({S.AnyArray(): {D.DimensionName("l"): 5}}, shape=shape, dims=dims) == (
        100,
        5,
        5,
    )
    assert _sizes({S.AnyArray(): {D.DimensionName(".*"): 5}}, shape=shape) == shape
    assert _sizes({S.AnyArray(): {D.Any(): 3}}, shape=shape) == (3, 3, 3)
    named = {
        S.name_matches("temperature"): {
            D.DimensionName("lon"): 3,
            D.Axis(0): 2,
            D.Any(): 10,
        }
    }
    assert _sizes(named, shape=shape, dims=("time", "longitude", None)) == (2, 3, 10)


def test_the_first_matching_dimension_condition_of_a_rule_wins() -> None:
    # Icechunk 1.1 wrote 4 manifests for the first (5 x 2 chunks each) and 10 for the second.
    assert _sizes({S.AnyArray(): {D.Axis(0): 5, D.Any(): 2}}) == (5, 2)
    assert _sizes({S.AnyArray(): {D.Any(): 2, D.Axis(0): 5}}) == (2, 2)


def test_a_later_rule_only_sizes_axes_earlier_rules_left_open() -> None:
    rules = {
        S.AnyArray(): {D.Axis(0): 5},
        S.name_matches("temp"): {D.Axis(0): 2, D.Axis(1): 2},
    }
    assert _sizes(rules) == (5, 2)
    # A rule that does not match the array leaves the axes open for the next.
    rules = {S.name_matches("salinity"): {D.Any(): 1}, S.AnyArray(): {D.Any(): 3}}
    assert _sizes(rules) == (3, 3)


def test_shapes_that_disagree_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        split_sizes_for(None, "/a", (4, 4), (2,))
    with pytest.raises(ValueError, match="dimension names"):
        split_sizes_for(None, "/a", (4, 4), (2, 2), ("x",))
    with pytest.raises(ValueError, match="non-positive"):
        split_sizes_for(None, "/a", (4,), (0,))


@given(num_chunks=st.integers(0, 10_000), size=st.integers(1, 20_000))
def test_split_edges_cover_every_chunk_once(num_chunks: int, size: int) -> None:
    edges = split_edges(num_chunks, size)
    assert edges[0] == 0 and edges[-1] == num_chunks
    widths = [b - a for a, b in itertools.pairwise(edges)]
    assert all(0 < w <= size for w in widths) or num_chunks == 0
    assert sum(widths) == num_chunks


def test_split_edges_by_hand() -> None:
    assert split_edges(10, 4) == [0, 4, 8, 10]
    assert split_edges(8, 4) == [0, 4, 8]
    assert split_edges(3, 100) == [0, 3]
    with pytest.raises(ValueError, match="at least 1"):
        split_edges(3, 0)
