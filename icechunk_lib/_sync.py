"""Run the async engine from sync code.

Once zarr is imported, everything runs on zarr's own I/O loop (one loop, no nested-loop
errors in notebooks). Before that, a private background loop serves, so code that never
touches array data (the ``ick`` command, history, refs) does not pay for importing zarr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["run", "shutdown"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()
_inherited: list[asyncio.AbstractEventLoop] = []
"""Loops a forked child inherited from its parent, kept so that nothing collects or closes
them here: closing one would unregister its descriptors from the epoll instance both
processes share, and the parent's loop would stop hearing its wake-ups."""


def _forget_loop_after_fork() -> None:
    """In a forked child the loop's thread does not exist: the first call starts a new one."""
    global _loop, _thread, _lock
    if _loop is not None:
        _inherited.append(_loop)
    _loop = None
    _thread = None
    _lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loop_after_fork)


def _private_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="ick-io", daemon=True)
            _thread.start()
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the engine's event loop and return its result.

    Interrupted (Ctrl-C raises KeyboardInterrupt in the waiting thread), it cancels ``coro``
    on the loop and waits until it has unwound before re-raising, so no work goes on behind
    the caller's back and no task is left pending.
    """
    call = _Call(coro)
    try:
        if "zarr" in sys.modules:
            from zarr.core.sync import sync

            return sync(call.run())
        loop = _private_loop()
        if threading.current_thread() is _thread:
            coro.close()
            raise RuntimeError("a blocking ick call was made from inside ick's own event loop")
        return asyncio.run_coroutine_threadsafe(call.run(), loop).result()
    except KeyboardInterrupt:
        call.cancel()
        raise


class _Call(Generic[T]):
    """One coroutine run for a blocking caller, which may cancel it from its own thread."""

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False
        self._done = threading.Event()

    async def run(self) -> T:
        self._task = asyncio.current_task()
        try:
            if self._cancelled:  # interrupted before it started
                self._coro.close()
                raise asyncio.CancelledError
            return await self._coro
        finally:
            self._done.set()

    def cancel(self, timeout: float = 10.0) -> None:
        """Cancel the coroutine on its loop and wait (up to ``timeout``) until it is done."""
        self._cancelled = True
        task = self._task
        if task is not None and not self._done.is_set():
            loop = task.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        self._done.wait(timeout)


def shutdown(timeout: float = 10.0) -> None:
    """Cancel every task still running on the engine's loop and wait until they are done.

    What ``asyncio.run`` does before closing its loop: a program that ends after an interrupt
    calls it so that closing the loop at exit finds no task pending (a worker thread that
    finishes later then finds its cancelled task and stays quiet). The loop stays usable.
    """
    loop: asyncio.AbstractEventLoop | None = _loop
    if "zarr" in sys.modules:
        from zarr.core.sync import loop as zarr_loop

        loop = zarr_loop[0]
    if loop is None or loop.is_closed() or not loop.is_running():
        return

    async def drain() -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    with contextlib.suppress(Exception):  # ending anyway: nothing useful to report
        asyncio.run_coroutine_threadsafe(drain(), loop).result(timeout)
