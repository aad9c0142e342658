"""Branch and tag records and tag tombstones: round trips, and no record read as another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from icechunk_lib.errors import CorruptObjectError, ObjectIdMismatchError
from icechunk_lib.format.refs import (
    BranchRecord,
    ReflogItem,
    ReflogPage,
    TagRecord,
    TagTombstone,
    decode_branch,
    decode_reflog_page,
    decode_tag,
    decode_tombstone,
    encode_branch,
    encode_reflog_page,
    encode_tag,
    encode_tombstone,
)

from .strategies import object_ids

PATH = "refs/branch/main/ref in /data/repo"
NAME = "main"
times = st.integers(0, 2**63 - 1)

CODECS: dict[str, tuple[Callable[[Any], bytes], Callable[..., Any], st.SearchStrategy[Any]]] = {
    "branch": (
        encode_branch,
        decode_branch,
        st.builds(BranchRecord, object_ids, times, st.none() | object_ids, name=st.just(NAME)),
    ),
    "tag": (encode_tag, decode_tag, st.builds(TagRecord, object_ids, times, name=st.just(NAME))),
    "tag_tombstone": (
        encode_tombstone,
        decode_tombstone,
        st.builds(TagTombstone, object_ids, times, name=st.just(NAME)),
    ),
}


@pytest.mark.parametrize("kind", sorted(CODECS))
@given(data=st.data())
def test_round_trip(kind: str, data: st.DataObject) -> None:
    encode, decode, records = CODECS[kind]
    record = data.draw(records)
    assert decode(encode(record), NAME, path=PATH) == record


@pytest.mark.parametrize("written", sorted(CODECS))
@pytest.mark.parametrize("read_as", sorted(CODECS))
@given(data=st.data())
def test_no_record_is_read_as_another_kind(written: str, read_as: str, data: st.DataObject) -> None:
    encode, _, records = CODECS[written]
    decode = CODECS[read_as][1]
    encoded = encode(data.draw(records))
    if written == read_as:
        decode(encoded, NAME, path=PATH)
        return
    expected = f"expected a {read_as}, found a {written}".replace("_", " ")
    with pytest.raises(CorruptObjectError, match=expected):
        decode(encoded, NAME, path=PATH)


@pytest.mark.parametrize("kind", sorted(CODECS))
@given(data=st.data(), mask=st.integers(1, 255))
def test_damage_is_rejected(kind: str, data: st.DataObject, mask: int) -> None:
    encode, decode, records = CODECS[kind]
    encoded = bytearray(encode(data.draw(records)))
    if data.draw(st.booleans(), label="truncate"):
        encoded = encoded[: data.draw(st.integers(0, len(encoded) - 1), label="length")]
    else:
        encoded[data.draw(st.integers(0, len(encoded) - 1), label="index")] ^= mask
    with pytest.raises(CorruptObjectError) as exc:
        decode(bytes(encoded), NAME, path=PATH)
    assert exc.value.path == PATH and PATH in str(exc.value)


@pytest.mark.parametrize("kind", sorted(CODECS))
@given(data=st.data(), written=st.text(min_size=1, max_size=8), wanted=st.text(max_size=8))
def test_a_ref_under_another_name_is_refused(
    kind: str, data: st.DataObject, written: str, wanted: str
) -> None:
    """A ref file copied or restored under another ref's key never names that ref's snapshot."""
    assume(written != wanted)
    encode, decode, records = CODECS[kind]
    record = msgspec.structs.replace(data.draw(records), name=written)
    with pytest.raises(ObjectIdMismatchError) as exc:
        decode(encode(record), wanted, path=PATH)
    assert (exc.value.expected_id, exc.value.found_id) == (repr(wanted), repr(written))
    assert exc.value.path == PATH


@pytest.mark.parametrize("kind", sorted(CODECS))
@given(data=st.data())
def test_a_ref_that_names_nothing_is_corrupt(kind: str, data: st.DataObject) -> None:
    encode, decode, records = CODECS[kind]
    record = msgspec.structs.replace(data.draw(records), name="")
    with pytest.raises(CorruptObjectError, match="names no"):
        decode(encode(record), NAME, path=PATH)


def test_refs_are_stored_uncompressed() -> None:
    # Refs are tiny and rewritten on every commit: zstd would only add its frame overhead.
    assert encode_branch(BranchRecord("0" * 20, 1, name=NAME))[7] == 0


reflog_items = st.builds(
    ReflogItem,
    object_ids,
    st.none() | object_ids,
    times,
    st.sampled_from(["create", "commit", "reset"]),
    st.text(max_size=10),
)
pages = st.builds(ReflogPage, st.lists(reflog_items, max_size=4).map(tuple), st.none() | object_ids)


@given(page=pages, page_id=object_ids)
def test_reflog_page_round_trip(page: ReflogPage, page_id: str) -> None:
    data = encode_reflog_page(page, page_id)
    assert decode_reflog_page(data, page_id, path=PATH) == page


@given(page=pages, written=object_ids, wanted=object_ids)
def test_a_reflog_page_under_another_id_is_refused(
    page: ReflogPage, written: str, wanted: str
) -> None:
    assume(written != wanted)
    with pytest.raises(ObjectIdMismatchError) as exc:
        decode_reflog_page(encode_reflog_page(page, written), wanted, path=PATH)
    assert (exc.value.expected_id, exc.value.found_id) == (wanted, written)
    assert exc.value.path == PATH and "reflog page" in str(exc.value)
