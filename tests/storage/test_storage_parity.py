"""The memory backend behaves exactly like the local one where the contract leaves room.

Tests run on memory often stand in for the local file system, so every difference is a
test that passes on one and would fail on the other.
"""

from __future__ import annotations

import pytest

from icechunk_lib.errors import InvalidKeyError, ObjectNotFoundError
from icechunk_lib.storage import (
    Storage,
    check_key,
)


@pytest.mark.parametrize(
    ("byte_range", "expected"),
    [((3, 100), b"3456789"), ((10, 20), b""), ((50, None), b""), ((7, 2), b""), ((0, 0), b"")],
)
async def test_ranges_past_the_end_clip_alike(
    storage: Storage, byte_range: tuple[int, int | None], expected: bytes
) -> None:
    await storage.put("k", b"0123456789")
    assert await storage.get("k", byte_range) == expected


async def test_missing_keys_alike(storage: Storage) -> None:
    for call in (storage.size("nope"), storage.get("nope", (0, 1)), storage.get_versioned("a/b")):
        with pytest.raises(ObjectNotFoundError, match=r"'(nope|a/b)' not found"):
            await call
    assert not await storage.exists("nope")


@pytest.mark.parametrize("key", [".ick-locks/x", "a/.ick-tmp-123", ".ick-anything"])
async def test_reserved_segments_are_refused_alike(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKeyError, match="reserved"):
        check_key(key)
    with pytest.raises(InvalidKeyError, match="reserved"):
        await storage.put(key, b"x")
    assert not any([info async for info in storage.list("")])
