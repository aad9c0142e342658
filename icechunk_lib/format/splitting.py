"""Manifest splitting settings as Icechunk 1.1 spells them, and the split sizes they give.

A ``ManifestSplittingConfig`` is an ordered list of rules: an array condition
(``ManifestSplitCondition``) and, per dimension condition (``ManifestSplitDimCondition``), how
many chunks one manifest covers along that dimension. Regexes are searched, not anchored
(``name_matches("temp")`` matches ``temperature``), as Icechunk's ``Regex::is_match`` does.
Everything here is data and pure functions: the commit that lays manifests out by these sizes
calls ``split_sizes_for``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import ClassVar, Union, cast

import msgspec
from msgspec.structs import force_setattr

from icechunk_lib.errors import ConfigError

__all__ = [
    "MAX_SPLIT_SIZE",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
    "ManifestSplittingConfig",
    "array_name",
    "checked_regex",
    "refuse_base",
    "regex_search",
    "split_applies",
    "split_edges",
    "split_sizes_for",
]

MAX_SPLIT_SIZE = 2**32 - 1
"""The largest split size: chunk coordinates are uint32, as in Icechunk."""


@lru_cache(maxsize=256)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def checked_regex(regex: object, where: str) -> str:
    """``regex`` if it is a string that compiles, else ``ConfigError`` naming ``where``."""
    if not isinstance(regex, str):
        raise ConfigError(f"{where} takes a regex as a string, got {regex!r}")
    try:
        _compiled(regex)
    except re.error as exc:
        raise ConfigError(f"{where}: invalid regex {regex!r}: {exc}") from None
    return regex


def regex_search(regex: str, text: str) -> bool:
    """Whether ``regex`` matches anywhere in ``text`` (Icechunk's unanchored match)."""
    return _compiled(regex).search(text) is not None


def array_name(path: str) -> str | None:
    """The last component of an absolute node path; None for the root ``/``."""
    name = path.rstrip("/").rpartition("/")[2]
    return name or None


def refuse_base(condition: object, base: type, instead: str) -> None:
    """``ConfigError`` for a bare condition base class, which means nothing and has no
    encoding a reader could decode."""
    if type(condition) is base:
        raise ConfigError(f"{base.__name__}() is not a condition; use {base.__name__}.{instead}")


def _tuple_of(value: object, where: str) -> tuple[object, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{where} takes a list, got {value!r}")
    return tuple(value)


# --- array conditions ---------------------------------------------------------------------------


class ManifestSplitCondition(msgspec.Struct, frozen=True, tag_field="kind"):
    """Which arrays a splitting rule applies to; build one with the static methods."""

    NameMatches: ClassVar[type[SplitNameMatches]]
    PathMatches: ClassVar[type[SplitPathMatches]]
    AnyArray: ClassVar[type[SplitAnyArray]]
    And: ClassVar[type[SplitAnd]]
    Or: ClassVar[type[SplitOr]]

    @staticmethod
    def name_matches(regex: str) -> SplitNameMatches:
        """Arrays whose name (last path component) the regex matches."""
        return SplitNameMatches(regex)

    @staticmethod
    def path_matches(regex: str) -> SplitPathMatches:
        """Arrays whose absolute path (``/path/to/array``) the regex matches."""
        return SplitPathMatches(regex)

    @staticmethod
    def and_conditions(conditions: Sequence[ManifestSplitCondition]) -> SplitAnd:
        """Arrays every one of ``conditions`` matches."""
        return SplitAnd(_conditions(conditions, "and_conditions"))

    @staticmethod
    def or_conditions(conditions: Sequence[ManifestSplitCondition]) -> SplitOr:
        """Arrays any one of ``conditions`` matches."""
        return SplitOr(_conditions(conditions, "or_conditions"))

    def __and__(self, other: ManifestSplitCondition) -> SplitAnd:
        return SplitAnd(_conditions((self, other), "and_conditions"))

    def __or__(self, other: ManifestSplitCondition) -> SplitOr:
        return SplitOr(_conditions((self, other), "or_conditions"))

    def __post_init__(self) -> None:
        refuse_base(self, ManifestSplitCondition, "name_matches(...) or AnyArray()")

    def matches(self, path: str) -> bool:
        """Whether the array at absolute ``path`` meets this condition."""
        raise NotImplementedError


class SplitNameMatches(ManifestSplitCondition, frozen=True, tag="name_matches"):
    regex: str

    def __post_init__(self) -> None:
        checked_regex(self.regex, "ManifestSplitCondition.name_matches")

    def __repr__(self) -> str:
        return f"NameMatches({self.regex!r})"

    def matches(self, path: str) -> bool:
        name = array_name(path)
        return name is not None and regex_search(self.regex, name)


class SplitPathMatches(ManifestSplitCondition, frozen=True, tag="path_matches"):
    regex: str

    def __post_init__(self) -> None:
        checked_regex(self.regex, "ManifestSplitCondition.path_matches")

    def __repr__(self) -> str:
        return f"PathMatches({self.regex!r})"

    def matches(self, path: str) -> bool:
        return regex_search(self.regex, path)


class SplitAnyArray(ManifestSplitCondition, frozen=True, tag="any_array"):
    def __repr__(self) -> str:
        return "AnyArray"

    def matches(self, path: str) -> bool:
        return True


class SplitAnd(ManifestSplitCondition, frozen=True, tag="and"):
    conditions: tuple[SplitCondition, ...]

    def __post_init__(self) -> None:
        force_setattr(self, "conditions", _conditions(self.conditions, "and_conditions"))

    def __repr__(self) -> str:
        return f"And({', '.join(map(repr, self.conditions))})"

    def matches(self, path: str) -> bool:
        return all(c.matches(path) for c in self.conditions)


class SplitOr(ManifestSplitCondition, frozen=True, tag="or"):
    conditions: tuple[SplitCondition, ...]

    def __post_init__(self) -> None:
        force_setattr(self, "conditions", _conditions(self.conditions, "or_conditions"))

    def __repr__(self) -> str:
        return f"Or({', '.join(map(repr, self.conditions))})"

    def matches(self, path: str) -> bool:
        return any(c.matches(path) for c in self.conditions)


SplitCondition = Union[SplitNameMatches, SplitPathMatches, SplitAnyArray, SplitAnd, SplitOr]  # noqa: UP007
"""Every concrete array condition: the tagged union the config decodes."""

ManifestSplitCondition.NameMatches = SplitNameMatches
ManifestSplitCondition.PathMatches = SplitPathMatches
ManifestSplitCondition.AnyArray = SplitAnyArray
ManifestSplitCondition.And = SplitAnd
ManifestSplitCondition.Or = SplitOr


def _conditions(value: object, where: str) -> tuple[SplitCondition, ...]:
    items = _tuple_of(value, f"ManifestSplitCondition.{where}")
    for item in items:
        if not isinstance(item, ManifestSplitCondition):
            raise ConfigError(
                f"ManifestSplitCondition.{where} takes ManifestSplitCondition values, got {item!r}"
            )
    return cast(tuple[SplitCondition, ...], items)  # each item was checked just above


# --- dimension conditions -----------------------------------------------------------------------


class ManifestSplitDimCondition(msgspec.Struct, frozen=True, tag_field="kind"):
    """Which dimension of a matched array a split size applies to: ``Axis(i)``,
    ``DimensionName(regex)`` or ``Any()`` (every dimension not matched before)."""

    Axis: ClassVar[type[SplitAxis]]
    DimensionName: ClassVar[type[SplitDimensionName]]
    Any: ClassVar[type[SplitAnyDimension]]

    def __post_init__(self) -> None:
        refuse_base(self, ManifestSplitDimCondition, "Axis(i), DimensionName(regex) or Any()")

    def matches(self, axis: int, dimension_name: str | None) -> bool:
        """Whether dimension ``axis``, named ``dimension_name`` (or unnamed), meets this."""
        raise NotImplementedError


class SplitAxis(ManifestSplitDimCondition, frozen=True, tag="axis"):
    axis: int

    def __post_init__(self) -> None:
        if type(self.axis) is not int or self.axis < 0:
            raise ConfigError(
                f"ManifestSplitDimCondition.Axis takes an axis index from 0, got {self.axis!r}"
            )

    def __repr__(self) -> str:
        return f"Axis({self.axis})"

    def matches(self, axis: int, dimension_name: str | None) -> bool:
        return axis == self.axis


class SplitDimensionName(ManifestSplitDimCondition, frozen=True, tag="dimension_name"):
    regex: str

    def __post_init__(self) -> None:
        checked_regex(self.regex, "ManifestSplitDimCondition.DimensionName")

    def __repr__(self) -> str:
        return f"DimensionName({self.regex!r})"

    def matches(self, axis: int, dimension_name: str | None) -> bool:
        # An unnamed dimension matches no name regex, as in Icechunk.
        return dimension_name is not None and regex_search(self.regex, dimension_name)


class SplitAnyDimension(ManifestSplitDimCondition, frozen=True, tag="any"):
    def __repr__(self) -> str:
        return "Any"

    def matches(self, axis: int, dimension_name: str | None) -> bool:
        return True


DimCondition = Union[SplitAxis, SplitDimensionName, SplitAnyDimension]  # noqa: UP007
"""Every concrete dimension condition: the tagged union the config decodes."""

ManifestSplitDimCondition.Axis = SplitAxis
ManifestSplitDimCondition.DimensionName = SplitDimensionName
ManifestSplitDimCondition.Any = SplitAnyDimension

SplitSizes = tuple[tuple[SplitCondition, tuple[tuple[DimCondition, int], ...]], ...]
"""Rules in order: an array condition and its (dimension condition, chunks per split) pairs."""


# --- the config ---------------------------------------------------------------------------------


class ManifestSplittingConfig(msgspec.Struct):
    """How manifests of big arrays are split: ordered rules, the first match per dimension wins.

    Built with ``from_dict({condition: {dim_condition: chunks}})`` (dicts keep their order) or
    from the ``split_sizes`` tuples Icechunk's constructor takes.
    """

    split_sizes: SplitSizes = ()

    def __post_init__(self) -> None:
        force_setattr(self, "split_sizes", _checked_split_sizes(self.split_sizes))

    def __repr__(self) -> str:
        return f"ManifestSplittingConfig({self.split_sizes!r})"

    @staticmethod
    def from_dict(
        split_sizes: Mapping[ManifestSplitCondition, Mapping[ManifestSplitDimCondition, int]],
    ) -> ManifestSplittingConfig:
        """The config of ``{array condition: {dimension condition: chunks per split}}``."""
        if not isinstance(split_sizes, Mapping):
            raise ConfigError(
                "ManifestSplittingConfig.from_dict takes a dict of "
                "{ManifestSplitCondition: {ManifestSplitDimCondition: int}}, "
                f"got {split_sizes!r}"
            )
        rules = []
        for condition, dims in split_sizes.items():
            if not isinstance(dims, Mapping):
                raise ConfigError(
                    f"ManifestSplittingConfig.from_dict: the sizes under {condition!r} must be "
                    f"a dict of {{ManifestSplitDimCondition: int}}, got {dims!r}"
                )
            rules.append((condition, tuple(dims.items())))
        return ManifestSplittingConfig(tuple(rules))  # type: ignore[arg-type]  # checked on init


def _checked_split_sizes(value: object) -> SplitSizes:
    """``value`` as tuples, or ``ConfigError`` naming the rule, dimension or size at fault."""
    rules = []
    for rule in _tuple_of(value, "ManifestSplittingConfig split_sizes"):
        pair = _tuple_of(rule, "each ManifestSplittingConfig rule")
        if len(pair) != 2:
            raise ConfigError(f"a ManifestSplittingConfig rule is (condition, sizes), got {rule!r}")
        condition, dims = pair
        if not isinstance(condition, ManifestSplitCondition):
            raise ConfigError(
                "ManifestSplittingConfig rules start with a ManifestSplitCondition, "
                f"got {condition!r}"
            )
        sizes = []
        for entry in _tuple_of(dims, f"the sizes under {condition!r}"):
            dim_size = _tuple_of(entry, f"each size under {condition!r}")
            if len(dim_size) != 2 or not isinstance(dim_size[0], ManifestSplitDimCondition):
                raise ConfigError(
                    f"the sizes under {condition!r} are (ManifestSplitDimCondition, chunks) "
                    f"pairs, got {entry!r}"
                )
            dim, size = dim_size
            if type(size) is not int or not 1 <= size <= MAX_SPLIT_SIZE:
                raise ConfigError(
                    f"the split size for {dim!r} under {condition!r} must be a whole number "
                    f"of chunks from 1 to {MAX_SPLIT_SIZE}, got {size!r}"
                )
            sizes.append((dim, size))
        rules.append((condition, tuple(sizes)))
    return cast(SplitSizes, tuple(rules))  # every part was checked above


# --- what a commit asks -------------------------------------------------------------------------


def split_sizes_for(
    config: ManifestSplittingConfig | None,
    path: str,
    shape: Sequence[int],
    chunk_shape: Sequence[int],
    dimension_names: Sequence[str | None] | None = None,
) -> tuple[int, ...]:
    """Chunks per manifest split along each axis of the array at ``path``.

    Rules are tried in order; within a matching rule its dimension conditions are tried in
    order, and the first one matching an axis sets that axis's size. An axis that an earlier
    rule already sized keeps its size, so a later rule only sizes axes left open (Icechunk
    1.1's semantics). An axis no rule sizes is not split: its size is its whole chunk count.
    """
    if len(shape) != len(chunk_shape):
        raise ValueError(f"{path}: shape {tuple(shape)} and chunks {tuple(chunk_shape)} differ")
    if any(c < 1 for c in chunk_shape):
        raise ValueError(f"{path}: chunk shape {tuple(chunk_shape)} has a non-positive size")
    names = list(dimension_names) if dimension_names is not None else [None] * len(shape)
    if len(names) != len(shape):
        raise ValueError(f"{path}: {len(names)} dimension names for {len(shape)} axes")
    sizes: list[int | None] = [None] * len(shape)
    for condition, dims in config.split_sizes if config is not None else ():
        if not condition.matches(path):
            continue
        for axis, name in enumerate(names):
            if sizes[axis] is not None:
                continue
            for dim, size in dims:
                if dim.matches(axis, name):
                    sizes[axis] = size
                    break
    return tuple(
        size if size is not None else max(1, -(-extent // chunk))
        for size, extent, chunk in zip(sizes, shape, chunk_shape, strict=True)
    )


def split_applies(config: ManifestSplittingConfig, path: str) -> bool:
    """Whether a rule of ``config`` matches the array at ``path`` (its manifests are then
    cut by region, even where no dimension condition sizes an axis)."""
    return any(condition.matches(path) for condition, _ in config.split_sizes)


def split_edges(num_chunks: int, split_size: int) -> list[int]:
    """Chunk indices where splits of ``split_size`` chunks start, then ``num_chunks``.

    ``split_edges(10, 4) == [0, 4, 8, 10]``: splits cover chunks 0-3, 4-7 and 8-9.
    """
    if split_size < 1:
        raise ValueError(f"a split size is at least 1 chunk, got {split_size}")
    return [*range(0, num_chunks, split_size), num_chunks] if num_chunks else [0, 0]
