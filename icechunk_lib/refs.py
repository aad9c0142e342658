"""Branches and tags on storage: branch moves are compare-and-swap, tags are create-once.

Layout: ``refs/branch/<name>/ref`` and ``refs/tag/<name>/ref``; deleting a tag writes
``refs/tag/<name>/deleted`` so the name is never reused. The name is a whole path segment, so
every valid name (up to 255 bytes) fits a file name.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from icechunk_lib.errors import (
    BranchAlreadyExistsError,
    BranchNotFoundError,
    ConflictError,
    InvalidNameError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    ProtectedBranchError,
    TagAlreadyExistsError,
    TagNotFoundError,
)
from icechunk_lib.format.ids import new_object_id
from icechunk_lib.format.refs import (
    REFLOG_INLINE,
    BranchRecord,
    ReflogItem,
    ReflogPage,
    TagRecord,
    TagTombstone,
    decode_branch,
    decode_reflog_page,
    decode_tag,
    encode_branch,
    encode_reflog_page,
    encode_tag,
    encode_tombstone,
)
from icechunk_lib.names import validate_new_ref_name, validate_ref_name
from icechunk_lib.objects import fetch_referenced
from icechunk_lib.storage import Storage

__all__ = [
    "BRANCHES",
    "DEFAULT_BRANCH",
    "REFLOGS",
    "TAGS",
    "RefStore",
    "branch_key",
    "now_us",
    "outcome_unknown",
]

DEFAULT_BRANCH = "main"
"""The branch a repository is created with, and the default of every command; never deleted."""
BRANCHES = "refs/branch/"
TAGS = "refs/tag/"
REFLOGS = "reflogs/"


def now_us() -> int:
    """Current UTC time in microseconds since the epoch."""
    return time.time_ns() // 1000


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed conditional write may have been applied by an earlier attempt
    whose reply was lost, and replaced since (the storage retried it; see ``Storage``)."""
    return bool(getattr(exc, "outcome_unknown", False))


def branch_key(name: str) -> str:
    return f"{BRANCHES}{name}/ref"


def _tag_key(name: str) -> str:
    return f"{TAGS}{name}/ref"


def _tombstone_key(name: str) -> str:
    return f"{TAGS}{name}/deleted"


