"""``StorageTests``: the ``Storage`` contract, run against every backend that subclasses it.

A subclass provides a ``storage`` fixture giving an empty, open storage of its backend (an
async generator fixture can close it afterwards), and pytest collects the inherited tests::

    import pytest
    from icechunk_lib.testing import StorageTests

    class TestMyStorage(StorageTests):
        @pytest.fixture
        async def storage(self, tmp_path):
            async with MyStorage(tmp_path / "repo") as storage:
                yield storage

The tests are coroutines: run them with pytest-asyncio in auto mode (``asyncio_mode =
"auto"``). A backend must declare both atomic capabilities, and pickle to an equal handle
on the same objects.

``LostReplyTests`` is the part of the contract about replies lost on the way back (a
timeout after the server applied a write): a backend that retries requests subclasses it
too, with a ``lose_replies`` fixture that makes its transport lose them (see its docstring).
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from icechunk_lib.errors import (
    InvalidKeyError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from icechunk_lib.storage import ObjectInfo, Storage

__all__ = [
    "BAD_KEYS",
    "BAD_PREFIXES",
    "KEYED_METHODS",
    "LoseReplies",
    "LostReplyTests",
    "StorageTests",
    "collect",
]

DATA = b"0123456789"

BAD_KEYS = [
    "",
    "/abs",
    "trailing/",
    "a//b",
    "..",
    "a/../b",
    "../escape",
    ".",
    "./a",
    "a/.",
    "a\\b",
    "a\x00b",
    "a\nb",
    "tab\there",
    "del\x7f",
]

BAD_PREFIXES = ["/", "/refs", "a//", "../", "a/../", "./", "a\x00", "a\\b", "x\n"]

# Every keyed method, called with a key; list is covered by BAD_PREFIXES.
KeyedCall = Callable[[Storage, str], Awaitable[object]]
KEYED_METHODS: dict[str, KeyedCall] = {
    "get": lambda s, k: s.get(k),
    "get_range": lambda s, k: s.get(k, (0, 1)),
    "get_versioned": lambda s, k: s.get_versioned(k),
    "put": lambda s, k: s.put(k, b"x"),
    "put_new": lambda s, k: s.put_new(k, b"x"),
    "put_if_absent": lambda s, k: s.put_if_absent(k, b"x"),
    "put_if_match": lambda s, k: s.put_if_match(k, b"x", "token"),
    "exists": lambda s, k: s.exists(k),
    "size": lambda s, k: s.size(k),
    "delete": lambda s, k: s.delete(k),
    "delete_many": lambda s, k: s.delete_many(["fine", k]),
}

LISTED = {
    "config": b"c",
    "refs/branch.main/0001": b"m1",
    "refs/branch.main/0002": b"m2",
    "refs/branch.dev/0001": b"d1",
    "refs/tag.v1/ref.json": b"t",
    "snapshots/AAAA": b"snap",
    "chunks/X1": b"x" * 7,
    "chunks/X2": b"",
    "a/b/c/d/e": b"deep",
}


async def collect(storage: Storage, prefix: str = "") -> dict[str, ObjectInfo]:
    """All listed objects under ``prefix`` by key (asserting no key is listed twice)."""
    infos = [info async for info in storage.list(prefix)]
    by_key = {info.key: info for info in infos}
    assert len(by_key) == len(infos), "a key was listed twice"
    return by_key


class StorageTests:
    """The contract of ``icechunk_lib.storage.Storage``; subclasses provide ``storage``."""

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("backends override the storage fixture")

    # --- basics ----------------------------------------------------------------------

    def test_declares_safe_writes_and_url(self, storage: Storage) -> None:
        assert storage.capabilities.safe_writes
        assert isinstance(storage.url, str)
        assert storage.url

    async def test_get_missing_raises_not_found(self, storage: Storage) -> None:
        with pytest.raises(ObjectNotFoundError) as info:
            await storage.get("nope/missing")
        assert info.value.key == "nope/missing"
        assert isinstance(info.value, FileNotFoundError)
        with pytest.raises(ObjectNotFoundError):
            await storage.get("nope/missing", (0, 1))
        with pytest.raises(ObjectNotFoundError):
            await storage.get_versioned("nope/missing")

    async def test_put_then_get(self, storage: Storage) -> None:
        await storage.put("chunks/abc", DATA)
        assert await storage.get("chunks/abc") == DATA

    async def test_remove_leftovers_never_touches_objects(self, storage: Storage) -> None:
        for key in ("config", "refs/branch.main/ref", "snapshots/abc", "chunks/abc"):
            await storage.put(key, DATA)
        later = datetime.now(UTC) + timedelta(days=1)  # every leftover there is counts as old
        assert await storage.remove_leftovers(later, skip=("chunks",)) == 0
        assert await storage.remove_leftovers(later) == 0
        assert {i.key async for i in storage.list("")} == {
            "config",
            "refs/branch.main/ref",
            "snapshots/abc",
            "chunks/abc",
        }

    async def test_empty_object(self, storage: Storage) -> None:
        await storage.put("empty", b"")
        assert await storage.get("empty") == b""
        assert await storage.get("empty", (0, None)) == b""
        assert await storage.size("empty") == 0
        assert await storage.exists("empty")

    async def test_binary_roundtrip(self, storage: Storage) -> None:
        payload = bytes(range(256)) * 4096  # 1 MiB with every byte value
        await storage.put("blob", payload)
        assert await storage.get("blob") == payload
        assert await storage.get("blob", (1000, 1010)) == payload[1000:1010]

    async def test_put_overwrites(self, storage: Storage) -> None:
        await storage.put("k", b"old")
        await storage.put("k", b"new and longer")
        assert await storage.get("k") == b"new and longer"
        await storage.put("k", b"s")
        assert await storage.get("k") == b"s"

    # --- byte ranges -----------------------------------------------------------------

    @pytest.mark.parametrize(
        ("byte_range", "expected"),
        [
            ((0, 3), b"012"),
            ((3, None), b"3456789"),
            ((0, None), DATA),
            ((0, 10), DATA),
            ((8, 100), b"89"),
            ((9, 10), b"9"),
            ((10, None), b""),
            ((50, 60), b""),
            ((50, None), b""),
            ((4, 4), b""),
            ((6, 2), b""),
        ],
    )
    async def test_get_range(
        self, storage: Storage, byte_range: tuple[int, int | None], expected: bytes
    ) -> None:
        await storage.put("r", DATA)
        assert await storage.get("r", byte_range) == expected

    @pytest.mark.parametrize("byte_range", [(-1, 3), (0, -1), (-5, None)])
    async def test_negative_range_rejected(
        self, storage: Storage, byte_range: tuple[int, int | None]
    ) -> None:
        await storage.put("r", DATA)
        with pytest.raises(ValueError, match="non-negative"):
            await storage.get("r", byte_range)

    # --- create-if-absent ------------------------------------------------------------

    async def test_put_if_absent_creates(self, storage: Storage) -> None:
        await storage.put_if_absent("refs/tag.v1", b"first")
        assert await storage.get("refs/tag.v1") == b"first"

    async def test_put_if_absent_existing_raises(self, storage: Storage) -> None:
        await storage.put_if_absent("refs/tag.v1", b"first")
        with pytest.raises(ObjectExistsError) as info:
            await storage.put_if_absent("refs/tag.v1", b"second")
        assert info.value.key == "refs/tag.v1"
        assert isinstance(info.value, FileExistsError)
        assert await storage.get("refs/tag.v1") == b"first"

    async def test_put_if_absent_after_delete(self, storage: Storage) -> None:
        await storage.put_if_absent("k", b"1")
        await storage.delete("k")
        await storage.put_if_absent("k", b"2")
        assert await storage.get("k") == b"2"

    async def test_put_if_absent_race_has_one_winner(self, storage: Storage) -> None:
        results = await asyncio.gather(
            *(storage.put_if_absent("race", f"writer {i}".encode()) for i in range(16)),
            return_exceptions=True,
        )
        winners = [i for i, result in enumerate(results) if result is None]
        assert len(winners) == 1
        assert all(isinstance(r, ObjectExistsError) for r in results if r is not None)
        assert await storage.get("race") == f"writer {winners[0]}".encode()

    async def test_a_plain_conflict_is_not_marked_unknown(self, storage: Storage) -> None:
        await storage.put_if_absent("refs/tag/v1/ref", b"theirs")
        with pytest.raises(ObjectExistsError) as info:
            await storage.put_if_absent("refs/tag/v1/ref", b"mine")
        assert not info.value.outcome_unknown
        await storage.put("refs/branch/main/ref", b"v1")
        _, token = await storage.get_versioned("refs/branch/main/ref")
        await storage.put("refs/branch/main/ref", b"v2")
        with pytest.raises(PreconditionFailedError) as failed:
            await storage.put_if_match("refs/branch/main/ref", b"mine", token)
        assert not failed.value.outcome_unknown

    # --- fresh objects (put_new) -----------------------------------------------------

    async def test_put_new_creates(self, storage: Storage) -> None:
        await storage.put_new("chunks/A1", DATA)
        assert await storage.get("chunks/A1") == DATA
        assert await storage.get("chunks/A1", (2, 4)) == b"23"
        await storage.put_new("chunks/empty", b"")
        assert await storage.size("chunks/empty") == 0

    async def test_put_new_never_replaces(self, storage: Storage) -> None:
        await storage.put_new("chunks/A1", b"first")
        with pytest.raises(ObjectExistsError) as info:
            await storage.put_new("chunks/A1", b"second, longer")
        assert info.value.key == "chunks/A1"
        assert isinstance(info.value, FileExistsError)
        assert await storage.get("chunks/A1") == b"first"
        for write in (storage.put, storage.put_if_absent):  # nor an object written otherwise
            await write("manifests/M", b"kept")
            with pytest.raises(ObjectExistsError):
                await storage.put_new("manifests/M", b"other")
            assert await storage.get("manifests/M") == b"kept"
            await storage.delete("manifests/M")

    async def test_put_new_after_delete(self, storage: Storage) -> None:
        await storage.put_new("chunks/A1", b"1")
        await storage.delete("chunks/A1")
        await storage.put_new("chunks/A1", b"2")
        assert await storage.get("chunks/A1") == b"2"

    async def test_put_new_is_listed_and_versioned(self, storage: Storage) -> None:
        await storage.put_new("chunks/A1", b"abc")
        assert {k: i.size for k, i in (await collect(storage)).items()} == {"chunks/A1": 3}
        data, token = await storage.get_versioned("chunks/A1")
        assert data == b"abc"
        await storage.put_if_match("chunks/A1", b"swapped", token)
        assert await storage.get("chunks/A1") == b"swapped"

    # --- versions and compare-and-swap -----------------------------------------------

    async def test_get_versioned_returns_data_and_token(self, storage: Storage) -> None:
        await storage.put("ref", b"v1")
        data, token = await storage.get_versioned("ref")
        assert data == b"v1"
        assert isinstance(token, str)
        assert token
        assert (await storage.get_versioned("ref"))[1] == token  # stable without writes

    async def test_token_changes_on_write(self, storage: Storage) -> None:
        await storage.put("ref", b"v1")
        _, first = await storage.get_versioned("ref")
        await storage.put("ref", b"v2")
        _, second = await storage.get_versioned("ref")
        assert first != second

    async def test_put_if_match_success_returns_new_token(self, storage: Storage) -> None:
        await storage.put("ref", b"v1")
        _, token = await storage.get_versioned("ref")
        new_token = await storage.put_if_match("ref", b"v2", token)
        assert new_token != token
        assert await storage.get_versioned("ref") == (b"v2", new_token)
        newest = await storage.put_if_match("ref", b"v3", new_token)  # tokens chain
        assert await storage.get_versioned("ref") == (b"v3", newest)

    async def test_put_if_match_stale_token_fails(self, storage: Storage) -> None:
        await storage.put("ref", b"v1")
        _, stale = await storage.get_versioned("ref")
        await storage.put_if_match("ref", b"v2", stale)
        with pytest.raises(PreconditionFailedError) as info:
            await storage.put_if_match("ref", b"v3", stale)
        assert info.value.key == "ref"
        assert await storage.get("ref") == b"v2"

    async def test_put_if_match_after_plain_put_fails(self, storage: Storage) -> None:
        await storage.put("ref", b"v1")
        _, stale = await storage.get_versioned("ref")
        await storage.put("ref", b"other")
        with pytest.raises(PreconditionFailedError):
            await storage.put_if_match("ref", b"v2", stale)
        assert await storage.get("ref") == b"other"

    async def test_put_if_match_missing_key_fails(self, storage: Storage) -> None:
        with pytest.raises(PreconditionFailedError):
            await storage.put_if_match("ref", b"v1", "no-such-token")
        assert not await storage.exists("ref")

    async def test_put_if_match_after_delete_fails(self, storage: Storage) -> None:
        await storage.put("ref", b"v1")
        _, token = await storage.get_versioned("ref")
        await storage.delete("ref")
        with pytest.raises(PreconditionFailedError):
            await storage.put_if_match("ref", b"v2", token)
        assert not await storage.exists("ref")

    async def test_put_if_match_race_has_one_winner(self, storage: Storage) -> None:
        await storage.put("ref", b"start")
        _, token = await storage.get_versioned("ref")
        results = await asyncio.gather(
            *(storage.put_if_match("ref", f"writer {i}".encode(), token) for i in range(16)),
            return_exceptions=True,
        )
        winners = [i for i, result in enumerate(results) if isinstance(result, str)]
        assert len(winners) == 1
        losers = [r for r in results if not isinstance(r, str)]
        assert all(isinstance(r, PreconditionFailedError) for r in losers)
        assert await storage.get_versioned("ref") == (
            f"writer {winners[0]}".encode(),
            results[winners[0]],
        )

    # --- exists, size, delete --------------------------------------------------------

    async def test_exists(self, storage: Storage) -> None:
        assert not await storage.exists("k")
        await storage.put("k", b"1")
        assert await storage.exists("k")
        assert not await storage.exists("k/child")
        assert not await storage.exists("other")

    async def test_size(self, storage: Storage) -> None:
        await storage.put("k", b"12345")
        assert await storage.size("k") == 5
        with pytest.raises(ObjectNotFoundError):
            await storage.size("missing")

    async def test_delete(self, storage: Storage) -> None:
        await storage.put("a/k", b"1")
        await storage.put("a/other", b"2")
        await storage.delete("a/k")
        assert not await storage.exists("a/k")
        assert await storage.get("a/other") == b"2"
        with pytest.raises(ObjectNotFoundError):
            await storage.get("a/k")

    async def test_delete_missing_is_fine(self, storage: Storage) -> None:
        await storage.delete("never/was")
        await storage.put("k", b"1")
        await storage.delete("k")
        await storage.delete("k")

    async def test_delete_many(self, storage: Storage) -> None:
        for key in ("x/1", "x/2", "x/3", "y/1"):
            await storage.put(key, b"v")
        count = await storage.delete_many(["x/1", "x/2", "missing/key"])
        assert count == 3
        assert set(await collect(storage)) == {"x/3", "y/1"}
        assert await storage.delete_many([]) == 0
        assert await storage.delete_many(iter(["x/3"])) == 1  # any iterable

    # --- listing ---------------------------------------------------------------------

    async def test_list_empty_storage(self, storage: Storage) -> None:
        assert await collect(storage) == {}
        assert await collect(storage, "refs/") == {}
        assert await storage.is_empty()

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("", set(LISTED)),
            ("refs/", {k for k in LISTED if k.startswith("refs/")}),
            (
                "refs/branch.",
                {"refs/branch.main/0001", "refs/branch.main/0002", "refs/branch.dev/0001"},
            ),
            ("refs/branch.main/", {"refs/branch.main/0001", "refs/branch.main/0002"}),
            ("refs/branch.main/000", {"refs/branch.main/0001", "refs/branch.main/0002"}),
            ("refs/tag", {"refs/tag.v1/ref.json"}),
            ("r", {k for k in LISTED if k.startswith("refs/")}),
            ("chunks/X1", {"chunks/X1"}),
            ("chunks/", {"chunks/X1", "chunks/X2"}),
            ("conf", {"config"}),
            ("config", {"config"}),
            ("config/", set()),
            ("a/b/", {"a/b/c/d/e"}),
            ("a/b/c/d/e", {"a/b/c/d/e"}),
            ("nope/", set()),
            ("snapshots/AAAAB", set()),
            ("refs/branch.main/0001/", set()),
        ],
    )
    async def test_list_prefix(self, storage: Storage, prefix: str, expected: set[str]) -> None:
        for key, data in LISTED.items():
            await storage.put(key, data)
        assert set(await collect(storage, prefix)) == expected

    async def test_list_reports_size_and_time(self, storage: Storage) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        for key, data in LISTED.items():
            await storage.put(key, data)
        after = datetime.now(UTC) + timedelta(seconds=5)
        for key, info in (await collect(storage)).items():
            assert info.size == len(LISTED[key])
            assert info.last_modified.tzinfo is not None
            assert before <= info.last_modified <= after

    async def test_list_hides_internal_files(self, storage: Storage) -> None:
        # Exercise every write path, including failed ones that may leave locks behind.
        await storage.put("refs/main", b"1")
        _, token = await storage.get_versioned("refs/main")
        await storage.put_if_match("refs/main", b"2", token)
        with pytest.raises(PreconditionFailedError):
            await storage.put_if_match("refs/main", b"3", token)
        with pytest.raises(PreconditionFailedError):
            await storage.put_if_match("refs/missing", b"3", token)
        await storage.put_if_absent("refs/tag", b"t")
        with pytest.raises(ObjectExistsError):
            await storage.put_if_absent("refs/tag", b"t")
        assert set(await collect(storage)) == {"refs/main", "refs/tag"}
        assert set(await collect(storage, ".")) == set()

    @pytest.mark.parametrize(
        ("prefix", "start_after"),
        [
            ("", ""),
            ("", "chunks/X1"),
            ("chunks/", "chunks/"),
            ("chunks/", "chunks/X1"),
            ("chunks/", "chunks/X2"),
            ("refs/", "refs/branch.main/0001"),
            ("refs/", "refs/branch.dev/0001"),
            ("a/", "a/b/c"),
            ("refs/", "zzz"),
            ("", "a"),
        ],
    )
    async def test_list_start_after(self, storage: Storage, prefix: str, start_after: str) -> None:
        # Sorted and strictly after ``start_after`` (S3's ``StartAfter``), so a listing can
        # start at a time under time-ordered ids.
        for key, data in LISTED.items():
            await storage.put(key, data)
        listed = [info.key async for info in storage.list(prefix, start_after=start_after)]
        expected = sorted(k for k in LISTED if k.startswith(prefix) and k > start_after)
        assert listed == expected
        infos = [info async for info in storage.list(prefix, start_after=start_after)]
        assert all(info.size == len(LISTED[info.key]) for info in infos)

    async def test_list_can_stop_early(self, storage: Storage) -> None:
        for key, data in LISTED.items():
            await storage.put(key, data)
        listing = storage.list("")
        async for _ in listing:
            break

    async def test_is_empty(self, storage: Storage) -> None:
        assert await storage.is_empty()
        await storage.put("a/b", b"1")
        assert not await storage.is_empty()
        _, token = await storage.get_versioned("a/b")
        await storage.put_if_match("a/b", b"2", token)
        await storage.delete("a/b")
        assert await storage.is_empty()  # internal lock files do not count

    # --- key checks ------------------------------------------------------------------

    @pytest.mark.parametrize("method", sorted(KEYED_METHODS))
    @pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
    async def test_bad_keys_rejected(self, storage: Storage, method: str, key: str) -> None:
        await storage.put("fine", b"kept")
        with pytest.raises(InvalidKeyError):
            await KEYED_METHODS[method](storage, key)
        assert set(await collect(storage)) == {"fine"}

    @pytest.mark.parametrize("prefix", BAD_PREFIXES, ids=repr)
    async def test_bad_prefixes_rejected(self, storage: Storage, prefix: str) -> None:
        with pytest.raises(InvalidKeyError):
            await collect(storage, prefix)

    # --- closing -------------------------------------------------------------------

    async def test_close_is_idempotent_and_refuses_later_use(self, storage: Storage) -> None:
        await storage.put("config", b"cfg")
        assert not storage.closed
        await storage.close()
        await storage.close()
        assert storage.closed
        for name, call in KEYED_METHODS.items():
            with pytest.raises(StorageError, match="closed") as info:
                await call(storage, "config")
            assert storage.url in str(info.value), name
        for other in (collect(storage), storage.is_empty(), storage.create_root()):
            with pytest.raises(StorageError, match="closed"):
                await other

    async def test_async_with_closes(self, storage: Storage) -> None:
        async with storage as entered:
            assert entered is storage
            await storage.put("k", b"v")
        assert storage.closed
        with pytest.raises(StorageError, match="closed"):
            await storage.get("k")
        with pytest.raises(StorageError, match="closed"):
            async with storage:
                pass

    async def test_close_keeps_the_objects(self, storage: Storage) -> None:
        await storage.put("config", b"cfg")
        payload = pickle.dumps(storage)
        await storage.close()
        reopened = pickle.loads(payload)
        assert not reopened.closed
        assert reopened == storage
        assert await reopened.get("config") == b"cfg"
        assert pickle.loads(pickle.dumps(storage)).closed is False  # a closed one pickles open

    # --- pickling --------------------------------------------------------------------

    async def test_pickle_roundtrip_shares_data(self, storage: Storage) -> None:
        await storage.put("config", b"cfg")
        clone = pickle.loads(pickle.dumps(storage))
        assert clone == storage
        assert hash(clone) == hash(storage)
        assert clone.url == storage.url
        assert await clone.get("config") == b"cfg"
        await storage.put("refs/main", b"later")  # written after pickling, still visible
        assert await clone.get("refs/main") == b"later"
        _, token = await clone.get_versioned("refs/main")
        await clone.put_if_match("refs/main", b"from clone", token)
        assert await storage.get("refs/main") == b"from clone"


class LoseReplies(Protocol):
    """The ``lose_replies`` fixture of ``LostReplyTests``."""

    def __call__(self, key: str, count: int, *, reads: bool = False) -> Callable[[], None]:
        """Let the next ``count`` requests that write ``key`` (and, with ``reads``, those
        that read it) reach the storage and be applied, but lose their replies; return a
        function that stops losing them."""
        ...


EVERY = 1_000
"""More lost replies than any backend retries: it never hears back."""


class LostReplyTests:
    """The ``Storage`` contract for replies lost after the write was applied.

    A subclass provides ``storage`` (empty, open) and ``lose_replies`` (see ``LoseReplies``),
    for a backend whose requests can time out after they were applied, and which retries:
    a create-if-absent must then recognise its own bytes, so a lost reply never turns into
    "already exists" nor into an error for a write that landed.
    """

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("backends override the storage fixture")

    @pytest.fixture
    def lose_replies(self) -> LoseReplies:
        raise NotImplementedError("backends override the lose_replies fixture")

    @pytest.mark.parametrize("method", ["put_if_absent", "put_new"])
    @pytest.mark.parametrize("lost", [1, EVERY], ids=["one", "every"])
    async def test_create_whose_reply_was_lost_succeeds(
        self, storage: Storage, lose_replies: LoseReplies, method: str, lost: int
    ) -> None:
        # One lost reply: the retry finds the key taken, by our own bytes. Every reply lost:
        # the storage gives up writing and reads the key to learn what happened.
        stop = lose_replies("refs/tag/v1/ref", lost)
        await getattr(storage, method)("refs/tag/v1/ref", b"mine")
        stop()
        assert await storage.get("refs/tag/v1/ref") == b"mine"

    @pytest.mark.parametrize("lost", [1, EVERY], ids=["one", "every"])
    async def test_create_of_a_key_someone_holds_fails_with_outcome_unknown(
        self, storage: Storage, lose_replies: LoseReplies, lost: int
    ) -> None:
        await storage.put_if_absent("refs/tag/v1/ref", b"theirs")
        stop = lose_replies("refs/tag/v1/ref", lost)
        with pytest.raises(ObjectExistsError) as info:
            await storage.put_if_absent("refs/tag/v1/ref", b"mine")
        stop()
        # Other bytes are there: ours never landed, or landed and were replaced since.
        assert info.value.outcome_unknown
        assert await storage.get("refs/tag/v1/ref") == b"theirs"

    async def test_create_it_cannot_check_fails_with_outcome_unknown(
        self, storage: Storage, lose_replies: LoseReplies
    ) -> None:
        stop = lose_replies("refs/tag/v1/ref", EVERY, reads=True)
        with pytest.raises(StorageError) as info:
            await storage.put_if_absent("refs/tag/v1/ref", b"mine")
        stop()
        assert not isinstance(info.value, ObjectExistsError)
        assert getattr(info.value, "outcome_unknown", False)
        assert "refs/tag/v1/ref" in str(info.value)
        assert await storage.get("refs/tag/v1/ref") == b"mine"  # it had landed

    async def test_swap_whose_reply_was_lost_succeeds(
        self, storage: Storage, lose_replies: LoseReplies
    ) -> None:
        await storage.put("refs/branch/main/ref", b"v1")
        _, token = await storage.get_versioned("refs/branch/main/ref")
        stop = lose_replies("refs/branch/main/ref", 1)
        new_token = await storage.put_if_match("refs/branch/main/ref", b"v2", token)
        stop()
        assert await storage.get_versioned("refs/branch/main/ref") == (b"v2", new_token)
