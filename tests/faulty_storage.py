"""A ``Storage`` wrapper for crash tests: counts every call and fails (or pauses) at the N-th.

``FaultyStorage`` forwards each operation to a real backend. Armed with ``arm(n)``, the call
with index ``n`` (0-based, counted from the moment it was armed) raises ``InjectedFaultError``
instead of reaching the backend (``when="before"``), or after the backend did the work
(``when="after"``: the write happened but the caller never hears so, like a lost response).
An ``on_fault`` callback replaces the raise: it may raise itself, or block (to pause a commit
at that call, or to wait there until a test kills the process) and return, and then the call
goes on normally.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from icechunk_lib.errors import StorageError
from icechunk_lib.storage import ObjectInfo, Storage

__all__ = ["Call", "FaultyStorage", "InjectedFaultError"]

When = Literal["before", "after"]


@dataclass(frozen=True)
class Call:
    """One storage call: its index since the last ``arm``/``reset``, method and key."""

    index: int
    method: str
    key: str


class InjectedFaultError(StorageError):
    """The failure ``FaultyStorage`` was told to inject."""

    def __init__(self, call: Call, when: When) -> None:
        self.call = call
        self.when = when
        super().__init__(f"injected fault {when} call {call.index}: {call.method}({call.key!r})")


class FaultyStorage(Storage):
    """Forward to ``inner``, recording every call; fail at the armed call index."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.calls: list[Call] = []
        self.faults: list[Call] = []
        self._fail_at: int | None = None
        self._when: When = "before"
        self._on_fault: Callable[[Call], None] | None = None
        self._match: Callable[[Call], bool] | None = None
        self._matched = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FaultyStorage({self.inner!r}, fail_at={self._fail_at})"

    @property
    def url(self) -> str:
        """The wrapped storage's url (overrides ``Storage.url``)."""
        return self.inner.url

    # --- control -------------------------------------------------------------------------

    def arm(
        self,
        fail_at: int,
        *,
        when: When = "before",
        on_fault: Callable[[Call], None] | None = None,
        match: Callable[[Call], bool] | None = None,
    ) -> None:
        """Restart the count and fail at call ``fail_at`` (0-based) from now on.

        With ``match``, ``fail_at`` counts only the calls ``match`` accepts. ``on_fault(call)``
        runs instead of raising ``InjectedFaultError``; if it returns, the call proceeds.
        """
        with self._lock:
            self.calls = []
            self._fail_at = fail_at
            self._when = when
            self._on_fault = on_fault
            self._match = match
            self._matched = 0

    def disarm(self) -> None:
        """Stop injecting faults; calls are still counted."""
        with self._lock:
            self._fail_at = None

    def reset(self) -> None:
        """Forget recorded calls and stop injecting faults."""
        with self._lock:
            self.calls = []
            self.faults = []
            self._fail_at = None

    @property
    def armed(self) -> bool:
        return self._fail_at is not None

    @property
    def count(self) -> int:
        """Calls recorded since the last ``arm`` or ``reset``."""
        return len(self.calls)

    # --- the hook --------------------------------------------------------------------------

    def _record(self, method: str, key: str) -> tuple[Call, bool]:
        with self._lock:
            call = Call(len(self.calls), method, key)
            self.calls.append(call)
            if self._match is None:
                hit = self._fail_at is not None and call.index == self._fail_at
            elif self._match(call):
                hit = self._fail_at is not None and self._matched == self._fail_at
                self._matched += 1
            else:
                hit = False
            if hit:
                self.faults.append(call)
        return call, hit

    def _fault(self, call: Call, when: When) -> None:
        if self._on_fault is None:
            raise InjectedFaultError(call, when)
        self._on_fault(call)

    def _before(self, method: str, key: str) -> Call | None:
        """Record a call; raise now if it is the armed one and faults come before the work."""
        call, hit = self._record(method, key)
        if not hit:
            return None
        if self._when == "before":
            self._fault(call, "before")
            return None
        return call

    def _after(self, call: Call | None) -> None:
        if call is not None:
            self._fault(call, "after")

    # --- Storage -------------------------------------------------------------------------

    async def get(self, key: str, byte_range: tuple[int, int | None] | None = None) -> bytes:
        """Forward ``get`` (overrides ``Storage.get``)."""
        hit = self._before("get", key)
        data = await self.inner.get(key, byte_range)
        self._after(hit)
        return data

    async def get_versioned(self, key: str) -> tuple[bytes, str]:
        """Forward ``get_versioned`` (overrides ``Storage.get_versioned``)."""
        hit = self._before("get_versioned", key)
        result = await self.inner.get_versioned(key)
        self._after(hit)
        return result

    async def put(self, key: str, data: bytes) -> None:
        """Forward ``put`` (overrides ``Storage.put``)."""
        hit = self._before("put", key)
        await self.inner.put(key, data)
        self._after(hit)

    async def put_new(self, key: str, data: bytes) -> None:
        """Forward ``put_new`` (overrides ``Storage.put_new``)."""
        hit = self._before("put_new", key)
        await self.inner.put_new(key, data)
        self._after(hit)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        """Forward ``put_if_absent`` (overrides ``Storage.put_if_absent``)."""
        hit = self._before("put_if_absent", key)
        await self.inner.put_if_absent(key, data)
        self._after(hit)

    async def put_if_match(self, key: str, data: bytes, version: str) -> str:
        """Forward ``put_if_match`` (overrides ``Storage.put_if_match``)."""
        hit = self._before("put_if_match", key)
        token = await self.inner.put_if_match(key, data, version)
        self._after(hit)
        return token

    async def exists(self, key: str) -> bool:
        """Forward ``exists`` (overrides ``Storage.exists``)."""
        hit = self._before("exists", key)
        result = await self.inner.exists(key)
        self._after(hit)
        return result

    async def size(self, key: str) -> int:
        """Forward ``size`` (overrides ``Storage.size``)."""
        hit = self._before("size", key)
        result = await self.inner.size(key)
        self._after(hit)
        return result

    async def delete(self, key: str) -> None:
        """Forward ``delete`` (overrides ``Storage.delete``)."""
        hit = self._before("delete", key)
        await self.inner.delete(key)
        self._after(hit)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Forward ``delete_many`` as one call (overrides ``Storage.delete_many``)."""
        keys = list(keys)
        hit = self._before("delete_many", ",".join(keys))
        result = await self.inner.delete_many(keys)
        self._after(hit)
        return result

    async def _list(self, prefix: str, start_after: str | None) -> AsyncIterator[ObjectInfo]:
        hit = self._before("list", prefix)
        async for info in self.inner.list(prefix, start_after=start_after):
            yield info
        self._after(hit)

    def list(
        self, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Forward ``list``; the call counts when iteration starts (overrides ``Storage``)."""
        return self._list(prefix, start_after)

    async def is_empty(self) -> bool:
        """Forward ``is_empty`` as one call (overrides ``Storage.is_empty``)."""
        hit = self._before("is_empty", "")
        result = await self.inner.is_empty()
        self._after(hit)
        return result
