"""Transaction logs round trip and refuse damage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from icechunk_lib.errors import CorruptObjectError, ObjectIdMismatchError
from icechunk_lib.format.txlog import (
    NodeChange,
    TransactionLog,
    UpdatedChunks,
    decode_txlog,
    encode_txlog,
)

from .strategies import node_ids, object_ids

PATH = "transactions/0123456789ABCDEFGHJK in /data/repo"

paths = st.text(min_size=1, max_size=12).map(lambda s: "/" + s)
changes = st.lists(st.builds(NodeChange, node_ids, paths), max_size=3).map(tuple)


@st.composite
def updated_chunks(draw: st.DrawFn) -> UpdatedChunks:
    ndim = draw(st.integers(0, 3))
    n = draw(st.integers(0, 5))
    coords = draw(
        st.lists(st.integers(0, 2**40), min_size=n * ndim, max_size=n * ndim).map(
            lambda xs: np.array(xs, dtype="<i8").tobytes()
        )
    )
    return UpdatedChunks(draw(node_ids), draw(paths), ndim, coords)


logs = st.builds(
    TransactionLog,
    snapshot_id=object_ids,
    new_groups=changes,
    new_arrays=changes,
    deleted_groups=changes,
    deleted_arrays=changes,
    updated_groups=changes,
    updated_arrays=changes,
    moved=st.lists(st.tuples(node_ids, paths, paths), max_size=3).map(tuple),
    updated_chunks=st.lists(updated_chunks(), max_size=3).map(tuple),
    extra_keys=st.lists(st.text(max_size=8), max_size=3).map(tuple),
)


@given(log=logs, level=st.integers(1, 22))
def test_round_trip(log: TransactionLog, level: int) -> None:
    data = encode_txlog(log, compression_level=level)
    assert decode_txlog(data, log.snapshot_id, path=PATH) == log


@given(log=logs, data=st.data(), mask=st.integers(1, 255))
def test_damage_is_rejected(log: TransactionLog, data: st.DataObject, mask: int) -> None:
    encoded = bytearray(encode_txlog(log))
    if data.draw(st.booleans(), label="truncate"):
        encoded = encoded[: data.draw(st.integers(0, len(encoded) - 1), label="length")]
    else:
        encoded[data.draw(st.integers(0, len(encoded) - 1), label="index")] ^= mask
    with pytest.raises(CorruptObjectError) as exc:
        decode_txlog(bytes(encoded), log.snapshot_id, path=PATH)
    assert exc.value.path == PATH and PATH in str(exc.value)


@given(log=logs, wanted=object_ids)
def test_the_log_of_another_commit_is_refused(log: TransactionLog, wanted: str) -> None:
    assume(wanted != log.snapshot_id)
    with pytest.raises(ObjectIdMismatchError) as exc:
        decode_txlog(encode_txlog(log), wanted, path=PATH)
    assert (exc.value.expected_id, exc.value.found_id) == (wanted, log.snapshot_id)
    assert exc.value.path == PATH and "transaction log" in str(exc.value)
