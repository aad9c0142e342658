"""Object ids: Crockford base32 text, 20 characters for 12 bytes, 13 for 8."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from icechunk_lib.format import (
    decode_id,
    encode_id,
    is_object_id,
    new_chunk_id,
    new_node_id,
    new_object_id,
)
from icechunk_lib.format.ids import id_time, last_id_before, new_snapshot_id

from .strategies import CROCKFORD

# Non-ASCII characters are left out here: see test_non_ascii_look_alikes_are_refused.
_NOT_IN_ALPHABET = st.characters(
    codec="ascii", exclude_characters=CROCKFORD + CROCKFORD.lower() + "ILOUilou"
)


@given(raw=st.binary(max_size=40))
def test_round_trip_and_alphabet(raw: bytes) -> None:
    text = encode_id(raw)
    assert set(text) <= set(CROCKFORD)
    assert len(text) == math.ceil(len(raw) * 8 / 5)
    assert decode_id(text) == raw
    assert decode_id(text.lower()) == raw


@given(a=st.binary(min_size=12, max_size=12), b=st.binary(min_size=12, max_size=12))
def test_text_order_is_byte_order(a: bytes, b: bytes) -> None:
    # Listings sort keys as text; ids must sort like the bytes they encode.
    assert (encode_id(a) < encode_id(b)) == (a < b)


def test_lengths_of_fresh_ids() -> None:
    object_ids = {new_object_id() for _ in range(500)}
    assert len(object_ids) == 500
    assert all(len(i) == 20 and is_object_id(i) for i in object_ids)
    node_id = new_node_id()
    assert len(node_id) == 13 and set(node_id) <= set(CROCKFORD)
    assert not is_object_id(node_id)
    chunk_id = new_chunk_id()
    assert isinstance(chunk_id, bytes) and len(chunk_id) == 12
    assert is_object_id(encode_id(chunk_id))


@given(text=st.text(alphabet=CROCKFORD + "ILOU" + "abc-_ ", max_size=24))
@example(text="0" * 20)
@example(text="0" * 19 + "I")
@example(text="a" * 20)
def test_is_object_id_is_exactly_20_crockford_characters(text: str) -> None:
    expected = len(text) == 20 and all(c in CROCKFORD for c in text)
    assert is_object_id(text) == expected


@given(raw=st.binary(min_size=12, max_size=12))
def test_every_encoded_12_byte_value_is_an_object_id(raw: bytes) -> None:
    assert is_object_id(encode_id(raw))


@given(data=st.data(), raw=st.binary(min_size=12, max_size=12))
def test_characters_outside_the_alphabet_are_refused(data: st.DataObject, raw: bytes) -> None:
    text = encode_id(raw)
    i = data.draw(st.integers(0, len(text) - 1), label="index")
    bad = data.draw(_NOT_IN_ALPHABET, label="character")
    with pytest.raises(ValueError):
        decode_id(text[:i] + bad + text[i + 1 :])


@pytest.mark.parametrize("letter", ["I", "L", "O", "U", "i", "o"])
def test_letters_crockford_leaves_out_are_not_other_digits(letter: str) -> None:
    # Crockford lets decoders read I and L as 1 and O as 0; reading them as RFC 4648 digits
    # ('O' as 'E') would silently name another object.
    alias = {"I": "1", "L": "1", "O": "0"}.get(letter.upper())
    try:
        got = decode_id(letter * 20)
    except ValueError:
        return
    assert alias is not None and got == decode_id(alias * 20)


@pytest.mark.parametrize(
    "letter", ["\u017f", "\u0131", "\u212a"], ids=["long-s", "dotless-i", "kelvin"]
)
def test_non_ascii_look_alikes_are_refused(letter: str) -> None:
    # str.upper() maps some of these to ASCII letters (long s -> 'S'); ids are ASCII only.
    with pytest.raises(ValueError):
        decode_id(letter * 20)


def test_chunk_ids_are_unique_across_pool_refills_and_threads() -> None:
    # Ids come from a block of random bytes; crossing several refills, from several threads,
    # must still give distinct 12-byte ids.
    import threading

    out: list[list[bytes]] = [[] for _ in range(4)]

    def draw(bucket: list[bytes]) -> None:
        bucket.extend(new_chunk_id() for _ in range(3000))

    threads = [threading.Thread(target=draw, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for bucket in out for i in bucket]
    assert all(len(i) == 12 for i in ids)
    assert len(set(ids)) == len(ids) == 12000


def test_forked_child_draws_other_chunk_ids_than_its_parent() -> None:
    import os

    new_chunk_id()  # the parent's pool now holds unread bytes a child would inherit
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next ids and leave at once
        os.close(read_end)
        os.write(write_end, b"".join(new_chunk_id() for _ in range(8)))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = b"".join(new_chunk_id() for _ in range(8))
    assert len(child) == len(parent) == 96
    assert {child[i : i + 12] for i in range(0, 96, 12)}.isdisjoint(
        {parent[i : i + 12] for i in range(0, 96, 12)}
    )


def test_fresh_ids_are_time_ordered_and_say_when_they_were_made() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    first = new_object_id()
    time.sleep(0.002)
    chunk = new_chunk_id()
    time.sleep(0.002)
    last = new_object_id()
    after = datetime.now(UTC) + timedelta(milliseconds=1)
    assert first < encode_id(chunk) < last  # keys sort by creation time
    for made in (first, chunk, last):
        assert before <= id_time(made) <= after
    # Ids made within one millisecond still differ: 48 random bits follow the time.
    assert len({new_object_id() for _ in range(2000)}) == 2000
    assert len({new_chunk_id() for _ in range(2000)}) == 2000


def test_last_id_before_bounds_a_listing_at_a_time() -> None:
    when = datetime(2026, 5, 1, 12, 0, 0, 5000, tzinfo=UTC)
    bound = last_id_before(when)
    assert is_object_id(bound)
    assert id_time(bound) < when
    ms = int(when.timestamp() * 1000).to_bytes(6, "big")
    at_when = encode_id(ms + bytes(6))  # the smallest id of time ``when``
    just_before = encode_id((int.from_bytes(ms, "big") - 1).to_bytes(6, "big") + b"\xff" * 6)
    assert just_before <= bound < at_when
    assert id_time(at_when) == when.replace(microsecond=5000)


def test_id_time_of_an_old_random_id_is_some_time_not_an_error() -> None:
    assert id_time(b"\xff" * 12) == datetime.max.replace(tzinfo=UTC)
    assert id_time(encode_id(bytes(12))) == datetime(1970, 1, 1, tzinfo=UTC)


def test_snapshot_ids_stay_random_so_short_prefixes_tell_them_apart() -> None:
    # People type a few leading characters to name a snapshot; time-ordered ids made the
    # same minute would share them.
    prefixes = {new_snapshot_id()[:4] for _ in range(200)}
    assert len(prefixes) >= 190
    assert {new_object_id()[:4] for _ in range(200)} != prefixes
