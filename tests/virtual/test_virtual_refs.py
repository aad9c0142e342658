"""Recording virtual references through the store: ``set_virtual_ref`` and
``set_virtual_refs``, their checks, and what a commit keeps of them."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pytest
import zarr

import icechunk_lib as ic
from icechunk_lib.errors import (
    InvalidInputError,
    InvalidKeyError,
    InvalidVirtualLocationError,
    NodeNotFoundError,
    VirtualContainerNotFoundError,
)
from icechunk_lib.format.manifest import VIRTUAL
from icechunk_lib.session import workspace_of

PREFIX = "s3://archive/data/"


@pytest.fixture
def session(tmp_path: Path) -> ic.Session:
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(PREFIX, ic.s3_store()))
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config)
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    root.create_array("temp", shape=(4, 6), chunks=(2, 3), dtype="f4")
    return session


def _ref(session: ic.Session, path: str, coords: tuple[int, ...]) -> ic.format.ChunkRef:
    ws = workspace_of(session)

    async def go() -> ic.format.ChunkRef | None:
        node = (await ws.nodes())[path]
        return await ws.chunk_ref(node, coords)

    ref = ic._sync.run(go())
    assert ref is not None
    return ref


def test_set_virtual_ref_records_location_range_and_checksum(session: ic.Session) -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, 30, tzinfo=dt.UTC)
    session.store.set_virtual_ref(
        "temp/c/1/0", PREFIX + "f1.nc", offset=100, length=24, checksum=when
    )
    session.store.set_virtual_ref(
        "temp/c/0/1", PREFIX + "f2.nc", offset=7, length=24, checksum='"abc"'
    )
    snap = session.commit("virtual")
    reader = session  # committed: the session now reads its own commit
    first, second = _ref(reader, "/temp", (1, 0)), _ref(reader, "/temp", (0, 1))
    assert (first.kind, first.location, first.offset, first.length) == (
        VIRTUAL,
        PREFIX + "f1.nc",
        100,
        24,
    )
    assert first.checksum == int(when.timestamp()) and first.etag == ""
    assert (second.etag, second.checksum, second.offset) == ('"abc"', 0, 7)
    assert snap == session.snapshot_id


def test_set_virtual_refs_skips_and_reports_undeclared_locations(session: ic.Session) -> None:
    specs = [
        ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 0, 10),
        ic.VirtualChunkSpec([0, 1], "s3://elsewhere/b.nc", 0, 10),
        ic.VirtualChunkSpec([1, 1], PREFIX + "c.nc", 10, 10, etag_checksum='"e"'),
    ]
    assert session.store.set_virtual_refs("temp", specs) == [(0, 1)]
    assert _ref(session, "/temp", (0, 0)).location == PREFIX + "a.nc"
    assert _ref(session, "/temp", (1, 1)).etag == '"e"'
    assert session.store.set_virtual_refs("/temp", specs, validate_containers=False) is None
    assert _ref(session, "/temp", (0, 1)).location == "s3://elsewhere/b.nc"


def test_an_undeclared_container_is_refused_by_set_virtual_ref(session: ic.Session) -> None:
    with pytest.raises(VirtualContainerNotFoundError, match=r"s3://other/x\.nc"):
        session.store.set_virtual_ref("temp/c/0/0", "s3://other/x.nc", offset=0, length=4)
    assert session.status().updated_chunks == {}


@pytest.mark.parametrize(
    "location",
    [PREFIX + "../secret.nc", PREFIX + "%2e%2e/secret.nc", "s3://archive/data/./x", "x.nc"],
)
def test_a_location_that_could_escape_is_refused_even_unvalidated(
    session: ic.Session, location: str
) -> None:
    with pytest.raises(InvalidVirtualLocationError):
        session.store.set_virtual_ref(
            "temp/c/0/0", location, offset=0, length=4, validate_container=False
        )


@pytest.mark.parametrize(
    ("offset", "length", "checksum"),
    [
        (-1, 4, None),
        (0, -4, None),
        (0, 0, None),
        (0, 2**64, None),
        (True, 4, None),
        (0, 4, ""),
        (0, 4, 7),
    ],
)
def test_bad_ranges_and_checksums_are_refused(
    session: ic.Session, offset: int, length: int, checksum: object
) -> None:
    with pytest.raises(InvalidInputError):
        session.store.set_virtual_ref(
            "temp/c/0/0",
            PREFIX + "a.nc",
            offset=offset,
            length=length,
            checksum=checksum,  # type: ignore[arg-type]
        )


def test_keys_and_indices_outside_the_array_are_refused(session: ic.Session) -> None:
    with pytest.raises(InvalidKeyError):
        session.store.set_virtual_ref("temp/c/9/9", PREFIX + "a.nc", offset=0, length=4)
    with pytest.raises(InvalidKeyError):
        session.store.set_virtual_ref("temp/zarr.json", PREFIX + "a.nc", offset=0, length=4)
    good = ic.VirtualChunkSpec([0, 0], PREFIX + "a.nc", 0, 4)
    for index in ([2, 0], [0], [0, 0, 0], [-1, 0]):
        with pytest.raises(InvalidInputError, match="not in array /temp"):
            session.store.set_virtual_refs(
                "temp", [good, ic.VirtualChunkSpec(index, PREFIX + "a.nc", 0, 4)]
            )
    with pytest.raises(NodeNotFoundError):
        session.store.set_virtual_refs("nope", [good])
    # Nothing of a refused batch was recorded.
    assert session.status().updated_chunks == {}


def test_a_spec_is_a_value() -> None:
    a = ic.VirtualChunkSpec([1, 2], PREFIX + "a.nc", 3, 4, etag_checksum='"x"')
    b = ic.VirtualChunkSpec((1, 2), PREFIX + "a.nc", 3, 4, etag_checksum='"x"')
    assert a == b and hash(a) == hash(b) and a.index == [1, 2]
    assert "a.nc" in repr(a)
    assert pickle.loads(pickle.dumps(a)) == a


def test_a_naive_last_updated_at_is_utc(session: ic.Session) -> None:
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)
    session.store.set_virtual_ref("temp/c/0/0", PREFIX + "a.nc", offset=0, length=4, checksum=naive)
    expected = int(naive.replace(tzinfo=dt.UTC).timestamp())
    assert _ref(session, "/temp", (0, 0)).checksum == expected
