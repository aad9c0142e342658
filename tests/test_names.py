"""Branch, tag and node name rules, directly and through the public API (which writes nothing)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from zarr.core.sync import sync

import icechunk_lib as ic
from icechunk_lib.errors import InvalidNameError
from icechunk_lib.names import (
    MAX_NAME_BYTES,
    validate_new_ref_name,
    validate_node_path,
    validate_ref_name,
)

# Characters a name may hold anywhere: no separators, no control characters, no surrogates.
_INNER = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/\\")


def _fits(name: str) -> bool:
    return 0 < len(name.encode()) <= MAX_NAME_BYTES


@st.composite
def valid_ref_names(draw: st.DrawFn) -> str:
    """Names ``create_branch`` and ``create_tag`` accept (``validate_new_ref_name``)."""
    name = draw(st.text(_INNER, min_size=1, max_size=40))
    name = name.strip()
    if not name or name.startswith("."):
        name = "x" + name
    if re.search(r"~[0-9]*\Z", name) or len(name) == 20:
        name += "x"
    return name


def _rejects(name: object, kind: str = "branch") -> InvalidNameError:
    with pytest.raises(InvalidNameError) as exc:
        validate_ref_name(name, kind)
    err = exc.value
    assert err.name == name and err.kind == kind
    assert repr(name) in str(err) and kind in str(err)
    assert isinstance(err, ValueError)
    return err


# --- validate_ref_name ------------------------------------------------------------------------


@given(name=valid_ref_names())
@example(name="main")
@example(name="a.b-c_d")
@example(name="a...")
@example(name="x" * MAX_NAME_BYTES)
@example(name="é" * (MAX_NAME_BYTES // 2))
@example(name="a b")
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert _fits(name)
    assert validate_ref_name(name) == name
    assert validate_ref_name(name, "tag") == name
    assert validate_new_ref_name(name) == name


# --- names the revision syntax gives a meaning to ----------------------------------------------


@pytest.mark.parametrize(
    "name", ["feat~", "main~1", "a~~", "x~0~12", "~", "~7", "v1.0~", "ABCDEFGHJKMNPQRSTVWX"]
)
@pytest.mark.parametrize("kind", ["branch", "tag"])
def test_names_the_revision_syntax_reads_otherwise_are_refused(name: str, kind: str) -> None:
    assert validate_ref_name(name, kind) == name  # still readable and deletable by name
    with pytest.raises(InvalidNameError) as exc:
        validate_new_ref_name(name, kind)
    assert exc.value.name == name and kind in str(exc.value)
    assert "'~'" in str(exc.value) or "snapshot id" in str(exc.value)


@pytest.mark.parametrize(
    "name",
    [
        "a~b",  # only a trailing ~ or ~N is syntax
        "a~1b",
        "~x",
        "main~\u0663",  # ARABIC-INDIC DIGIT THREE: ~N takes ASCII digits only
        "beta",  # spells an id prefix: names win over prefixes
        "abcdefghjkmnpqrstvw",  # 19 characters: only a prefix
        "ABCDEFGHJKMNPQRSTVWXY",  # 21 characters: not an id
        "ILOU" * 5,  # 20 characters outside Crockford's alphabet
        "a@{1}",
        "a^",
        "a:b",
        "@",
    ],
)
def test_names_the_revision_syntax_leaves_alone_are_accepted(name: str) -> None:
    assert validate_new_ref_name(name) == name


@given(
    id_chars=st.text(
        "0123456789abcdefghjkmnpqrstvwxyzABCDEFGHJKMNPQRSTVWXYZ", min_size=20, max_size=20
    )
)
def test_every_full_snapshot_id_spelling_is_refused(id_chars: str) -> None:
    with pytest.raises(InvalidNameError, match="snapshot id"):
        validate_new_ref_name(id_chars)


@pytest.mark.parametrize("name", ["", ".", "..", "...", ".hidden", ".ick-locks"])
def test_empty_and_dot_names_are_rejected(name: str) -> None:
    _rejects(name)
    _rejects(name, "tag")


@given(name=valid_ref_names(), data=st.data())
def test_separators_anywhere_are_rejected(name: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(name)), label="index")
    sep = data.draw(st.sampled_from(["/", "\\"]), label="separator")
    _rejects(name[:i] + sep + name[i:])


@given(
    name=valid_ref_names(),
    data=st.data(),
    control=st.sampled_from([chr(c) for c in range(0x20)] + ["\x7f"]),
)
def test_control_characters_anywhere_are_rejected(
    name: str, data: st.DataObject, control: str
) -> None:
    i = data.draw(st.integers(0, len(name)), label="index")
    _rejects(name[:i] + control + name[i:], "tag")


@pytest.mark.parametrize("control", ["\x85", "\x9b"], ids=["NEL", "CSI"])
def test_c1_control_characters_are_rejected(control: str) -> None:
    # U+0080..U+009F are control characters (category Cc) too: CSI starts terminal escapes.
    assert unicodedata.category(control) == "Cc"
    _rejects(f"a{control}b")
    with pytest.raises(InvalidNameError):
        validate_node_path(f"/a{control}b")


@given(
    name=valid_ref_names(),
    space=st.sampled_from([" ", "\u00a0", "\u2003", "\u3000"]),
    before=st.booleans(),
)
def test_surrounding_whitespace_is_rejected(name: str, space: str, before: bool) -> None:
    _rejects(space + name if before else name + space)


@given(name=st.text(_INNER, min_size=1, max_size=300))
def test_names_over_255_utf8_bytes_are_rejected(name: str) -> None:
    padded = "x" + name + "x" * MAX_NAME_BYTES
    err = _rejects(padded)
    assert str(MAX_NAME_BYTES) in str(err)


def test_the_byte_limit_counts_utf8_bytes_not_characters() -> None:
    assert validate_ref_name("é" * 127) == "é" * 127
    _rejects("é" * 128)


@pytest.mark.parametrize("name", [None, 3, b"main", ["main"]])
def test_non_strings_are_rejected(name: object) -> None:
    _rejects(name)


def test_lone_surrogates_are_rejected() -> None:
    _rejects("a\ud800b")


# --- validate_node_path -----------------------------------------------------------------------

_segment = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))


@given(parts=st.lists(_segment, max_size=4), lead=st.booleans())
def test_valid_node_paths_are_normalised(parts: list[str], lead: bool) -> None:
    path = "/".join(parts)
    expected = "/" + path
    assert validate_node_path("/" + path if lead else path) == expected
    assert validate_node_path(expected) == expected


def test_root_spellings() -> None:
    assert validate_node_path("") == "/"
    assert validate_node_path("/") == "/"


@given(
    parts=st.lists(_segment, min_size=1, max_size=4),
    bad=st.sampled_from(["", ".", "..", "a\x00b", "\x1f", "\x7f", "x" * 256, "é" * 128]),
    data=st.data(),
)
def test_bad_segments_are_rejected_naming_the_path(
    parts: list[str], bad: str, data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(parts)), label="position")
    if bad == "" and i in (0, len(parts)):
        i = 1  # a leading or trailing '/' is only decoration of an absolute path
        if len(parts) == 1:
            parts = [*parts, "z"]
    path = "/" + "/".join([*parts[:i], bad, *parts[i:]])
    with pytest.raises(InvalidNameError) as exc:
        validate_node_path(path)
    assert exc.value.name == path and repr(path) in str(exc.value)


# --- through the public API: nothing is written ----------------------------------------------


def _listing(storage: ic.Storage) -> dict[str, bytes]:
    async def collect() -> dict[str, bytes]:
        return {info.key: await storage.get(info.key) async for info in storage.list("")}

    return sync(collect())


BAD_REF_NAMES = ["", ".", "..", "a/b", "../main", "a\\b", "a\x00b", " main", "main\n", "x" * 256]


@pytest.fixture(scope="module")
def local_repo(tmp_path_factory: pytest.TempPathFactory) -> ic.Repository:
    return ic.Repository.create(ic.local_filesystem_storage(tmp_path_factory.mktemp("names")))


@pytest.mark.parametrize("name", BAD_REF_NAMES)
def test_bad_branch_and_tag_names_write_nothing(local_repo: ic.Repository, name: str) -> None:
    repo = local_repo
    before = _listing(repo.storage)
    snapshot = repo.lookup_branch("main")
    for call in (repo.create_branch, repo.create_tag):
        with pytest.raises(InvalidNameError) as exc:
            call(name, snapshot)
        assert exc.value.name == name
    for lookup in (repo.lookup_branch, repo.lookup_tag, repo.delete_branch, repo.delete_tag):
        with pytest.raises(InvalidNameError):
            lookup(name)
    with pytest.raises(InvalidNameError):
        repo.writable_session(name)
    with pytest.raises(InvalidNameError):
        repo.reset_branch(name, snapshot)
    assert _listing(repo.storage) == before
    assert repo.list_branches() == {"main"} and repo.list_tags() == set()


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=valid_ref_names())
def test_valid_names_work_as_branches_and_tags(tmp_path: Path, name: str) -> None:
    # Local storage is the strictest backend: every name becomes part of a file name.
    repo = ic.Repository.open_or_create(ic.local_filesystem_storage(tmp_path / "valid"))
    snapshot = repo.lookup_branch("main")
    if name in repo.list_branches():
        return
    repo.create_branch(name, snapshot)
    repo.create_tag(name, snapshot)
    assert repo.lookup_branch(name) == repo.lookup_tag(name) == snapshot
    assert name in repo.list_branches() and name in repo.list_tags()


@pytest.mark.parametrize("kind", ["branch", "tag"])
def test_longest_valid_names_work_on_local_storage(tmp_path: Path, kind: str) -> None:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "repo"))
    name = "n" * MAX_NAME_BYTES
    snapshot = repo.lookup_branch("main")
    if kind == "branch":
        repo.create_branch(name, snapshot)
        assert repo.lookup_branch(name) == snapshot
    else:
        repo.create_tag(name, snapshot)
        assert repo.lookup_tag(name) == snapshot
