"""Error categories: each error is in at most one, the docstring tree says which, and a
caller can catch a kind of failure from real calls without naming classes."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
import xxhash
import zarr

import icechunk_lib as ic
from icechunk_lib import errors

CATEGORIES: dict[str, type[ic.IcechunkError]] = {
    "not found": ic.NotFoundError,
    "already exists": ic.AlreadyExistsError,
    "concurrent update": ic.ConcurrentUpdateError,
    "invalid input": ic.InvalidInputError,
    "integrity": ic.IntegrityError,
    "unsupported": ic.UnsupportedError,
}


def _category(cls: type[BaseException]) -> type[ic.IcechunkError] | None:
    found = [c for c in CATEGORIES.values() if issubclass(cls, c)]
    assert len(found) <= 1, (cls, found)
    return found[0] if found else None


def _exported() -> list[type[ic.IcechunkError]]:
    """The exported error classes (``UnsafeWritesWarning`` sits beside the tree)."""
    found = [getattr(errors, name) for name in errors.__all__]
    return [cls for cls in found if issubclass(cls, ic.IcechunkError)]


def test_categories_are_public_and_distinct() -> None:
    for category in CATEGORIES.values():
        assert getattr(errors, category.__name__) is category
        assert category.__bases__ == (ic.IcechunkError,)


@pytest.mark.parametrize("cls", _exported(), ids=lambda c: c.__name__)
def test_each_error_is_in_at_most_one_category(cls: type[ic.IcechunkError]) -> None:
    _category(cls)


def test_the_tree_in_the_docstring_shows_each_category() -> None:
    # A bracket names the category of the class on its line; a line without one inherits the
    # category of the line it hangs from (or has none).
    doc = errors.__doc__ or ""
    tree = doc[doc.index("    IcechunkError\n") :]
    parents: list[type[ic.IcechunkError] | None] = []
    seen = set()
    for line in tree.splitlines():
        match = re.search(r"\b(\w+Error)\b", line)
        if match is None or not line.startswith("    "):
            break
        depth = match.start() // 4 - 1
        tag = re.search(r"\[([a-z ]+)\]", line)
        inherited = parents[depth - 1] if depth > 0 else None
        expected = CATEGORIES[tag.group(1)] if tag else inherited
        cls = getattr(errors, match.group(1))
        assert _category(cls) is expected, line
        del parents[depth:]
        parents.append(expected)
        seen.add(cls)
    categories = set(CATEGORIES.values())
    assert seen == set(_exported()) - categories


def test_categories_catch_real_failures(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(root))
    tip = repo.lookup_branch(ic.DEFAULT_BRANCH)
    with pytest.raises(ic.NotFoundError):
        repo.lookup_branch("nope")
    with pytest.raises(ic.NotFoundError):
        ic.Repository.open(ic.local_filesystem_storage(tmp_path / "none"))
    with pytest.raises(ic.AlreadyExistsError):
        repo.create_branch(ic.DEFAULT_BRANCH, tip)
    with pytest.raises(ic.InvalidInputError):
        repo.create_branch("a/b", tip)
    with pytest.raises(ic.InvalidInputError):
        repo.set_config_value("no.such.key", "1")

    stale = repo.writable_session(ic.DEFAULT_BRANCH)
    zarr.open_group(stale.store, mode="a").attrs["who"] = "stale"
    repo.writable_session(ic.DEFAULT_BRANCH).commit("moves main", allow_empty=True)
    with pytest.raises(ic.ConcurrentUpdateError):
        stale.commit("lost the race")

    other = ic.Repository.open(ic.local_filesystem_storage(root))
    repo.set_config_value("compression.level", "5")
    with pytest.raises(ic.ConcurrentUpdateError) as changed:
        other.save_config()
    assert not isinstance(changed.value, ic.ConfigError)  # the value was fine

    # A well-formed file of a newer format version is unsupported, not damage.
    snapshot = root / "snapshots" / repo.lookup_branch(ic.DEFAULT_BRANCH)
    original = snapshot.read_bytes()
    data = bytearray(original)
    data[4:6] = struct.pack("<H", 9)
    data[28:36] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(data[:28] + data[36:])))
    snapshot.write_bytes(bytes(data))
    fresh = ic.Repository.open(ic.local_filesystem_storage(root))
    with pytest.raises(ic.UnsupportedError) as newer:
        list(fresh.ancestry(branch=ic.DEFAULT_BRANCH))
    assert not isinstance(newer.value, ic.IntegrityError)
    assert "upgrade ick" in str(newer.value) and "corrupt" not in str(newer.value)

    snapshot.write_bytes(original[:-8])  # truncated: damage
    fresh = ic.Repository.open(ic.local_filesystem_storage(root))
    with pytest.raises(ic.IntegrityError):
        list(fresh.ancestry(branch=ic.DEFAULT_BRANCH))