class RefStore:
    """Branch and tag operations with the atomicity the invariants need."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        # The last record (and version token) seen of each branch: a commit tries its
        # compare-and-swap against it before reading the ref again. The swap itself checks
        # the token, so a stale entry only costs the re-read it would have saved.
        self._known: dict[str, tuple[BranchRecord, str]] = {}

    def _where(self, key: str) -> str:
        return f"{key} in {self.storage.url}"

    # --- branches ------------------------------------------------------------------------------

    async def branch_record(self, name: str) -> tuple[BranchRecord, str]:
        """The branch's record and its version token; ``BranchNotFoundError`` if missing."""
        validate_ref_name(name, "branch")
        key = branch_key(name)
        try:
            data, version = await self.storage.get_versioned(key)
        except ObjectNotFoundError:
            self._known.pop(name, None)
            raise BranchNotFoundError(name) from None
        rec = decode_branch(data, name, path=self._where(key))
        self._known[name] = (rec, version)
        return rec, version

    async def lookup_branch(self, name: str) -> str:
        rec, _ = await self.branch_record(name)
        return rec.snapshot_id

    async def create_branch(self, name: str, snapshot_id: str) -> None:
        validate_new_ref_name(name, "branch")
        at = now_us()
        item = ReflogItem(snapshot_id, None, at, "create", "")
        rec = BranchRecord(snapshot_id=snapshot_id, updated_at=at, log=(item,), name=name)
        try:
            await self.storage.put_if_absent(branch_key(name), encode_branch(rec))
        except ObjectExistsError as exc:
            # The storage recognises a creation whose reply was lost by its bytes; with the
            # outcome unknown, it may also have landed and been moved on since by others.
            if not outcome_unknown(exc):
                raise BranchAlreadyExistsError(name) from None
            try:
                now, _ = await self.branch_record(name)
            except BranchNotFoundError:  # deleted meanwhile: it existed all the same
                raise BranchAlreadyExistsError(name) from None
            if not await self._moved_by(now, item, deep=True):
                raise BranchAlreadyExistsError(name) from None
            # This creation landed; only its reply was lost.

    async def update_branch(
        self,
        name: str,
        new_snapshot: str,
        expected: str | None,
        *,
        check: bool = True,
        action: str = "commit",
        message: str = "",
    ) -> str:
        """Move ``name`` to ``new_snapshot`` if it is at ``expected``; return where it was.

        This compare-and-swap is the commit point of every commit, and records the move in
        the branch's reflog in the same write. With ``check=False`` the branch moves from
        wherever it is (still atomically, so no concurrent move is lost).
        """
        known = self._known.get(name)
        fresh: tuple[BranchRecord, str] | None = None
        while True:
            cached = known is not None and (not check or known[0].snapshot_id == expected)
            if fresh is not None:
                rec, version = fresh
            elif cached:
                assert known is not None
                rec, version = known
            else:
                rec, version = await self.branch_record(name)
            known = fresh = None
            if check and rec.snapshot_id != expected:
                raise ConflictError(name, expected, rec.snapshot_id)
            at = now_us()
            item = ReflogItem(new_snapshot, rec.snapshot_id, at, action, message)
            log, older = (item, *rec.log), rec.older
            if len(log) > REFLOG_INLINE:
                # Archive the older entries under a fresh id; unreferenced if the swap loses.
                older = new_object_id()
                page = ReflogPage(items=log[1:], older=rec.older)
                await self.storage.put_if_absent(REFLOGS + older, encode_reflog_page(page, older))
                log = (item,)
            new = BranchRecord(
                snapshot_id=new_snapshot,
                updated_at=at,
                previous=rec.snapshot_id,
                log=log,
                older=older,
                name=name,
            )
            try:
                token = await self.storage.put_if_match(
                    branch_key(name), encode_branch(new), version
                )
            except PreconditionFailedError as exc:
                self._known.pop(name, None)
                now = await self.branch_record(name)
                if await self._moved_by(now[0], item, deep=outcome_unknown(exc)):
                    # Our swap landed; only its reply was lost (the retry found it done).
                    return rec.snapshot_id
                if check and now[0].snapshot_id != expected:
                    raise ConflictError(name, expected, now[0].snapshot_id) from None
                if cached or not check:
                    fresh = now  # try again against what was just read
                    continue
                raise ConflictError(name, expected, now[0].snapshot_id) from None
            self._known[name] = (new, token)
            return rec.snapshot_id

    async def _moved_by(self, rec: BranchRecord, item: ReflogItem, *, deep: bool) -> bool:
        """Whether the branch's reflog holds ``item``: that move (which has its writer's own
        microsecond and snapshot) landed. ``deep`` also reads the newest archived page, for
        when the outcome of a write is unknown and others may have moved the branch since."""
        if item in rec.log:
            return True
        if not deep or rec.older is None:
            return False
        key = REFLOGS + rec.older
        page = decode_reflog_page(
            await fetch_referenced(self.storage, key), rec.older, path=self._where(key)
        )
        return item in page.items

    def landed(self, name: str, snapshot_ids: Collection[str]) -> str | None:
        """Which of ``snapshot_ids`` a commit put on branch ``name``, by the last record read
        of it (no I/O): a commit whose reply was lost is found here, not made twice."""
        known = self._known.get(name)
        if known is None or not snapshot_ids:
            return None
        for move in known[0].log:
            if move.action == "commit" and move.snapshot_id in snapshot_ids:
                return move.snapshot_id
        return None

    async def reflog(self, name: str) -> list[ReflogItem]:
        """Every recorded move of the branch, newest first."""
        rec, _ = await self.branch_record(name)
        items = list(rec.log)
        older = rec.older
        while older is not None:
            key = REFLOGS + older
            data = await fetch_referenced(self.storage, key)
            page = decode_reflog_page(data, older, path=self._where(key))
            items.extend(page.items)
            older = page.older
        return items

    async def delete_branch(self, name: str) -> None:
        validate_ref_name(name, "branch")
        if name == DEFAULT_BRANCH:
            raise ProtectedBranchError(name, "delete")
        key = branch_key(name)
        self._known.pop(name, None)
        if not await self.storage.exists(key):
            raise BranchNotFoundError(name)
        await self.storage.delete(key)

    async def list_branches(self) -> set[str]:
        return await self._list_names(BRANCHES, "/ref")

    # --- tags ----------------------------------------------------------------------------------

    async def create_tag(self, name: str, snapshot_id: str) -> None:
        validate_new_ref_name(name, "tag")
        if await self.storage.exists(_tombstone_key(name)):
            raise TagAlreadyExistsError(name, deleted=True)
        rec = TagRecord(snapshot_id=snapshot_id, created_at=now_us(), name=name)
        data = encode_tag(rec)
        try:
            # A creation whose reply was lost is recognised by the storage (its contract).
            await self.storage.put_if_absent(_tag_key(name), data)
        except ObjectExistsError:
            deleted = await self.storage.exists(_tombstone_key(name))
            raise TagAlreadyExistsError(name, deleted=deleted) from None

    async def lookup_tag(self, name: str) -> str:
        validate_ref_name(name, "tag")
        key = _tag_key(name)
        try:
            data = await self.storage.get(key)
        except ObjectNotFoundError:
            raise TagNotFoundError(name) from None
        if await self.storage.exists(_tombstone_key(name)):
            raise TagNotFoundError(name)
        return decode_tag(data, name, path=self._where(key)).snapshot_id

    async def delete_tag(self, name: str) -> None:
        snapshot_id = await self.lookup_tag(name)
        tomb = TagTombstone(snapshot_id=snapshot_id, deleted_at=now_us(), name=name)
        try:
            await self.storage.put_if_absent(_tombstone_key(name), encode_tombstone(tomb))
        except ObjectExistsError:
            raise TagNotFoundError(name) from None

    async def list_tags(self) -> set[str]:
        live = await self._list_names(TAGS, "/ref")
        dead = await self._list_names(TAGS, "/deleted")
        return live - dead

    async def _list_names(self, prefix: str, suffix: str) -> set[str]:
        """Names with a ``<prefix><name><suffix>`` object; a directory no valid name could
        have made (``.hidden``, `` padded``) is something else's, not a ref."""
        names = set()
        async for info in self.storage.list(prefix):
            key = info.key
            if key.endswith(suffix):
                name = key[len(prefix) : -len(suffix)]
                try:
                    names.add(validate_ref_name(name))
                except InvalidNameError:
                    continue
        return names
