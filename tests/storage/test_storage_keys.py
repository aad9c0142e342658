"""check_key and check_prefix: valid keys pass unchanged, any bad segment is rejected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icechunk_lib.errors import InvalidKeyError
from icechunk_lib.storage import check_key
from icechunk_lib.storage._base import check_prefix

# No example database: it would write a .hypothesis/ directory into the project.
KEY_SETTINGS = settings(database=None, max_examples=200)

_SAFE_CHARS = st.characters(
    exclude_categories=["Cs"],  # lone surrogates cannot be file names
    exclude_characters="/\\\x7f" + "".join(map(chr, range(0x20))),
)
segments = st.text(_SAFE_CHARS, min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and not s.startswith(".ick-")  # reserved for temporaries
)
valid_keys = st.lists(segments, min_size=1, max_size=6).map("/".join)
bad_segments = st.one_of(
    st.sampled_from(["", ".", ".."]),
    st.tuples(segments, st.sampled_from(["\\", "\x00", "\n", "\x1f", "\x7f"]), segments).map(
        "".join
    ),
)


@KEY_SETTINGS
@given(valid_keys)
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    assert check_key(key) == key


@KEY_SETTINGS
@given(valid_keys)
def test_every_prefix_of_a_valid_key_is_a_valid_prefix(key: str) -> None:
    for end in range(len(key) + 1):
        assert check_prefix(key[:end]) == key[:end]


@KEY_SETTINGS
@given(st.lists(segments, max_size=5), bad_segments, st.lists(segments, max_size=5))
def test_any_bad_segment_is_rejected(before: list[str], bad: str, after: list[str]) -> None:
    key = "/".join([*before, bad, *after])
    with pytest.raises(InvalidKeyError):
        check_key(key)
    if after:  # a complete bad segment also spoils every prefix that includes it
        with pytest.raises(InvalidKeyError):
            check_prefix("/".join([*before, bad, ""]))


@KEY_SETTINGS
@given(valid_keys)
def test_leading_or_trailing_slash_is_rejected(key: str) -> None:
    for bad in (f"/{key}", f"{key}/"):
        with pytest.raises(InvalidKeyError):
            check_key(bad)
    with pytest.raises(InvalidKeyError):
        check_prefix(f"/{key}")


@pytest.mark.parametrize("key", [None, 3, b"bytes"])
def test_non_string_keys_rejected(key: object) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)  # type: ignore[arg-type]


def test_rejection_names_key_and_reason() -> None:
    with pytest.raises(InvalidKeyError, match=r"'a/\.\./b'.*'\.\.'") as info:
        check_key("a/../b")
    assert info.value.key == "a/../b"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("prefix", ["", "r", "refs/", "refs/branch.", "a/.", "a/..", "."])
def test_partial_segments_are_valid_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix
