"""Expiration records round trip, refuse damage and refuse another record's file."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from icechunk_lib.errors import CorruptObjectError, ObjectIdMismatchError
from icechunk_lib.format.expiration import (
    ExpirationRecord,
    Reparent,
    decode_expiration,
    encode_expiration,
)
from icechunk_lib.format.ids import new_object_id

from .strategies import object_ids

PATH = "expirations/0123456789ABCDEFGHJK in /data/repo"

reparents = st.builds(
    Reparent,
    snapshot_id=object_ids,
    parent_id=object_ids,
    skipped=st.lists(object_ids, max_size=6).map(tuple),
)
records = st.builds(
    ExpirationRecord,
    id=object_ids,
    written_at=st.integers(0, 2**62),
    older_than=st.integers(0, 2**62),
    reparented=st.lists(reparents, max_size=4).map(tuple),
)


@given(record=records, level=st.integers(1, 22))
def test_round_trip(record: ExpirationRecord, level: int) -> None:
    data = encode_expiration(record, compression_level=level)
    assert decode_expiration(data, record.id, path=PATH) == record


def test_a_record_of_thousands_of_skipped_snapshots_round_trips_compressed() -> None:
    ids = tuple(new_object_id() for _ in range(4000))
    record = ExpirationRecord(new_object_id(), 1, 2, (Reparent(ids[0], ids[1], ids),))
    data = encode_expiration(record)
    assert data[7] == 1  # zstd: long lists compress
    assert decode_expiration(data, record.id, path=PATH) == record


@given(record=records, data=st.data(), mask=st.integers(1, 255))
def test_damage_is_rejected(record: ExpirationRecord, data: st.DataObject, mask: int) -> None:
    encoded = bytearray(encode_expiration(record))
    if data.draw(st.booleans(), label="truncate"):
        encoded = encoded[: data.draw(st.integers(0, len(encoded) - 1), label="length")]
    else:
        encoded[data.draw(st.integers(0, len(encoded) - 1), label="index")] ^= mask
    with pytest.raises(CorruptObjectError) as exc:
        decode_expiration(bytes(encoded), record.id, path=PATH)
    assert exc.value.path == PATH and PATH in str(exc.value)


@given(record=records, wanted=object_ids)
def test_another_record_is_refused(record: ExpirationRecord, wanted: str) -> None:
    assume(wanted != record.id)
    with pytest.raises(ObjectIdMismatchError) as exc:
        decode_expiration(encode_expiration(record), wanted, path=PATH)
    assert (exc.value.expected_id, exc.value.found_id) == (wanted, record.id)
    assert "expiration record" in str(exc.value)
