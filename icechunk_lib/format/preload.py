"""Manifest preload settings as Icechunk 1.1 spells them: which manifests a session reads
when it opens (small coordinate arrays), and the pure test of whether one qualifies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Union, cast

import msgspec
from msgspec.structs import force_setattr

from icechunk_lib.errors import ConfigError
from icechunk_lib.format.splitting import array_name, checked_regex, refuse_base, regex_search

__all__ = [
    "MAX_PRELOAD_REFS",
    "ManifestPreloadCondition",
    "ManifestPreloadConfig",
    "preload_matches",
]

MAX_PRELOAD_REFS = 2**32 - 1
"""The largest reference count a preload setting takes (a u32 in Icechunk)."""


def _count(value: object, where: str) -> int | None:
    if value is not None and (type(value) is not int or not 0 <= value <= MAX_PRELOAD_REFS):
        raise ConfigError(
            f"{where} takes a count from 0 to {MAX_PRELOAD_REFS} or None, got {value!r}"
        )
    return value


class ManifestPreloadCondition(msgspec.Struct, frozen=True, tag_field="kind"):
    """Which manifests a session preloads; build one with the static methods."""

    NameMatches: ClassVar[type[PreloadNameMatches]]
    PathMatches: ClassVar[type[PreloadPathMatches]]
    NumRefs: ClassVar[type[PreloadNumRefs]]
    And: ClassVar[type[PreloadAnd]]
    Or: ClassVar[type[PreloadOr]]

    @staticmethod
    def name_matches(regex: str) -> PreloadNameMatches:
        """Manifests of arrays whose name (last path component) the regex matches."""
        return PreloadNameMatches(regex)

    @staticmethod
    def path_matches(regex: str) -> PreloadPathMatches:
        """Manifests of arrays whose absolute path (``/path/to/array``) the regex matches."""
        return PreloadPathMatches(regex)

    @staticmethod
    def num_refs(from_refs: int | None, to_refs: int | None) -> PreloadNumRefs:
        """Manifests holding from ``from_refs`` (inclusive) to ``to_refs`` (exclusive) chunk
        references; None leaves that end open."""
        return PreloadNumRefs(from_refs, to_refs)

    @staticmethod
    def true() -> PreloadTrue:
        """Every manifest."""
        return PreloadTrue()

    @staticmethod
    def false() -> PreloadFalse:
        """No manifest."""
        return PreloadFalse()

    @staticmethod
    def and_conditions(conditions: Sequence[ManifestPreloadCondition]) -> PreloadAnd:
        """Manifests every one of ``conditions`` matches."""
        return PreloadAnd(_conditions(conditions, "and_conditions"))

    @staticmethod
    def or_conditions(conditions: Sequence[ManifestPreloadCondition]) -> PreloadOr:
        """Manifests any one of ``conditions`` matches."""
        return PreloadOr(_conditions(conditions, "or_conditions"))

    def __and__(self, other: ManifestPreloadCondition) -> PreloadAnd:
        return PreloadAnd(_conditions((self, other), "and_conditions"))

    def __or__(self, other: ManifestPreloadCondition) -> PreloadOr:
        return PreloadOr(_conditions((self, other), "or_conditions"))

    def __post_init__(self) -> None:
        refuse_base(self, ManifestPreloadCondition, "name_matches(...) or true()")

    def matches(self, path: str, num_refs: int) -> bool:
        """Whether a manifest of ``num_refs`` references of the array at ``path`` qualifies."""
        raise NotImplementedError


class PreloadNameMatches(ManifestPreloadCondition, frozen=True, tag="name_matches"):
    regex: str

    def __post_init__(self) -> None:
        checked_regex(self.regex, "ManifestPreloadCondition.name_matches")

    def __repr__(self) -> str:
        return f"NameMatches({self.regex!r})"

    def matches(self, path: str, num_refs: int) -> bool:
        name = array_name(path)
        return name is not None and regex_search(self.regex, name)


class PreloadPathMatches(ManifestPreloadCondition, frozen=True, tag="path_matches"):
    regex: str

    def __post_init__(self) -> None:
        checked_regex(self.regex, "ManifestPreloadCondition.path_matches")

    def __repr__(self) -> str:
        return f"PathMatches({self.regex!r})"

    def matches(self, path: str, num_refs: int) -> bool:
        return regex_search(self.regex, path)


class PreloadNumRefs(ManifestPreloadCondition, frozen=True, tag="num_refs"):
    from_refs: int | None = None
    to_refs: int | None = None

    def __post_init__(self) -> None:
        _count(self.from_refs, "ManifestPreloadCondition.num_refs from_refs")
        _count(self.to_refs, "ManifestPreloadCondition.num_refs to_refs")

    def __repr__(self) -> str:
        return f"NumRefs({self.from_refs!r}, {self.to_refs!r})"

    def matches(self, path: str, num_refs: int) -> bool:
        above = self.from_refs is None or num_refs >= self.from_refs
        return above and (self.to_refs is None or num_refs < self.to_refs)


class PreloadTrue(ManifestPreloadCondition, frozen=True, tag="true"):
    def __repr__(self) -> str:
        return "True"

    def matches(self, path: str, num_refs: int) -> bool:
        return True


class PreloadFalse(ManifestPreloadCondition, frozen=True, tag="false"):
    def __repr__(self) -> str:
        return "False"

    def matches(self, path: str, num_refs: int) -> bool:
        return False


class PreloadAnd(ManifestPreloadCondition, frozen=True, tag="and"):
    conditions: tuple[PreloadCondition, ...]

    def __post_init__(self) -> None:
        force_setattr(self, "conditions", _conditions(self.conditions, "and_conditions"))

    def __repr__(self) -> str:
        return f"And({', '.join(map(repr, self.conditions))})"

    def matches(self, path: str, num_refs: int) -> bool:
        return all(c.matches(path, num_refs) for c in self.conditions)


class PreloadOr(ManifestPreloadCondition, frozen=True, tag="or"):
    conditions: tuple[PreloadCondition, ...]

    def __post_init__(self) -> None:
        force_setattr(self, "conditions", _conditions(self.conditions, "or_conditions"))

    def __repr__(self) -> str:
        return f"Or({', '.join(map(repr, self.conditions))})"

    def matches(self, path: str, num_refs: int) -> bool:
        return any(c.matches(path, num_refs) for c in self.conditions)


PreloadCondition = Union[  # noqa: UP007
    PreloadNameMatches,
    PreloadPathMatches,
    PreloadNumRefs,
    PreloadTrue,
    PreloadFalse,
    PreloadAnd,
    PreloadOr,
]
"""Every concrete preload condition: the tagged union the config decodes."""

ManifestPreloadCondition.NameMatches = PreloadNameMatches
ManifestPreloadCondition.PathMatches = PreloadPathMatches
ManifestPreloadCondition.NumRefs = PreloadNumRefs
ManifestPreloadCondition.And = PreloadAnd
ManifestPreloadCondition.Or = PreloadOr


def _conditions(value: object, where: str) -> tuple[PreloadCondition, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"ManifestPreloadCondition.{where} takes a list, got {value!r}")
    for item in value:
        if not isinstance(item, ManifestPreloadCondition):
            raise ConfigError(
                f"ManifestPreloadCondition.{where} takes ManifestPreloadCondition values, "
                f"got {item!r}"
            )
    return cast(tuple[PreloadCondition, ...], tuple(value))  # each item was checked above


class ManifestPreloadConfig(msgspec.Struct):
    """Which manifests a session reads when it opens, and at most how many references.

    ``preload_if=None`` records no condition, and ``preload_matches`` then preloads nothing
    (Icechunk's default picks small coordinate-like arrays; ick has no default set yet).
    """

    max_total_refs: int | None = None
    preload_if: PreloadCondition | None = None

    def __post_init__(self) -> None:
        _count(self.max_total_refs, "ManifestPreloadConfig.max_total_refs")
        if self.preload_if is not None and not isinstance(
            self.preload_if, ManifestPreloadCondition
        ):
            raise ConfigError(
                "ManifestPreloadConfig.preload_if takes a ManifestPreloadCondition or None, "
                f"got {self.preload_if!r}"
            )


def preload_matches(config: ManifestPreloadConfig | None, path: str, num_refs: int) -> bool:
    """Whether a manifest of ``num_refs`` references of the array at ``path`` is preloaded
    under ``config``'s condition; False when no condition is set."""
    if config is None or config.preload_if is None:
        return False
    return config.preload_if.matches(path, num_refs)
